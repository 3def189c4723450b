"""Durable functions through a real pyrie: the Durable Execution SDK for Python under awslambdaric, invoked and
inspected with boto3, curl-like requests and the AWS CLI, as the README shows.

The handlers (``tests/functions/durable_handlers.py``) note each run of a step's body in a file, so a test tells a
step that ran from one replayed from its checkpoint. Every replay is an ordinary invoke of pyrie's pool, with its own
START, END and REPORT lines.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import StartPyrie
from tests.harness import INVOKE_PATH, Pyrie, wait_until
from tests.test_resilience import is_frontend

pytestmark = pytest.mark.slow

FUNCTIONS = Path(__file__).parent / "functions"
FUNCTION = "test_function"
AWS_CLI = Path(sys.executable).parent / "aws"
ARN_HEADER = "X-Amz-Durable-Execution-Arn"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


class Durable:
    """pyrie running one handler of durable_handlers.py as a durable function, and the clients to drive it."""

    def __init__(self, start_pyrie: StartPyrie, tmp_path: Path) -> None:
        self._start = start_pyrie
        self.effects_file = tmp_path / "effects"
        self.pyrie: Pyrie | None = None

    def start(
        self, handler: str, *options: str, execution_timeout: int = 60, env: dict[str, str] | None = None
    ) -> Pyrie:
        extra_env = {
            "AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT": str(execution_timeout),
            "DURABLE_SIDE_EFFECTS": str(self.effects_file),
            **(env or {}),
        }
        self.pyrie = self._start(
            *options,
            sys.executable,
            "-m",
            "awslambdaric",
            f"durable_handlers.{handler}",
            cwd=FUNCTIONS,
            extra_env=extra_env,
        )
        return self.pyrie

    @property
    def url(self) -> str:
        assert self.pyrie is not None
        return self.pyrie.url

    def client(self) -> Any:
        return boto3.client(
            "lambda",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 1}, read_timeout=120),
        )

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``aws lambda ARGS`` against pyrie, as the README runs it."""
        env = {**os.environ, **CREDENTIALS, "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/none"}
        result = subprocess.run(
            [str(AWS_CLI), "--endpoint-url", self.url, "lambda", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def invoke(self, event: dict[str, Any], *, name: str | None = None, timeout: float = 60) -> requests.Response:
        """A RequestResponse Invoke (its own connection: tests call it from several threads)."""
        headers = {"X-Amz-Durable-Execution-Name": name} if name else {}
        return requests.post(f"{self.url}{INVOKE_PATH}", data=json.dumps(event), headers=headers, timeout=timeout)

    def start_event(self, event: dict[str, Any], *, name: str | None = None) -> str:
        """An Event invoke; the ARN pyrie answered with at once."""
        client = self.client()
        started = time.monotonic()
        response = client.invoke(
            FunctionName=FUNCTION, InvocationType="Event", Payload=json.dumps(event), **_named(name)
        )
        assert response["StatusCode"] == 202
        assert time.monotonic() - started < 2  # answered at once, not when the execution ends
        return str(response["DurableExecutionArn"])

    def execution(self, arn: str) -> dict[str, Any]:
        return dict(self.client().get_durable_execution(DurableExecutionArn=arn))

    def until_status(self, arn: str, status: str, timeout: float = 30) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            execution = self.execution(arn)
            return execution if execution["Status"] == status else None

        return dict(wait_until(reached, timeout, interval=0.1, what=f"{arn} to be {status}"))

    def events(self, arn: str) -> list[dict[str, Any]]:
        return list(self.client().get_durable_execution_history(DurableExecutionArn=arn)["Events"])

    def callback_id(self, arn: str, timeout: float = 30) -> str:
        """The id of the execution's callback, from its history, once it has started."""

        def started() -> str | None:
            for event in self.events(arn):
                if event["EventType"] == "CallbackStarted":
                    return str(event["CallbackStartedDetails"]["CallbackId"])
            return None

        return str(wait_until(started, timeout, interval=0.1, what=f"a callback of {arn}"))

    def approval_event(self, name: str, **more: Any) -> dict[str, Any]:
        """An event for the ``approval`` handler, whose submitter writes the callback id to a file of its own."""
        return {"callback_file": str(self.effects_file.parent / f"callback-{name}"), **more}

    def effects(self) -> list[str]:
        return self.effects_file.read_text().split() if self.effects_file.exists() else []


def _named(name: str | None) -> dict[str, str]:
    return {"DurableExecutionName": name} if name else {}


@pytest.fixture
def durable(start_pyrie: StartPyrie, tmp_path: Path) -> Durable:
    return Durable(start_pyrie, tmp_path)


def request_ids(pyrie: Pyrie, kind: str) -> list[str]:
    return re.findall(rf"^{kind} RequestId: ({UUID})", pyrie.stdout(), re.MULTILINE)


# --- invoking ----------------------------------------------------------------------------------------------------


def test_a_sync_invoke_answers_the_result_once_the_wait_is_over_and_no_step_runs_twice(durable: Durable) -> None:
    pyrie = durable.start("steps_and_wait")
    started = time.monotonic()
    response = durable.invoke({"x": 20, "wait": 2})
    took = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert response.json() == {"one": 21, "two": 42}
    assert "X-Amz-Function-Error" not in response.headers
    arn = response.headers[ARN_HEADER]
    assert re.fullmatch(
        rf"arn:aws:lambda:us-east-1:012345678912:function:{FUNCTION}:\$LATEST/durable-execution/"
        rf"{UUID}/{UUID}",
        arn,
    ), arn
    assert took >= 2
    assert durable.effects() == ["one", "two"]  # "one" was replayed from its checkpoint in the second invocation
    # Two invocations, each with its own START, END and REPORT, the history naming the same request ids.
    pyrie.wait_for_lines("REPORT RequestId", 2)
    starts = request_ids(pyrie, "START")
    assert len(starts) == 2 and starts == request_ids(pyrie, "END") == request_ids(pyrie, "REPORT")
    events = durable.events(arn)
    completed = [event for event in events if event["EventType"] == "InvocationCompleted"]
    assert [event["InvocationCompletedDetails"]["RequestId"] for event in completed] == starts
    by_type = {event["EventType"]: event for event in events}
    waited = by_type["WaitSucceeded"]["EventTimestamp"] - by_type["WaitStarted"]["EventTimestamp"]
    assert waited.total_seconds() >= 2
    second_start = completed[1]["InvocationCompletedDetails"]["StartTimestamp"]
    assert (second_start - by_type["WaitStarted"]["EventTimestamp"]).total_seconds() >= 2  # resumed after the wait
    assert durable.execution(arn)["Status"] == "SUCCEEDED"


def test_boto3_invokes_by_name_and_an_event_invoke_answers_202_at_once(durable: Durable) -> None:
    durable.start("steps_and_wait")
    client = durable.client()
    response = client.invoke(
        FunctionName=FUNCTION, Payload=json.dumps({"x": 1, "wait": 1}), DurableExecutionName="by-name"
    )
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {"one": 2, "two": 4}
    assert response["DurableExecutionArn"].split("/")[-2] == "by-name"
    arn = durable.start_event({"x": 5, "wait": 2})
    assert durable.execution(arn)["Status"] == "RUNNING"
    done = durable.until_status(arn, "SUCCEEDED")
    assert json.loads(done["Result"]) == {"one": 6, "two": 12}


def test_a_failed_execution_answers_as_a_function_error(durable: Durable) -> None:
    durable.start("failing")
    response = durable.invoke({})
    assert response.status_code == 200
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    body = response.json()
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "the order cannot be shipped"
    arn = response.headers[ARN_HEADER]
    execution = durable.execution(arn)
    assert execution["Status"] == "FAILED" and execution["Error"]["ErrorMessage"] == "the order cannot be shipped"
    assert durable.effects() == ["fine"]


def test_a_retried_step_follows_the_sdks_retry_strategy(durable: Durable) -> None:
    durable.start("flaky")
    response = durable.invoke({"succeed_on": 3})
    assert response.status_code == 200, response.text
    assert response.json() == 3
    assert durable.effects() == ["flaky", "flaky", "flaky"]
    events = durable.events(response.headers[ARN_HEADER])
    failed = [event for event in events if event["EventType"] == "StepFailed"]
    assert len(failed) == 2 and "attempt 1 failed" in json.dumps(failed[0], default=str)
    attempts = [event["EventTimestamp"] for event in events if event["EventType"] in ("StepFailed", "StepSucceeded")]
    assert all((later - earlier).total_seconds() >= 1 for earlier, later in itertools.pairwise(attempts))


def test_execution_names_are_idempotent_and_refuse_another_payload(durable: Durable) -> None:
    durable.start("steps_and_wait")
    first = durable.invoke({"x": 1, "wait": 1}, name="order-7")
    again = durable.invoke({"x": 1, "wait": 1}, name="order-7")
    assert first.status_code == again.status_code == 200
    assert first.headers[ARN_HEADER] == again.headers[ARN_HEADER]
    assert durable.effects() == ["one", "two"]  # the second invoke re-attached to the first execution
    refused = durable.invoke({"x": 2}, name="order-7")
    assert refused.status_code == 409
    assert refused.headers["X-Amzn-ErrorType"] == "DurableExecutionAlreadyStartedException"
    with pytest.raises(ClientError) as caught:
        durable.client().invoke(FunctionName=FUNCTION, Payload=b'{"x": 3}', DurableExecutionName="order-7")
    assert caught.value.response["Error"]["Code"] == "DurableExecutionAlreadyStartedException"
    bad = durable.invoke({"x": 1}, name="no spaces allowed")
    assert bad.status_code == 400 and bad.headers["X-Amzn-ErrorType"] == "InvalidParameterValueException"


def test_the_execution_timeout_is_enforced(durable: Durable) -> None:
    durable.start("long_wait", execution_timeout=3)
    started = time.monotonic()
    response = durable.invoke({"wait": 60})
    assert 3 <= time.monotonic() - started < 15
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    assert response.json()["errorType"] == "Execution.TimedOut"
    assert durable.execution(response.headers[ARN_HEADER])["Status"] == "TIMED_OUT"


# --- the pool -----------------------------------------------------------------------------------------------------


def test_waiting_executions_hold_no_environment_and_a_full_pool_makes_replays_wait(durable: Durable) -> None:
    pyrie = durable.start("steps_and_wait", "--max-concurrency", "1")
    answers: list[requests.Response] = []

    def invoke(x: int) -> None:
        answers.append(durable.invoke({"x": x, "wait": 2}))

    callers = [threading.Thread(target=invoke, args=(x,)) for x in (1, 2, 3)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(60)
    assert sorted(answer.json()["two"] for answer in answers) == [4, 6, 8], [a.text for a in answers]
    assert all(answer.status_code == 200 for answer in answers)
    assert sorted(durable.effects()) == ["one"] * 3 + ["two"] * 3
    pyrie.wait_for_lines("REPORT RequestId", 6)  # six invocations, one at a time in the one environment
    health = requests.get(f"{pyrie.url}/healthz", timeout=10).json()
    assert len(health["environments"]) == 1


# --- callbacks ----------------------------------------------------------------------------------------------------


def test_callbacks_answered_with_success_and_failure_by_boto3_and_the_aws_cli(durable: Durable) -> None:
    durable.start("approval")
    arns = {
        way: durable.start_event(durable.approval_event(way), name=way)
        for way in ("boto3-ok", "boto3-fail", "cli-ok", "cli-fail")
    }
    ids = {way: durable.callback_id(arn) for way, arn in arns.items()}
    client = durable.client()
    client.send_durable_execution_callback_success(CallbackId=ids["boto3-ok"], Result=b'"yes"')
    client.send_durable_execution_callback_failure(
        CallbackId=ids["boto3-fail"], Error={"ErrorType": "Rejected", "ErrorMessage": "no stock"}
    )
    durable.cli("send-durable-execution-callback-success", "--callback-id", ids["cli-ok"], "--result", '"sure"')
    durable.cli(
        "send-durable-execution-callback-failure",
        "--callback-id",
        ids["cli-fail"],
        "--error",
        "ErrorType=Rejected,ErrorMessage=too late",
    )
    assert json.loads(durable.until_status(arns["boto3-ok"], "SUCCEEDED")["Result"]) == {
        "answer": '"yes"',  # the SDK hands the callback's result over as it was sent
        "after": "done",
    }
    assert json.loads(durable.until_status(arns["cli-ok"], "SUCCEEDED")["Result"]) == {
        "answer": '"sure"',
        "after": "done",
    }
    assert "no stock" in durable.until_status(arns["boto3-fail"], "FAILED")["Error"]["ErrorMessage"]
    assert "too late" in durable.until_status(arns["cli-fail"], "FAILED")["Error"]["ErrorMessage"]
    assert sorted(durable.effects()) == ["after", "after", "submit", "submit", "submit", "submit"]
    # A callback answered twice is refused, with Lambda's error shape.
    with pytest.raises(ClientError) as caught:
        client.send_durable_execution_callback_success(CallbackId=ids["boto3-ok"], Result=b'"again"')
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert caught.value.response["Error"]["Code"] == "CallbackTimeoutException"  # Lambda's error for a closed callback
    assert caught.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "CallbackTimeoutException"
    again = durable.cli("send-durable-execution-callback-success", "--callback-id", ids["cli-ok"], check=False)
    assert again.returncode != 0 and "(CallbackTimeoutException)" in again.stderr


def test_a_sync_invoke_waits_for_a_callback_answered_meanwhile(durable: Durable) -> None:
    durable.start("approval")
    answers: list[requests.Response] = []
    event = durable.approval_event("waiting")
    caller = threading.Thread(target=lambda: answers.append(durable.invoke(event, name="waiting")))
    caller.start()
    listed = wait_until(
        lambda: durable.client().list_durable_executions_by_function(FunctionName=FUNCTION)["DurableExecutions"],
        what="the execution to be listed",
    )
    arn = listed[0]["DurableExecutionArn"]
    durable.client().send_durable_execution_callback_success(CallbackId=durable.callback_id(arn), Result=b"42")
    caller.join(30)
    assert answers and answers[0].status_code == 200
    assert answers[0].json() == {"answer": "42", "after": "done"}
    assert answers[0].headers[ARN_HEADER] == arn


# --- inspecting and stopping ----------------------------------------------------------------------------------------


def test_history_list_and_stop_with_boto3_and_the_aws_cli(durable: Durable) -> None:
    pyrie = durable.start("long_wait", "--log-level", "debug")  # to see the synchronous caller attach
    done = durable.invoke({"wait": 1}, name="quick")
    assert done.status_code == 200 and done.json() == "woke"
    stopped_arn = durable.start_event({"wait": 300}, name="to-stop")
    running_arn = durable.start_event({"wait": 300}, name="keeps-running")
    durable.until_status(stopped_arn, "RUNNING")
    # A synchronous caller of an execution that is stopped gets its end as a function error.
    answers: list[requests.Response] = []
    caller = threading.Thread(target=lambda: answers.append(durable.invoke({"wait": 300}, name="to-stop")))
    caller.start()
    pyrie.wait_for_stderr(f"re-attached to durable execution {stopped_arn}")  # it waits for the end
    stop = json.loads(durable.cli("stop-durable-execution", "--durable-execution-arn", stopped_arn).stdout)
    assert "StopTimestamp" in stop
    caller.join(30)
    assert answers and answers[0].headers["X-Amz-Function-Error"] == "Unhandled"
    assert answers[0].json()["errorType"] == "Execution.Stopped"
    assert durable.execution(stopped_arn)["Status"] == "STOPPED"

    client = durable.client()
    listed = client.list_durable_executions_by_function(FunctionName=FUNCTION, Statuses=["RUNNING"])
    assert [item["DurableExecutionArn"] for item in listed["DurableExecutions"]] == [running_arn]
    cli_listed = json.loads(
        durable.cli(
            "list-durable-executions-by-function", "--function-name", FUNCTION, "--statuses", "STOPPED", "SUCCEEDED"
        ).stdout
    )
    assert sorted(item["DurableExecutionName"] for item in cli_listed["DurableExecutions"]) == ["quick", "to-stop"]
    # Every name Invoke takes names the function here too: the Go emulator's "function", with a qualifier or not.
    by_go_name = client.list_durable_executions_by_function(FunctionName="function", Statuses=["RUNNING"])
    assert [item["DurableExecutionArn"] for item in by_go_name["DurableExecutions"]] == [running_arn]
    cli_go_name = json.loads(
        durable.cli(
            "list-durable-executions-by-function", "--function-name", "function", "--qualifier", "$LATEST"
        ).stdout
    )
    assert len(cli_go_name["DurableExecutions"]) == 3
    with pytest.raises(ClientError) as caught:
        client.list_durable_executions_by_function(FunctionName="function", Qualifier="7")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"

    history = json.loads(
        durable.cli("get-durable-execution-history", "--durable-execution-arn", done.headers[ARN_HEADER]).stdout
    )
    kinds = [event["EventType"] for event in history["Events"]]
    assert kinds[0] == "ExecutionStarted" and kinds[-1] == "ExecutionSucceeded"
    assert {"StepSucceeded", "WaitStarted", "WaitSucceeded", "InvocationCompleted"} <= set(kinds)
    boto_history = client.get_durable_execution_history(DurableExecutionArn=done.headers[ARN_HEADER])
    assert [event["EventType"] for event in boto_history["Events"]] == kinds
    got = json.loads(durable.cli("get-durable-execution", "--durable-execution-arn", stopped_arn).stdout)
    assert got["Status"] == "STOPPED" and got["DurableExecutionName"] == "to-stop"


def test_an_unknown_execution_is_404_resource_not_found(durable: Durable) -> None:
    durable.start("steps_and_wait")
    arn = f"arn:aws:lambda:us-east-1:012345678912:function:{FUNCTION}:$LATEST/durable-execution/nope/0000"
    raw = requests.get(f"{durable.url}/2025-12-01/durable-executions/{requests.utils.quote(arn, safe='')}", timeout=10)
    assert raw.status_code == 404
    assert raw.headers["X-Amzn-ErrorType"] == "ResourceNotFoundException"
    assert raw.json()["Type"] == "User" and "not found" in raw.json()["Message"]
    with pytest.raises(ClientError) as caught:
        durable.client().get_durable_execution_history(DurableExecutionArn=arn)
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    result = durable.cli("get-durable-execution", "--durable-execution-arn", arn, check=False)
    assert result.returncode != 0 and "ResourceNotFoundException" in result.stderr


# --- the runtime's environment, and functions that are not durable ----------------------------------------------------


def durable_api_url(pyrie: Pyrie) -> str:
    """Where the supervisor serves the durable APIs to the runtime, as it says at start-up."""
    line = pyrie.wait_for_stderr("durable execution APIs for the function's runtime on ")
    return str(re.search(r"durable execution APIs for the function's runtime on (\S+)", line)[1])  # type: ignore[index]


def test_the_runtime_is_pointed_at_the_supervisor_with_a_region_and_dummy_credentials(durable: Durable) -> None:
    pyrie = durable.start("runtime_environment", env={"AWS_ACCESS_KEY_ID": "", "AWS_REGION": ""})
    seen = durable.invoke({}).json()
    endpoint = durable_api_url(pyrie)
    assert seen["AWS_ENDPOINT_URL_LAMBDA"] == endpoint != pyrie.url
    # The supervisor itself listens there, on loopback.
    port = int(endpoint.rsplit(":", 1)[1])
    [listening] = [c for c in pyrie.psutil.net_connections("tcp") if c.status == "LISTEN" and c.laddr.port == port]
    assert listening.laddr.ip == "127.0.0.1"
    assert seen["AWS_REGION"] == seen["AWS_DEFAULT_REGION"] == "us-east-1"
    assert seen["AWS_ACCESS_KEY_ID"] and seen["AWS_SESSION_TOKEN"] is None


def test_the_runtime_checkpoints_with_the_supervisor_while_the_front_end_is_stopped(durable: Durable) -> None:
    pyrie = durable.start("steps_and_wait")
    endpoint = durable_api_url(pyrie)
    arn = durable.start_event({"x": 3, "wait": 1})
    front_end = [p for p in pyrie.descendants() if is_frontend(p)]
    assert front_end
    for process in front_end:
        process.suspend()  # SIGSTOP: nothing goes through gunicorn now
    try:
        direct = boto3.client(
            "lambda",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 1}, read_timeout=10),
        )

        def succeeded() -> dict[str, Any] | None:
            execution = direct.get_durable_execution(DurableExecutionArn=arn)
            return execution if execution["Status"] == "SUCCEEDED" else None

        done = wait_until(succeeded, 30, interval=0.2, what="the execution to succeed without the front end")
        assert json.loads(done["Result"]) == {"one": 4, "two": 8}
        assert durable.effects() == ["one", "two"]  # both invocations checkpointed their steps
        # The listener serves the durable APIs only: an Invoke there is an unknown operation.
        answer = requests.post(f"{endpoint}{INVOKE_PATH}", data=b"{}", timeout=10)
        assert answer.status_code == 404 and answer.headers["X-Amzn-ErrorType"] == "UnknownOperationException"
    finally:
        for process in front_end:
            process.resume()


def test_a_function_that_is_not_durable_is_unaffected(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(sys.executable, "-m", "awslambdaric", "durable_handlers.plain_environment", cwd=FUNCTIONS)
    response = pyrie.invoke(json.dumps({"order": 1}))
    assert response.status_code == 200
    assert response.json() == {"event": {"order": 1}, "endpoint": None}
    assert ARN_HEADER not in response.headers
    listed = requests.get(f"{pyrie.url}/2025-12-01/functions/{FUNCTION}/durable-executions", timeout=10)
    assert listed.status_code == 404 and listed.headers["X-Amzn-ErrorType"] == "ResourceNotFoundException"


# --- a restarted pyrie ----------------------------------------------------------------------------------------------


def test_a_restarted_pyrie_with_a_store_resumes_a_pending_wait_and_callback(durable: Durable, tmp_path: Path) -> None:
    store = tmp_path / "durable.db"
    first = durable.start("long_wait", "--durable-store", str(store))
    waiting = durable.start_event({"wait": 5}, name="sleeper")
    wait_until(
        lambda: any(event["EventType"] == "InvocationCompleted" for event in durable.events(waiting)),
        what="the first invocation to suspend on its wait",
    )
    assert first.stop() == 0
    assert durable.effects() == ["before"]

    second = durable.start("long_wait", "--durable-store", str(store))
    assert "durable store" in second.wait_for_stderr("resumed")
    done = durable.until_status(waiting, "SUCCEEDED", timeout=30)
    assert json.loads(done["Result"]) == "woke"
    assert durable.effects() == ["before"]  # the step before the wait did not run again
    events = {event["EventType"]: event for event in durable.events(waiting)}
    waited = events["WaitSucceeded"]["EventTimestamp"] - events["WaitStarted"]["EventTimestamp"]
    assert waited.total_seconds() >= 5
    second.wait_for_lines("REPORT RequestId", 1)
    assert len(request_ids(second, "START")) == 1  # the new pyrie invoked it once, after the wait


def test_a_restarted_pyrie_with_a_store_keeps_a_pending_callback(durable: Durable, tmp_path: Path) -> None:
    store = tmp_path / "durable.db"
    first = durable.start("approval", "--durable-store", str(store))
    arn = durable.start_event(durable.approval_event("restart", timeout=120), name="approve-me")
    callback = durable.callback_id(arn)
    wait_until(lambda: sum(e["EventType"] == "InvocationCompleted" for e in durable.events(arn)) >= 1)
    assert first.stop() == 0

    durable.start("approval", "--durable-store", str(store))
    durable.client().send_durable_execution_callback_success(CallbackId=callback, Result=b'"approved"')
    done = durable.until_status(arn, "SUCCEEDED")
    assert json.loads(done["Result"]) == {"answer": '"approved"', "after": "done"}
    assert durable.effects().count("submit") == 1


def assert_store_refused(start_pyrie: StartPyrie, store: Path, **kwargs: Any) -> None:
    """A pyrie given ``store`` stops at start-up, exit 2, saying in one line that another pyrie has it."""
    pyrie = start_pyrie(
        "--durable-store",
        str(store),
        sys.executable,
        "-m",
        "awslambdaric",
        "durable_handlers.long_wait",
        cwd=FUNCTIONS,
        extra_env={"AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT": "60"},
        ready=False,
        **kwargs,
    )
    assert pyrie.process.wait(10) == 2
    assert pyrie.stop() == 2
    assert pyrie.stderr().splitlines() == [
        f"pyrie: error: --durable-store: {store} is in use by another pyrie; give each pyrie a store of its own"
    ]


def test_a_second_pyrie_refuses_a_store_the_first_one_uses(
    durable: Durable, start_pyrie: StartPyrie, tmp_path: Path
) -> None:
    store = tmp_path / "durable.db"
    first = durable.start("long_wait", "--durable-store", str(store))
    listing = f"{first.url}/2025-12-01/functions/{FUNCTION}/durable-executions"
    assert requests.get(listing, timeout=10).status_code == 200  # the supervisor has its store open

    assert_store_refused(start_pyrie, store)
    assert requests.get(listing, timeout=10).status_code == 200  # the first one goes on


# pyrie's main() with another pyrie taking the store just after pyrie checked it (a start-up race).
STORE_TAKEN_AFTER_THE_CHECK = """
import sys
from pyrie_durable.store import SqliteStore
from supervisor import cli
parse, held = cli.parse, []
def parse_then_taken(args):
    config = parse(args)
    held.append(SqliteStore(config.durable.store_path))
    return config
cli.parse = parse_then_taken
from supervisor.__main__ import main
sys.exit(main())
"""


def test_a_store_taken_between_the_check_and_the_start_is_refused_in_one_line(
    start_pyrie: StartPyrie, tmp_path: Path
) -> None:
    store = tmp_path / "durable.db"
    assert_store_refused(start_pyrie, store, launcher=(sys.executable, "-c", STORE_TAKEN_AFTER_THE_CHECK))


def test_without_a_store_a_restarted_pyrie_starts_empty(durable: Durable) -> None:
    first = durable.start("long_wait")
    arn = durable.start_event({"wait": 60})
    durable.until_status(arn, "RUNNING")
    assert first.stop() == 0
    durable.start("long_wait")
    with pytest.raises(ClientError) as caught:
        durable.execution(arn)
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


# --- tenant isolation -----------------------------------------------------------------------------------------------


def test_a_tenant_isolated_durable_function_replays_in_its_tenants_environments(
    durable: Durable, tmp_path: Path
) -> None:
    durable.start("tenant_replays", "--tenant-isolation")
    client = durable.client()
    # An invoke without a tenant is refused before any execution starts.
    with pytest.raises(ClientError) as caught:
        client.invoke(FunctionName="function", Payload=b"{}")
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert client.list_durable_executions_by_function(FunctionName=FUNCTION)["DurableExecutions"] == []
    # Each replay (after the wait) runs as its execution's tenant, in that tenant's environment.
    blue = client.invoke(FunctionName=FUNCTION, Payload=json.dumps({"wait": 1}), TenantId="blue")
    assert blue["StatusCode"] == 200 and "FunctionError" not in blue, blue
    assert json.loads(blue["Payload"].read()) == {"tenant": "blue"}
    out = tmp_path / "green.json"
    durable.cli(
        "invoke",
        "--function-name",
        FUNCTION,
        "--tenant-id",
        "green",
        "--payload",
        '{"wait": 1}',
        str(out),
    )
    assert json.loads(out.read_text()) == {"tenant": "green"}
    seen = [effect.split(":") for effect in durable.effects()]
    assert [tenant for tenant, _ in seen] == ["blue", "blue", "green", "green"]
    blue_pids = {pid for tenant, pid in seen if tenant == "blue"}
    green_pids = {pid for tenant, pid in seen if tenant == "green"}
    assert len(blue_pids) == 1 and not blue_pids & green_pids  # its warm environment, never another tenant's
    listed = client.list_durable_executions_by_function(FunctionName=FUNCTION)["DurableExecutions"]
    assert sorted(item["Status"] for item in listed) == ["SUCCEEDED", "SUCCEEDED"]
