"""InvokeWithResponseStream with the real SDKs on both ends: boto3 and the JS SDK's InvokeWithResponseStreamCommand
(tests/node/sdk_invoke.mjs) against the Node runtime client's streamifyResponse handlers and a runtime_client
generator handler. Events arrive as the handler writes them; a throw mid-stream ends in InvokeComplete."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import StartPyrie
from tests.cpu_wait import MachineWait, assert_one_by_one
from tests.harness import Pyrie
from tests.node_script import run_node_script
from tests.test_stream_invoke import complete_of, payload_of, stream
from tests.test_streaming_node import node_function

FUNCTIONS = Path(__file__).parent / "functions"

pytestmark = pytest.mark.node


def js_sdk_stream(pyrie: Pyrie, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The JS SDK's events, one JSON line each with the milliseconds since the command was sent."""
    lines = run_node_script("sdk_invoke.mjs", pyrie.url, "--stream", "--payload", json.dumps(payload))
    assert lines[0]["event"] == "Response" and lines[0]["statusCode"] == 200, lines[0]
    return lines[1:]


def js_payload(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(base64.b64decode(line["payload"]) for line in lines if line["event"] == "PayloadChunk")


def test_boto3_receives_a_streamify_response_handler_write_by_write(start_pyrie: StartPyrie) -> None:
    pyrie = node_function(start_pyrie, "plain")
    with MachineWait() as machine:
        _, events = stream(pyrie, json.dumps({"count": 4, "interval_ms": 200}).encode())
    assert complete_of(events) == {}
    frames = payload_of(events).decode().split("\n\n")[:-1]
    assert [frame.split("\n")[0] for frame in frames] == [f"id: {n}" for n in range(1, 5)]
    arrivals = [at for at, event in events if "PayloadChunk" in event]
    assert len(arrivals) == 4, arrivals
    assert_one_by_one(arrivals, 0.2, machine.waited)


def test_boto3_sees_a_throw_mid_stream_in_invoke_complete(start_pyrie: StartPyrie) -> None:
    pyrie = node_function(start_pyrie, "boom")
    response, events = stream(pyrie, b'{"interval_ms": 10}')
    assert response["StatusCode"] == 200
    assert b"id: 1\nevent: tick" in payload_of(events)
    complete = complete_of(events)
    assert complete["ErrorCode"] == "Error"
    details = json.loads(complete["ErrorDetails"])
    assert details["errorMessage"] == "boom: exploded after the first event"


def test_js_sdk_receives_a_streamify_response_handler_write_by_write(start_pyrie: StartPyrie) -> None:
    pyrie = node_function(start_pyrie, "plain")
    with MachineWait() as machine:
        lines = js_sdk_stream(pyrie, {"count": 4, "interval_ms": 200})
    assert [line["event"] for line in lines] == ["PayloadChunk"] * 4 + ["InvokeComplete"]
    assert lines[-1]["errorCode"] is None
    assert js_payload(lines).count(b"event: tick") == 4
    assert_one_by_one([line["ms"] / 1000 for line in lines[:4]], 0.2, machine.waited)


def test_js_sdk_sees_a_throw_mid_stream_in_invoke_complete(start_pyrie: StartPyrie) -> None:
    pyrie = node_function(start_pyrie, "boom")
    lines = js_sdk_stream(pyrie, {"interval_ms": 10})
    assert lines[-1]["event"] == "InvokeComplete"
    assert lines[-1]["errorCode"] == "Error"
    assert json.loads(lines[-1]["errorDetails"])["errorMessage"] == "boom: exploded after the first event"
    assert b"event: tick" in js_payload(lines)


def test_js_sdk_receives_a_python_generator_handler_write_by_write(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("streams.ticks", cwd=FUNCTIONS)
    with MachineWait() as machine:
        lines = js_sdk_stream(pyrie, {"count": 4, "interval": 0.2})
    assert [line["event"] for line in lines] == ["PayloadChunk"] * 4 + ["InvokeComplete"]
    assert [base64.b64decode(line["payload"]).split()[1] for line in lines[:4]] == [b"0", b"1", b"2", b"3"]
    assert_one_by_one([line["ms"] / 1000 for line in lines[:4]], 0.2, machine.waited)


def test_js_sdk_sees_a_python_exception_mid_stream_in_invoke_complete(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("streams.fails_mid_stream", cwd=FUNCTIONS)
    lines = js_sdk_stream(pyrie, {})
    assert js_payload(lines) == b"first part\n"
    assert lines[-1]["event"] == "InvokeComplete"
    assert lines[-1]["errorCode"] == "ValueError"
