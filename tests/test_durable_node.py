"""Durable functions in Node.js through a real pyrie: the Durable Execution SDK for JavaScript
(``@aws/durable-execution-sdk-js``, installed by ``make node``) under AWS's Node runtime interface client.

The SDK declares Node.js 22 or later; it runs on the Node.js 20 of this machine (the AWS SDK only warns), and these
tests are what shows it. Each handler file is copied beside a link to ``tests/node/node_modules``, where Node's
module resolution finds the SDK.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import StartPyrie
from tests.harness import Pyrie
from tests.test_durable_pyrie import ARN_HEADER, FUNCTION, UUID, Durable, request_ids

ROOT = Path(__file__).parent.parent
NODE_MODULES = ROOT / "tests" / "node" / "node_modules"
NODE_RIC = NODE_MODULES / ".bin" / "aws-lambda-ric"
HANDLERS = ROOT / "tests" / "functions" / "durable_node" / "index.mjs"
EXAMPLE = ROOT / "examples" / "node-durable" / "index.mjs"

pytestmark = [pytest.mark.node, pytest.mark.slow]


class NodeDurable(Durable):
    def __init__(self, start_pyrie: StartPyrie, tmp_path: Path) -> None:
        super().__init__(start_pyrie, tmp_path)
        self._task_root = tmp_path / "task"

    def start_node(self, source: Path, handler: str, *options: str, execution_timeout: int = 60) -> Pyrie:
        assert NODE_RIC.exists(), "the Node runtime client is missing: run `make node` (make test does)"
        assert (NODE_MODULES / "@aws" / "durable-execution-sdk-js").is_dir(), "run `make node` (make test does)"
        self._task_root.mkdir(exist_ok=True)
        shutil.copy(source, self._task_root / "index.mjs")
        link = self._task_root / "node_modules"
        if not link.exists():
            link.symlink_to(NODE_MODULES)
        self.pyrie = self._start(
            *options,
            str(NODE_RIC),
            f"index.{handler}",
            cwd=self._task_root,
            extra_env={
                "AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT": str(execution_timeout),
                "DURABLE_SIDE_EFFECTS": str(self.effects_file),
                "LAMBDA_TASK_ROOT": str(self._task_root),
            },
        )
        return self.pyrie


@pytest.fixture
def node(start_pyrie: StartPyrie, tmp_path: Path) -> NodeDurable:
    return NodeDurable(start_pyrie, tmp_path)


def test_steps_run_once_and_a_wait_resumes_in_a_new_invocation(node: NodeDurable) -> None:
    pyrie = node.start_node(HANDLERS, "stepsAndWait")
    started = time.monotonic()
    response = node.invoke({"x": 20, "wait": 2})
    assert response.status_code == 200, response.text
    assert response.json() == {"one": 21, "two": 42}
    assert time.monotonic() - started >= 2
    assert node.effects() == ["one", "two"]
    pyrie.wait_for_lines("REPORT RequestId", 2)
    assert len(request_ids(pyrie, "START")) == 2
    events = {event["EventType"]: event for event in node.events(response.headers[ARN_HEADER])}
    assert (events["WaitSucceeded"]["EventTimestamp"] - events["WaitStarted"]["EventTimestamp"]).total_seconds() >= 2


def test_callbacks_answered_with_success_and_with_failure(node: NodeDurable) -> None:
    node.start_node(HANDLERS, "approval")
    ok = node.start_event({}, name="ok")
    refused = node.start_event({}, name="refused")
    node.client().send_durable_execution_callback_success(CallbackId=node.callback_id(ok), Result=b'{"by":"boto3"}')
    node.cli(
        "send-durable-execution-callback-failure",
        "--callback-id",
        node.callback_id(refused),
        "--error",
        "ErrorType=Rejected,ErrorMessage=no stock",
    )
    done = node.until_status(ok, "SUCCEEDED")
    assert json.loads(done["Result"]) == {"answer": '{"by":"boto3"}', "after": "done"}
    failed = node.until_status(refused, "FAILED")
    assert "no stock" in json.dumps(failed["Error"])
    assert sorted(node.effects()) == ["after", "submit", "submit"]


def test_a_retried_step_follows_the_retry_strategy(node: NodeDurable) -> None:
    node.start_node(HANDLERS, "flaky")
    response = node.invoke({"succeed_on": 3})
    assert response.status_code == 200, response.text
    assert response.json() == 3
    assert node.effects() == ["flaky"] * 3
    kinds = [event["EventType"] for event in node.events(response.headers[ARN_HEADER])]
    assert kinds.count("StepFailed") == 2
    assert kinds.count("InvocationCompleted") == 3  # each retry ran in a new invocation, after its delay


def test_a_failed_execution_answers_as_a_function_error(node: NodeDurable) -> None:
    node.start_node(HANDLERS, "failing")
    response = node.invoke({})
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    assert response.json()["errorMessage"] == "the order cannot be shipped"
    assert response.json()["errorType"] == "TypeError"
    assert node.execution(response.headers[ARN_HEADER])["Status"] == "FAILED"


def test_the_readme_example(node: NodeDurable) -> None:
    pyrie = node.start_node(EXAMPLE, "handler")
    response = node.invoke({"id": "o-7", "wait_seconds": 1}, name="o-7")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "shipped", "order": "o-7", "reserved": 1}
    assert re.search(rf"function:{FUNCTION}:\$LATEST/durable-execution/o-7/{UUID}$", response.headers[ARN_HEADER])
    assert pyrie.stdout().count("reserving book for order o-7") == 1
