"""InvokeWithResponseStream with boto3 and pyrie's runtime client: events as the runtime writes them, errors in
InvokeComplete once the stream has started, Lambda's rest-json errors before it."""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from pyrie_core.pipe.messages import End, Outcome
from tests.conftest import StartPyrie
from tests.cpu_wait import MachineWait, assert_on_time, assert_one_by_one
from tests.harness import RAW_RUNTIME, Pyrie
from tests.test_invoke_api import lambda_client

FUNCTIONS = Path(__file__).parent / "functions"
STREAM_PATH = "/2021-11-15/functions/function/response-streaming-invocations"


def stream(pyrie: Pyrie, payload: bytes = b"{}", **kwargs: Any) -> tuple[dict[str, Any], list[tuple[float, dict]]]:
    """Call invoke_with_response_stream; return the response and each event with its arrival time."""
    response = lambda_client(pyrie).invoke_with_response_stream(FunctionName="function", Payload=payload, **kwargs)
    events = [(time.monotonic(), event) for event in response["EventStream"]]
    return response, events


def payload_of(events: list[tuple[float, dict]]) -> bytes:
    return b"".join(event["PayloadChunk"]["Payload"] for _, event in events if "PayloadChunk" in event)


def complete_of(events: list[tuple[float, dict]]) -> dict[str, str]:
    kinds = [next(iter(event)) for _, event in events]
    assert kinds[-1] == "InvokeComplete" and kinds.count("InvokeComplete") == 1, kinds
    return events[-1][1]["InvokeComplete"]


def test_each_write_is_an_event_that_arrives_as_it_is_written(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("streams.ticks", cwd=FUNCTIONS)
    with MachineWait() as machine:
        response, events = stream(pyrie, b'{"count": 5, "interval": 0.2}')
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert response["ResponseStreamContentType"] == "application/vnd.amazon.eventstream"
    assert complete_of(events) == {}
    chunks = [(at, event["PayloadChunk"]["Payload"]) for at, event in events[:-1]]
    assert [chunk.split()[1] for _, chunk in chunks] == [b"0", b"1", b"2", b"3", b"4"]
    assert_one_by_one([at for at, _ in chunks], 0.2, machine.waited)  # not all at the end
    for at, chunk in chunks:  # the handler stamped each with its time
        assert_on_time("an event's arrival", at - float(chunk.split()[2]), 0.1, machine.waited)


def test_a_buffered_result_arrives_as_chunks_then_invoke_complete(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(sys.executable, "-m", "awslambdaric", "handlers.echo", cwd=FUNCTIONS)
    _, events = stream(pyrie, b'{"hello": "world"}')
    assert json.loads(payload_of(events)) == {"hello": "world"}
    assert complete_of(events) == {}


def test_a_large_stream_reassembles(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("handlers.big", cwd=FUNCTIONS)
    _, events = stream(pyrie, b'{"size": 3000000}')
    assert payload_of(events) == b'"' + b"x" * 3_000_000 + b'"'
    assert len(events) > 2  # more than one PayloadChunk: relayed in pieces


def test_an_exception_mid_stream_ends_in_invoke_complete_with_the_error(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("streams.fails_mid_stream", cwd=FUNCTIONS)
    response, events = stream(pyrie)
    assert response["StatusCode"] == 200
    assert payload_of(events) == b"first part\n"
    complete = complete_of(events)
    assert complete["ErrorCode"] == "ValueError"
    details = json.loads(complete["ErrorDetails"])
    assert (details["errorType"], details["errorMessage"]) == ("ValueError", "exploded after the first part")


def test_an_error_before_the_stream_is_reported_in_invoke_complete(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("streams.fails_before_first_item", cwd=FUNCTIONS)
    response, events = stream(pyrie)
    assert response["StatusCode"] == 200
    assert [next(iter(event)) for _, event in events] == ["InvokeComplete"]
    complete = complete_of(events)
    assert complete["ErrorCode"] == "ValueError"
    assert json.loads(complete["ErrorDetails"])["errorMessage"] == "exploded before anything"


def test_a_timeout_mid_stream_is_reported_in_invoke_complete(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("web.chunk_then_sleep", cwd=FUNCTIONS, extra_env={"AWS_LAMBDA_FUNCTION_TIMEOUT": "1"})
    _, events = stream(pyrie)
    assert payload_of(events) == b"first\n"
    complete = complete_of(events)
    assert complete["ErrorCode"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in json.loads(complete["ErrorDetails"])["errorMessage"]


def test_a_crash_mid_stream_is_reported_in_invoke_complete(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("web.chunk_then_exit", cwd=FUNCTIONS)
    _, events = stream(pyrie)
    assert payload_of(events) == b"first\n"
    complete = complete_of(events)
    assert complete["ErrorCode"] in ("Runtime.ExitError", "Runtime.TruncatedResponse")
    assert "RequestId: " in json.loads(complete["ErrorDetails"])["errorMessage"]


def test_unknown_function_is_resource_not_found(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("streams.ticks", cwd=FUNCTIONS)
    client = lambda_client(pyrie)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke_with_response_stream(FunctionName="no-such-function", Payload=b"{}")


def test_oversize_request_is_413_before_the_stream(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("streams.ticks", cwd=FUNCTIONS)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        stream(pyrie, b"x" * (6_291_456 + 1))
    assert caught.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_throttle_is_too_many_requests_before_the_stream(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("--max-concurrency", "1", "handlers.sleep", cwd=FUNCTIONS)
    busy = threading.Thread(target=pyrie.invoke, args=(b'{"seconds": 3}',))
    busy.start()
    try:
        pyrie.wait_for_output("START RequestId")
        client = lambda_client(pyrie)
        with pytest.raises(client.exceptions.TooManyRequestsException):
            client.invoke_with_response_stream(FunctionName="function", Payload=b"{}")
    finally:
        busy.join(30)


def test_event_invocation_type_is_rejected(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("streams.ticks", cwd=FUNCTIONS)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        stream(pyrie, InvocationType="Event")
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Message"] == (
        "1 validation error detected: Value 'Event' at 'invocationType' failed to satisfy constraint: "
        "Member must satisfy enum value set: [RequestResponse, DryRun]"
    )
    assert "START RequestId" not in pyrie.stdout()  # nothing ran


def test_dry_run_is_204_without_events(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("streams.ticks", cwd=FUNCTIONS)
    response, events = stream(pyrie, InvocationType="DryRun")
    assert response["StatusCode"] == 204
    assert events == []


def test_the_raw_response_is_an_event_stream(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(sys.executable, RAW_RUNTIME, extra_env={"RAW_SCENARIO": "echo"})
    response = pyrie.invoke(b'{"a": 1}', path=STREAM_PATH)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/vnd.amazon.eventstream"
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert response.headers["X-Amzn-RequestId"]
    assert response.headers["X-Amz-Executed-Version"] == "$LATEST"
    assert b"PayloadChunk" in response.content and b"InvokeComplete" in response.content


def test_invoke_complete_carries_the_log_tail() -> None:
    """The log tail (End.log_result) goes into InvokeComplete.LogResult as it is."""
    from invoke_api.stream_invoke import complete_event
    from tests.test_eventstream import decode

    ok = End(Outcome.OK, request_id="r", log_result="U1RBUlQ=")
    failed = End(Outcome.FUNCTION_ERROR, request_id="r", error_type="E", body=b'{"e":1}', log_result="RU5E")
    assert json.loads(decode(complete_event(ok))[0].payload) == {"LogResult": "U1RBUlQ="}
    assert json.loads(decode(complete_event(failed))[0].payload) == {
        "ErrorCode": "E",
        "ErrorDetails": '{"e":1}',
        "LogResult": "RU5E",
    }


def test_log_type_tail_puts_the_log_tail_in_invoke_complete(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("streams.ticks", cwd=FUNCTIONS)
    _, events = stream(pyrie, b'{"count": 1}', LogType="Tail")
    tail = base64.b64decode(complete_of(events)["LogResult"]).decode()
    assert "START RequestId" in tail and "END RequestId" in tail
