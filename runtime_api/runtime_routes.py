"""The Runtime API's handlers (2018-06-01), as rie-behaviour.md §6 specifies them.

Every handler validates before it transitions: request id (400), then the state machine (403), then the headers
(400), then the size (413), the Go emulator's order. Bodies are JSON rendered as Go renders them (trailing newline).

With init caching (SnapStart) the runtime also has ``/restore/next``, which answers 200 with an empty body once the
environment is restored, and ``/restore/error``; a refused ``/restore/next`` names its target ``Ready``, as the Go
emulator's does (internal/lambda/rapi/handler/restorenext.go).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Final

from pyrie_core import lambda_errors as errors
from pyrie_core.lambda_errors import FunctionError
from pyrie_core.machine import InvalidTransition, Machine
from runtime_api.host import Lane, RuntimeHost, RuntimeInvocation, RuntimeRefusal
from runtime_api.http_connection import ConnectionClosed, HttpConnection, Request, error_response, json_body
from runtime_api.runtime_states import RuntimeState

__all__ = [
    "init_error",
    "invocation_error",
    "invocation_response",
    "next_invocation",
    "ping",
    "restore_error",
    "restore_next",
]

JSON: Final = ("Content-Type", "application/json")
ACCEPTED: Final = json_body({"status": "OK"})
ERROR_CAUSE_TYPE: Final = "application/vnd.aws.lambda.error.cause+json"
RESPONSE_MODE: Final = "lambda-runtime-function-response-mode"
ERROR_TYPE: Final = "lambda-runtime-function-error-type"
ERROR_BODY: Final = "lambda-runtime-function-error-body"


def ping(host: RuntimeHost, request: Request, conn: HttpConnection, params: dict[str, str]) -> None:
    conn.respond(200, [("Content-Type", "text/plain; charset=utf-8")], b"pong")


def next_invocation(host: RuntimeHost, request: Request, conn: HttpConnection, params: dict[str, str]) -> None:
    try:
        invocation = host.next_invocation(conn.peer)
    except RuntimeRefusal as refused:
        error_response(conn, refused.status, refused.error_type, refused.message)
        return
    conn.respond(200, _event_headers(host, invocation), invocation.request.payload)


def invocation_response(host: RuntimeHost, request: Request, conn: HttpConnection, params: dict[str, str]) -> None:
    lane = _lane(host, params, conn)
    if lane is None or not _transition(lane.machine, RuntimeState.INVOCATION_RESPONSE, conn):
        return
    invocation = lane.invocation
    host.response_started(invocation)
    mode = request.header(RESPONSE_MODE)
    if mode is not None and mode != "streaming":
        invocation.fail_platform(
            FunctionError.INVALID_RESPONSE_MODE,
            f"Lambda-Runtime-Function-Response-Mode must be 'streaming' when given, not {mode!r}",
        )
        _answered(host, lane)
        error_response(conn, 400, "InvalidFunctionResponseMode", "Invalid function response mode")
        return
    content_type = request.header("content-type")
    if mode == "streaming":
        _relay_stream(host, lane, request, conn, content_type)
        return
    limit = host.limits.response_bytes
    body, size = conn.read_body(limit)
    if size > limit:
        invocation.fail(FunctionError.RESPONSE_TOO_LARGE, errors.response_too_large_body(limit))
        _answered(host, lane)
        error_response(conn, 413, "RequestEntityTooLarge", f"Exceeded maximum allowed payload size ({limit} bytes).")
        return
    invocation.respond(content_type, body)
    _answered(host, lane)
    conn.respond(202, [JSON], ACCEPTED)


def _relay_stream(
    host: RuntimeHost, lane: Lane, request: Request, conn: HttpConnection, content_type: str | None
) -> None:
    """Hand each piece of a streamed body on as it arrives, then end it as its trailers say."""
    invocation = lane.invocation
    invocation.start_stream(content_type)
    limit = host.limits.streamed_response_bytes
    size = 0
    try:
        for piece in conn.body():
            size += len(piece)
            if size > limit:
                break
            invocation.write(piece)
    except ConnectionClosed:
        host.stream_broken(invocation)
        _answered(host, lane)
        raise
    if size > limit:
        invocation.fail(FunctionError.RESPONSE_TOO_LARGE, errors.response_too_large_body(limit))
        _answered(host, lane)
        # The rest is not read to answer 413 after it: a runtime may stream for ever, and reading it would hold the
        # loop. The runtime sees its connection close.
        raise ConnectionClosed(f"streamed response over {limit} bytes")
    error_type = request.trailers.get(ERROR_TYPE)
    if error_type:
        invocation.fail(error_type, _decode_base64(request.trailers.get(ERROR_BODY, "")))
    else:
        invocation.succeed()
    _answered(host, lane)
    conn.respond(202, [JSON], ACCEPTED)


def invocation_error(host: RuntimeHost, request: Request, conn: HttpConnection, params: dict[str, str]) -> None:
    lane = _lane(host, params, conn)
    if lane is None or not _transition(lane.machine, RuntimeState.INVOCATION_ERROR_RESPONSE, conn):
        return
    host.response_started(lane.invocation)
    body, _ = conn.read_body(host.limits.response_bytes)
    body = _client_error_body(request, body)
    error_type = errors.error_type_of(body) or errors.normalise_error_type(request.header(ERROR_TYPE))
    lane.invocation.fail(error_type or FunctionError.UNKNOWN, body)
    _answered(host, lane)
    conn.respond(202, [JSON], ACCEPTED)


def init_error(host: RuntimeHost, request: Request, conn: HttpConnection, params: dict[str, str]) -> None:
    if host.snapstart is not None and host.runtime.state is RuntimeState.RESTORING:
        # The Go emulator takes an /init/error during the restore as the restore's error (initerror.go: "remove once
        # Languages team change the endpoint to /restore/error").
        restore_error(host, request, conn, params)
        return
    if not _transition(host.runtime, RuntimeState.INIT_ERROR, conn):
        return
    body, _ = conn.read_body(host.limits.response_bytes)
    body = _client_error_body(request, body)
    # The init error is of the type the runtime declares in its header when that is one of Lambda's (the Go emulator
    # and Lambda take the header: a before-snapshot hook's failure is Runtime.BeforeSnapshotError whatever the
    # exception); else of the body's errorType. The caller gets the body as posted either way.
    header = request.header(ERROR_TYPE)
    declared = header if header and errors.normalise_error_type(header) == header else None
    error_type = declared or errors.error_type_of(body) or errors.normalise_error_type(header)
    conn.respond(202, [JSON], ACCEPTED)
    host.init_failed(error_type or FunctionError.UNKNOWN, body)


def restore_next(host: RuntimeHost, request: Request, conn: HttpConnection, params: dict[str, str]) -> None:
    snapstart = host.snapstart
    assert snapstart is not None, "routed only with init caching"
    try:
        host.runtime.transition(RuntimeState.RESTORE_READY)
    except InvalidTransition as refused:
        named = InvalidTransition(refused.machine, refused.current, RuntimeState.READY)  # the Go emulator's name
        error_response(conn, 403, "InvalidStateTransition", str(named))
        return
    snapstart.restore_next()
    conn.respond(200)


def restore_error(host: RuntimeHost, request: Request, conn: HttpConnection, params: dict[str, str]) -> None:
    snapstart = host.snapstart
    assert snapstart is not None, "routed only with init caching"
    if not _transition(host.runtime, RuntimeState.RESTORE_ERROR, conn):
        return
    error_type = errors.normalise_error_type(request.header(ERROR_TYPE)) or FunctionError.UNKNOWN
    conn.respond(202, [JSON], ACCEPTED)
    snapstart.restore_failed(error_type)


def _event_headers(host: RuntimeHost, invocation: RuntimeInvocation) -> list[tuple[str, str]]:
    request = invocation.request
    headers = [
        ("Content-Type", "application/json"),
        ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
        ("Lambda-Runtime-Deadline-Ms", str(invocation.deadline_ms)),
        ("Lambda-Runtime-Invoked-Function-Arn", host.function.arn),
        ("Lambda-Runtime-Trace-Id", invocation.trace_id),
    ]
    if request.client_context:
        headers.append(("Lambda-Runtime-Client-Context", request.client_context))
    if request.tenant_id:
        headers.append(("Lambda-Runtime-Aws-Tenant-Id", request.tenant_id))
    return headers


def _lane(host: RuntimeHost, params: dict[str, str], conn: HttpConnection) -> Lane | None:
    try:
        return host.lane(params["request_id"])
    except RuntimeRefusal as refused:
        error_response(conn, refused.status, refused.error_type, refused.message)
        return None


def _answered(host: RuntimeHost, lane: Lane) -> None:
    lane.machine.transition(RuntimeState.RESPONSE_SENT)
    host.answered(lane.invocation)


def _transition(machine: Machine[RuntimeState], target: RuntimeState, conn: HttpConnection) -> bool:
    try:
        machine.transition(target)
    except InvalidTransition as refused:
        error_response(conn, 403, "InvalidStateTransition", str(refused))
        return False
    return True


def _client_error_body(request: Request, body: bytes) -> bytes:
    """What the caller sees of an error body: as posted, except the structured error-cause type, which Lambda
    re-renders without its ``errorCause`` (rie-behaviour.md §6.2)."""
    if request.header("content-type") != ERROR_CAUSE_TYPE:
        return body
    try:
        cause = json.loads(body)
        if not isinstance(cause, dict):
            raise ValueError("not an object")
    except (ValueError, RecursionError):
        return b'"Invalid error body"'
    shown = {"errorMessage": cause.get("errorMessage"), "errorType": cause.get("errorType")}
    if cause.get("stackTrace"):
        shown["stackTrace"] = cause["stackTrace"]
    return json.dumps(shown, separators=(",", ":")).encode()


def _decode_base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return b""
