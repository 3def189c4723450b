"""The Runtime API's handlers (2018-06-01), as rie-behaviour.md §6 specifies them.

A handler reads the request and reports what the runtime did to the environment (``runtime_api.host.RuntimeHost``),
which decides: it refuses what the Runtime API refuses (``RuntimeRefusal``: the handler answers it) and moves the
runtime's state. The refusals come in the Go emulator's order: request id (400), then the state machine (403), then
the headers (400), then the size (413). Bodies are JSON rendered as Go renders them (trailing newline).

With init caching (SnapStart) the runtime also has ``/restore/next``, which answers 200 with an empty body once the
environment is restored, and ``/restore/error``.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Final

from pyrie_core import lambda_errors as errors
from pyrie_core.lambda_errors import FunctionError
from runtime_api.host import ReportedError, RuntimeHost, RuntimeInvocation, RuntimeRefusal
from runtime_api.http_connection import ConnectionClosed, HttpConnection, Request, error_response, json_body

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
        refuse(conn, refused)
        return
    conn.respond(200, _event_headers(host, invocation), invocation.request.payload)


def invocation_response(host: RuntimeHost, request: Request, conn: HttpConnection, params: dict[str, str]) -> None:
    request_id = params["request_id"]
    try:
        invocation = host.answer_begins(request_id, error=False)
    except RuntimeRefusal as refused:
        refuse(conn, refused)
        return
    mode = request.header(RESPONSE_MODE)
    if mode is not None and mode != "streaming":
        invocation.fail_platform(
            FunctionError.INVALID_RESPONSE_MODE,
            f"Lambda-Runtime-Function-Response-Mode must be 'streaming' when given, not {mode!r}",
        )
        host.answer_ends(request_id)
        error_response(conn, 400, "InvalidFunctionResponseMode", "Invalid function response mode")
        return
    content_type = request.header("content-type")
    if mode == "streaming":
        _relay_stream(host, invocation, request, conn, content_type)
        return
    limit = host.limits.response_bytes
    body, size = conn.read_body(limit)
    if size > limit:
        invocation.fail(FunctionError.RESPONSE_TOO_LARGE, errors.response_too_large_body(limit))
        host.answer_ends(request_id)
        error_response(conn, 413, "RequestEntityTooLarge", f"Exceeded maximum allowed payload size ({limit} bytes).")
        return
    invocation.respond(content_type, body)
    host.answer_ends(request_id)
    conn.respond(202, [JSON], ACCEPTED)


def _relay_stream(
    host: RuntimeHost, invocation: RuntimeInvocation, request: Request, conn: HttpConnection, content_type: str | None
) -> None:
    """Hand each piece of a streamed body on as it arrives, then end it as its trailers say."""
    request_id = invocation.request_id
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
        host.stream_broken(request_id)
        host.answer_ends(request_id)
        raise
    if size > limit:
        invocation.fail(FunctionError.RESPONSE_TOO_LARGE, errors.response_too_large_body(limit))
        host.answer_ends(request_id)
        # The rest is not read to answer 413 after it: a runtime may stream for ever, and reading it would hold the
        # loop. The runtime sees its connection close.
        raise ConnectionClosed(f"streamed response over {limit} bytes")
    error_type = request.trailers.get(ERROR_TYPE)
    if error_type:
        invocation.fail(error_type, _decode_base64(request.trailers.get(ERROR_BODY, "")))
    else:
        invocation.succeed()
    host.answer_ends(request_id)
    conn.respond(202, [JSON], ACCEPTED)


def invocation_error(host: RuntimeHost, request: Request, conn: HttpConnection, params: dict[str, str]) -> None:
    request_id = params["request_id"]
    try:
        invocation = host.answer_begins(request_id, error=True)
    except RuntimeRefusal as refused:
        refuse(conn, refused)
        return
    body, _ = conn.read_body(host.limits.response_bytes)
    body = _client_error_body(request, body)
    error_type = errors.error_type_of(body) or errors.normalise_error_type(request.header(ERROR_TYPE))
    invocation.fail(error_type or FunctionError.UNKNOWN, body)
    host.answer_ends(request_id)
    conn.respond(202, [JSON], ACCEPTED)


def init_error(host: RuntimeHost, request: Request, conn: HttpConnection, params: dict[str, str]) -> None:
    body, _ = conn.read_body(host.limits.response_bytes)
    try:
        host.init_failed(ReportedError(request.header(ERROR_TYPE), _client_error_body(request, body)))
    except RuntimeRefusal as refused:
        refuse(conn, refused)
        return
    conn.respond(202, [JSON], ACCEPTED)


def restore_next(host: RuntimeHost, request: Request, conn: HttpConnection, params: dict[str, str]) -> None:
    try:
        host.restore_next()
    except RuntimeRefusal as refused:
        refuse(conn, refused)
        return
    conn.respond(200)


def restore_error(host: RuntimeHost, request: Request, conn: HttpConnection, params: dict[str, str]) -> None:
    try:
        host.restore_failed(ReportedError(request.header(ERROR_TYPE)))
    except RuntimeRefusal as refused:
        refuse(conn, refused)
        return
    conn.respond(202, [JSON], ACCEPTED)


def refuse(conn: HttpConnection, refused: RuntimeRefusal) -> None:
    error_response(conn, refused.status, refused.error_type, refused.message)


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
