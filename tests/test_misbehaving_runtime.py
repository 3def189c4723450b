"""A runtime that breaks the Runtime API's rules gets the Go emulator's status codes and bodies, the caller gets
Lambda's answer, and pyrie survives with no process left behind (checked by the start_pyrie fixture)."""

from __future__ import annotations

import json
import socket
import sys
from typing import Any

import pytest

from tests.conftest import StartPyrie
from tests.harness import INVOKE_PATH, RAW_RUNTIME, Pyrie


def raw(start_pyrie: StartPyrie, scenario: str, **env: str) -> Pyrie:
    return start_pyrie(sys.executable, RAW_RUNTIME, extra_env={"RAW_SCENARIO": scenario, **env})


def observed(pyrie: Pyrie, call: str) -> dict[str, Any]:
    pyrie.wait_for_output(f'"call": "{call}"')
    for line in pyrie.stdout_lines():
        if line.startswith("OBSERVED "):
            record = json.loads(line.removeprefix("OBSERVED "))
            if record["call"] == call:
                return record
    raise AssertionError(f"no observation of {call}")


def go_json(payload: dict[str, str]) -> str:
    return json.dumps(payload, separators=(",", ":")) + "\n"


def assert_function_error(response: Any, error_type: str, message: str) -> None:
    assert response.status_code == 200
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    request_id = response.headers["X-Amzn-RequestId"]
    assert response.json() == {"errorType": error_type, "errorMessage": f"RequestId: {request_id} Error: {message}"}


def test_wrong_request_id_is_refused_and_the_right_one_accepted(start_pyrie: StartPyrie) -> None:
    pyrie = raw(start_pyrie, "wrong_request_id")
    response = pyrie.invoke(b'{"n":1}')
    assert response.status_code == 200
    assert response.content == b'{"n":1}'
    wrong = observed(pyrie, "wrong_id")
    assert wrong["status"] == 400
    assert wrong["body"] == go_json({"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"})
    assert observed(pyrie, "response")["status"] == 202


def test_second_response_is_a_state_error(start_pyrie: StartPyrie) -> None:
    pyrie = raw(start_pyrie, "double_response")
    assert pyrie.invoke(b'"first"').content == b'"first"'
    second = observed(pyrie, "second_response")
    assert second["status"] == 403
    assert second["body"] == go_json(
        {
            "errorMessage": "State transition from RuntimeResponseSentState to InvocationResponse failed for runtime. "
            "Error: State transition is not allowed",
            "errorType": "InvalidStateTransition",
        }
    )


def test_response_after_error_is_a_state_error(start_pyrie: StartPyrie) -> None:
    pyrie = raw(start_pyrie, "response_after_error")
    response = pyrie.invoke(b"{}")
    assert response.status_code == 200
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    assert response.content == b'{"errorMessage":"x","errorType":"Y"}'
    assert observed(pyrie, "error")["status"] == 202
    late = observed(pyrie, "response")
    assert late["status"] == 403
    assert "from RuntimeResponseSentState to InvocationResponse" in late["body"]


def test_bad_response_mode(start_pyrie: StartPyrie) -> None:
    pyrie = raw(start_pyrie, "bad_response_mode")
    response = pyrie.invoke(b"{}")
    assert response.status_code == 200
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    assert response.json()["errorType"] == "Runtime.InvalidResponseModeHeader"
    refused = observed(pyrie, "response")
    assert refused["status"] == 400
    assert refused["body"] == go_json(
        {"errorMessage": "Invalid function response mode", "errorType": "InvalidFunctionResponseMode"}
    )
    # the runtime could carry on: the next invoke reaches it
    assert pyrie.invoke(b"{}").headers["X-Amz-Function-Error"] == "Unhandled"


def test_exit_mid_invoke_then_recover(start_pyrie: StartPyrie) -> None:
    pyrie = raw(start_pyrie, "exit_mid_invoke")
    for _ in range(2):  # each invoke starts a new runtime, which exits again
        response = pyrie.invoke(b"{}")
        assert_function_error(response, "Runtime.ExitError", "Runtime exited with error: exit status 3")
    assert pyrie.stdout().count("exiting during the invoke") == 2


def test_killed_mid_invoke(start_pyrie: StartPyrie) -> None:
    pyrie = raw(start_pyrie, "killed_mid_invoke")
    assert_function_error(pyrie.invoke(b"{}"), "Runtime.ExitError", "Runtime exited with error: signal: killed")


def test_exit_during_init(start_pyrie: StartPyrie) -> None:
    pyrie = raw(start_pyrie, "exit_during_init")
    response = pyrie.invoke(b"{}")
    assert_function_error(response, "Runtime.ExitError", "Runtime exited with error: exit status 2")
    request_id = response.headers["X-Amzn-RequestId"]
    pyrie.wait_for_lines("REPORT", 1)
    assert f"START RequestId: {request_id} Version: $LATEST" in pyrie.stdout_lines()
    assert "exiting before /next" in pyrie.stdout()


def test_init_error_body_reaches_the_caller(start_pyrie: StartPyrie) -> None:
    pyrie = raw(start_pyrie, "init_error")
    response = pyrie.invoke(b"{}")
    assert response.status_code == 200
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    assert response.content == b'{"errorMessage":"cannot start","errorType":"Custom.InitFailure"}'
    assert observed(pyrie, "init_error") == {"call": "init_error", "status": 202, "body": '{"status":"OK"}\n'}


def test_init_error_during_an_invoke_is_a_state_error(start_pyrie: StartPyrie) -> None:
    pyrie = raw(start_pyrie, "init_error_during_invoke")
    assert pyrie.invoke(b'"ok"').content == b'"ok"'
    refused = observed(pyrie, "init_error")
    assert refused["status"] == 403
    assert "State transition from Running to InitError failed for runtime" in refused["body"]


def test_exit_after_response(start_pyrie: StartPyrie) -> None:
    pyrie = raw(start_pyrie, "exit_after_response")
    assert pyrie.invoke(b'"one"').content == b'"one"'
    assert pyrie.invoke(b'"two"').content == b'"two"'  # a new runtime


def test_next_again_before_answering_returns_the_same_event(start_pyrie: StartPyrie) -> None:
    pyrie = raw(start_pyrie, "next_twice")
    assert pyrie.invoke(b'{"k":"v"}').content == b'{"k":"v"}'
    assert json.loads(observed(pyrie, "next_again")["body"]) == {"same": True}


@pytest.mark.parametrize("size", [6_291_556, 6_291_557])
def test_buffered_response_size_limit(start_pyrie: StartPyrie, size: int) -> None:
    pyrie = raw(start_pyrie, "oversize")
    response = pyrie.invoke(json.dumps({"size": size}))
    assert response.status_code == 200
    result = observed(pyrie, "response")
    if size == 6_291_556:
        assert len(response.content) == size
        assert response.headers["Content-Length"] == str(size)
        assert result["status"] == 202
        return
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    assert response.content == (
        b'{"errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes).",'
        b'"errorType":"Function.ResponseSizeTooLarge"}'
    )
    assert result["status"] == 413
    assert result["body"] == go_json(
        {"errorMessage": "Exceeded maximum allowed payload size (6291556 bytes).", "errorType": "RequestEntityTooLarge"}
    )


def raw_invoke(pyrie: Pyrie, payload: bytes = b"{}") -> bytes:
    """Invoke over a raw socket and return everything the server sent until it closed the connection."""
    with socket.create_connection(("127.0.0.1", pyrie.port), timeout=10) as sock:
        request = (
            f"POST {INVOKE_PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        sock.sendall(request.encode() + payload)
        received = b""
        while data := sock.recv(65536):
            received += data
    return received


def test_mid_stream_error_truncates_the_response(start_pyrie: StartPyrie) -> None:
    pyrie = raw(start_pyrie, "stream_error_trailers")
    received = raw_invoke(pyrie)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Lambda-Runtime-Function-Response-Mode: streaming" in head
    assert b"part one\n" in body
    assert not body.endswith(b"0\r\n\r\n"), "the chunked body must not end cleanly"
    assert observed(pyrie, "stream")["status"] == 202
    assert raw_invoke(pyrie).startswith(b"HTTP/1.1 200 OK")  # the same runtime takes the next invoke


def test_crash_mid_stream_truncates_and_recovers(start_pyrie: StartPyrie) -> None:
    pyrie = raw(start_pyrie, "stream_then_exit")
    received = raw_invoke(pyrie)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"part one\n" in body
    assert b"part two" not in body
    assert not body.endswith(b"0\r\n\r\n")


def test_stream_cut_short_by_a_runtime_that_lives_on_is_reported_truncated(start_pyrie: StartPyrie) -> None:
    pyrie = raw(start_pyrie, "stream_cut", AWS_LAMBDA_LOG_FORMAT="JSON")
    received = raw_invoke(pyrie)
    assert b"part one\n" in received and not received.endswith(b"0\r\n\r\n")
    pyrie.wait_for_output('"type":"platform.report"')
    records = {
        record["type"]: record["record"]
        for record in map(json.loads, (line for line in pyrie.stdout_lines() if line.startswith('{"time":')))
    }
    for done in ("platform.runtimeDone", "platform.report"):
        assert (records[done]["status"], records[done]["errorType"]) == ("failure", "Runtime.TruncatedResponse")
    assert raw_invoke(pyrie).startswith(b"HTTP/1.1 200 OK")  # the same runtime takes the next invoke


def test_runtime_api_routes(start_pyrie: StartPyrie) -> None:
    pyrie = raw(start_pyrie, "routes")
    assert pyrie.invoke(b"{}").status_code == 200
    assert observed(pyrie, "ping") == {"call": "ping", "status": 200, "body": "pong"}
    assert observed(pyrie, "unknown") == {"call": "unknown", "status": 404, "body": "404 page not found\n"}
    assert observed(pyrie, "wrong_method")["status"] == 405
    # without --enable-init-caching the restore routes and the credentials endpoint are not there, as in the Go emulator
    not_found = {"status": 404, "body": "404 page not found\n"}
    assert observed(pyrie, "restore_next") == {"call": "restore_next", **not_found}
    assert observed(pyrie, "credentials") == {"call": "credentials", **not_found}


def test_init_that_never_finishes_times_out(start_pyrie: StartPyrie) -> None:
    pyrie = raw(start_pyrie, "hang_in_init", PYRIE_INIT_TIMEOUT="1")
    response = pyrie.invoke(b"{}")
    assert_function_error(response, "Sandbox.Timedout", "Init timed out after 1.00 seconds")
