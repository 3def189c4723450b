"""Streamed responses from pyrie's own runtime client (generator handlers), relayed write by write."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.conftest import StartPyrie
from tests.cpu_wait import MachineWait, assert_on_time, assert_one_by_one
from tests.harness import INVOKE_PATH
from tests.streaming import stream_invoke

FUNCTIONS = Path(__file__).parent / "functions"
EXAMPLES = Path(__file__).parent.parent / "examples"


def test_each_yield_reaches_the_client_at_the_handlers_pace(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("streams.ticks", cwd=FUNCTIONS)
    with MachineWait() as machine:
        received = stream_invoke(pyrie.port, INVOKE_PATH, b'{"count": 5, "interval": 0.2}')
    assert b"Content-Type: text/event-stream" in received.head
    assert b"Lambda-Runtime-Function-Response-Mode: streaming" in received.head
    assert received.complete
    events = [frame for _, frame in received.frames()]
    assert [e.split()[1] for e in events] == [b"0", b"1", b"2", b"3", b"4"]
    assert_one_by_one([t for t, _ in received.frames()], 0.2, machine.waited)  # not all at the end
    # each event arrives soon after the handler yielded it (same machine: the monotonic clock is shared)
    for arrival, chunk in received.frames():
        assert_on_time("an event's arrival", arrival - float(chunk.split()[2]), 0.1, machine.waited)


def test_a_plain_generator_streams_as_octet_stream(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("streams.plain_generator", cwd=FUNCTIONS)
    response = pyrie.invoke(b"{}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Lambda-Runtime-Function-Response-Mode"] == "streaming"
    assert response.content == b"one,two,three"


def test_an_exception_mid_stream_truncates_the_response(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("streams.fails_mid_stream", cwd=FUNCTIONS)
    received = stream_invoke(pyrie.port, INVOKE_PATH)
    assert received.body == b"first part\n"
    assert not received.complete
    pyrie.wait_for_output("exploded after the first part")


def test_an_exception_before_the_first_item_is_a_plain_function_error(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("streams.fails_before_first_item", cwd=FUNCTIONS)
    response = pyrie.invoke(b"{}")
    assert response.status_code == 200
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    body = response.json()
    assert (body["errorType"], body["errorMessage"]) == ("ValueError", "exploded before anything")


def test_the_sse_example(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("app.handler", cwd=EXAMPLES / "python-sse")
    received = stream_invoke(pyrie.port, INVOKE_PATH, json.dumps({"count": 3, "interval_ms": 100}).encode())
    assert received.complete
    assert len(received.frames()) == 3
    request_id = received.head.split(b"X-Amzn-RequestId: ")[1].split(b"\r\n")[0].decode()
    first = received.frames()[0][1].decode()
    assert first.startswith("id: 1\nevent: tick\ndata: ")
    assert json.loads(first.split("data: ")[1]) == {"n": 1, "requestId": request_id}


def test_the_buffered_example(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("app.handler", cwd=EXAMPLES / "python-buffered")
    response = pyrie.invoke(b'{"hello": "world"}')
    assert response.status_code == 200
    assert response.json()["event"] == {"hello": "world"}


def test_client_context_reaches_runtime_client_handlers(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("handlers.client_context", cwd=FUNCTIONS)
    header = base64.b64encode(json.dumps({"custom": {"k": "v"}, "env": {"e": 1}}).encode()).decode()
    result = pyrie.invoke(b"{}", headers={"X-Amz-Client-Context": header}).json()
    assert (result["custom"], result["env"]) == ({"k": "v"}, {"e": 1})
