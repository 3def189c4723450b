"""The real Node.js runtime interface client (aws-lambda-ric 4.0.2): awslambda.streamifyResponse handlers stream
through pyrie write by write; a throw mid-stream arrives as error trailers and truncates the response."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import StartPyrie
from tests.cpu_wait import MachineWait, assert_one_by_one
from tests.harness import INVOKE_PATH, Pyrie
from tests.streaming import stream_invoke

ROOT = Path(__file__).parent.parent
NODE_RIC = ROOT / "tests" / "node" / "node_modules" / ".bin" / "aws-lambda-ric"
NODE_SSE = ROOT / "examples" / "node-sse"

pytestmark = pytest.mark.node


def node_function(start_pyrie: StartPyrie, handler: str) -> Pyrie:
    assert NODE_RIC.exists(), "the Node runtime client is missing: run `make node` (make test does)"
    return start_pyrie(str(NODE_RIC), f"index.{handler}", cwd=NODE_SSE, extra_env={"LAMBDA_TASK_ROOT": str(NODE_SSE)})


def test_sse_frames_arrive_one_by_one_at_the_handlers_pace(start_pyrie: StartPyrie) -> None:
    pyrie = node_function(start_pyrie, "plain")
    with MachineWait() as machine:
        received = stream_invoke(pyrie.port, INVOKE_PATH, json.dumps({"count": 5, "interval_ms": 200}).encode())
    assert received.complete
    assert b"Content-Type: text/event-stream" in received.head
    assert b"Lambda-Runtime-Function-Response-Mode: streaming" in received.head
    frames = [frame.decode() for _, frame in received.frames()]
    assert [frame.split("\n")[0] for frame in frames] == [f"id: {n}" for n in range(1, 6)]
    assert_one_by_one([t for t, _ in received.frames()], 0.2, machine.waited)  # not all at the end


def test_http_prelude_reaches_a_plain_invoke_as_bytes(start_pyrie: StartPyrie) -> None:
    pyrie = node_function(start_pyrie, "handler")
    response = pyrie.invoke(json.dumps({"count": 2, "interval_ms": 10}))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/vnd.awslambda.http-integration-response"
    prelude, separator, body = response.content.partition(b"\0" * 8)
    assert separator
    assert json.loads(prelude)["statusCode"] == 200
    assert body.count(b"event: tick") == 2


def test_a_throw_mid_stream_truncates_the_response(start_pyrie: StartPyrie) -> None:
    pyrie = node_function(start_pyrie, "boom")
    received = stream_invoke(pyrie.port, INVOKE_PATH)
    assert b"event: tick" in received.body
    assert not received.complete
    # the runtime survives its error: the next invoke streams again
    assert b"event: tick" in stream_invoke(pyrie.port, INVOKE_PATH).body
