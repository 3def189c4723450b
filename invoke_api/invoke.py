"""Invoke (``POST /2015-03-31/functions/{name}/invocations``): validate, hand to the supervisor, relay the answer.

A buffered result is answered with the runtime's Content-Type and a Content-Length; a streamed one is relayed with
each runtime write flushed to the client as its frame arrives. A failure after bytes have gone out cannot become an
error status any more: the response is cut short and the connection closed, so the client sees it truncated.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import parse_qs

from invoke_api.json_payload import json_error
from invoke_api.relay import Relay, RelayBody, start, start_streaming
from invoke_api.responses import (
    StartResponse,
    function_error,
    service_error,
    service_error_json,
    service_exception_json,
    status_line,
)
from invoke_api.supervisor_client import SupervisorClient, SupervisorConnection, SupervisorUnavailable
from pyrie_core.lambda_errors import ServiceError
from pyrie_core.limits import Limits
from pyrie_core.pipe.messages import Chunk, End, Head, Invoke, Outcome

__all__ = ["RequestError", "answer_end", "begin", "handle", "read_invoke", "refuse"]

log = logging.getLogger("pyrie.invoke_api")

LIMITS: Final = Limits()
CLIENT_CONTEXT_MAX: Final = 3583  # bytes of base64, Lambda's limit
BUFFERED_CONTENT_TYPE: Final = "application/json"
SUPERVISOR_UNAVAILABLE: Final = "The emulator's supervisor is unavailable; try again."
_HEADER_SAFE: Final = re.compile(r"[\x20-\x7e\t]*")


class RequestError(Exception):
    """The request is wrong before it reaches any function: a rest-json service error."""

    def __init__(
        self, status: int, code: str, message: str, body: bytes | None = None, body_fields: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.body = service_error_json(code, message, body_fields) if body is None else body


def handle(
    client: SupervisorClient, environ: dict[str, Any], start_response: StartResponse, name: str
) -> Iterable[bytes]:
    try:
        request = read_invoke(environ, name)
        conn, first = begin(client, request)
    except RequestError as exc:
        return refuse(start_response, exc)
    if isinstance(first, End):
        client.release(conn)
        return answer_end(start_response, first)
    headers = [
        ("Content-Type", first.content_type),
        ("X-Amzn-RequestId", first.request_id),
        ("X-Amz-Executed-Version", first.executed_version),
    ]
    if first.streaming:
        headers.append(("Lambda-Runtime-Function-Response-Mode", "streaming"))
    elif first.length is not None:
        headers.append(("Content-Length", str(first.length)))
    headers += first.headers.items()  # a durable execution's X-Amz-Durable-Execution-Arn
    relay = Relay(client, conn, environ, first.request_id)
    try:
        if request.log_type == "Tail" and not first.streaming:
            return _answer_with_log(relay, start_response, headers)
        if first.streaming:
            start_streaming(start_response, "200 OK", headers)
        else:
            start_response("200 OK", headers)
    except BaseException:
        relay.close()  # the body was never handed over: give up the invoke (or the connection, if it had ended)
        raise
    return RelayBody(relay, relay.chunks())


def _answer_with_log(relay: Relay, start_response: StartResponse, headers: list[tuple[str, str]]) -> Iterable[bytes]:
    """A buffered response whose caller asked for the log tail: X-Amz-Log-Result is a header, so the body (at most
    6 MB) is held until the final frame brings the tail. A streamed response cannot wait; it goes without it."""
    body: list[bytes] = []
    while isinstance(message := relay.read(), Chunk):
        body.append(message.data)
    relay.close()
    if message.log_result:
        headers.append(("X-Amz-Log-Result", message.log_result))
    start_response("200 OK", headers)
    return body


def refuse(start_response: StartResponse, exc: RequestError) -> Iterable[bytes]:
    """Answer a request refused before it reached any function, with one log line (``begin`` has logged why the
    supervisor is unavailable)."""
    if exc.status < 500:
        log.info("invoke refused: %d %s: %s", exc.status, exc.code, exc.message.replace("\n", " "))
    return service_error(start_response, exc.status, exc.code, exc.body)


def begin(client: SupervisorClient, request: Invoke) -> tuple[SupervisorConnection, Head | End]:
    """Start the invoke: its supervisor connection and first answer. ``RequestError`` (503) when the supervisor
    cannot be reached."""
    try:
        return start(client, request)
    except SupervisorUnavailable as exc:
        log.error("%s", exc)
        raise RequestError(
            503, ServiceError.SERVICE, SUPERVISOR_UNAVAILABLE, service_exception_json(SUPERVISOR_UNAVAILABLE)
        ) from None


def read_invoke(environ: dict[str, Any], name: str, *, stream: bool = False) -> Invoke:
    """The Invoke request as the supervisor takes it; ``RequestError`` for what Lambda refuses up front."""
    invocation_type = environ.get("HTTP_X_AMZ_INVOCATION_TYPE") or "RequestResponse"
    limit = LIMITS.event_request_bytes if invocation_type == "Event" else LIMITS.request_bytes
    length_text = environ.get("CONTENT_LENGTH") or ""
    if length_text.isdigit() and int(length_text) > limit:
        raise _too_large(invocation_type, int(length_text), limit)
    payload = environ["wsgi.input"].read(limit + 1) if length_text != "0" else b""
    if len(payload) > limit:
        raise _too_large(invocation_type, len(payload), limit)
    if (message := json_error(payload)) is not None:
        raise RequestError(400, ServiceError.INVALID_REQUEST_CONTENT, message)
    qualifier = parse_qs(environ.get("QUERY_STRING", "")).get("Qualifier", [None])[0]
    return Invoke(
        function=name,
        payload=payload,
        qualifier=qualifier,
        invocation_type=invocation_type,
        log_type=environ.get("HTTP_X_AMZ_LOG_TYPE") or "None",
        client_context=_client_context(environ.get("HTTP_X_AMZ_CLIENT_CONTEXT")),
        trace_id=_header_value(environ.get("HTTP_X_AMZN_TRACE_ID")),
        tenant_id=_header_value(environ.get("HTTP_X_AMZ_TENANT_ID")),
        stream=stream,
        durable_execution_name=environ.get("HTTP_X_AMZ_DURABLE_EXECUTION_NAME") or None,
    )


def _header_value(value: str | None) -> str | None:
    """A caller's header passed on to the runtime as a header of its own: only printable ASCII goes."""
    return value if value and _HEADER_SAFE.fullmatch(value) else None


def _too_large(invocation_type: str, size: int, limit: int) -> RequestError:
    # Lambda's wording, synchronous and asynchronous (lambda-protocols.md §a). The size of a chunked body is what
    # was read of it. gunicorn reads and drops a body left unread before it parses the connection's next request.
    if invocation_type == "Event":
        message = f"{size} byte payload is too large for the Event invocation type (limit {limit} bytes)"
    else:
        message = f"Request must be smaller than {limit} bytes for the InvokeFunction operation"
    return RequestError(413, ServiceError.REQUEST_TOO_LARGE, message)


def _client_context(header: str | None) -> str | None:
    """The decoded ``X-Amz-Client-Context``: standard, padded base64 of a JSON object, as Lambda requires."""
    if not header:
        return None
    invalid = RequestError(
        400, ServiceError.INVALID_REQUEST_CONTENT, "Client context must be a valid Base64-encoded JSON object."
    )
    if len(header) > CLIENT_CONTEXT_MAX:
        raise RequestError(
            400,
            ServiceError.INVALID_REQUEST_CONTENT,
            f"Client context must be at most {CLIENT_CONTEXT_MAX} bytes of base64, not {len(header)}.",
        )
    try:
        text = base64.b64decode(header, validate=True).decode("utf-8")
        parsed = json.loads(text)
    except (binascii.Error, ValueError):
        raise invalid from None
    if not isinstance(parsed, dict):
        raise invalid
    # The runtime gets it as a header: a pretty-printed or non-ASCII document is passed on in compact JSON.
    return text if _HEADER_SAFE.fullmatch(text) else json.dumps(parsed, separators=(",", ":"))


def answer_end(start_response: StartResponse, end: End) -> Iterable[bytes]:
    extra = [("X-Amz-Log-Result", end.log_result)] if end.log_result else []
    extra += end.headers.items()  # Retry-After, X-Amz-Durable-Execution-Arn
    if end.outcome is Outcome.FUNCTION_ERROR:
        return function_error(start_response, end.body, end.request_id, end.executed_version, extra)
    if end.outcome is Outcome.SERVICE_ERROR:
        status = end.status or 500
        code = end.error_type or ServiceError.SERVICE
        return service_error(
            start_response,
            status,
            code,
            end.body,
            request_id=end.request_id,
            executed_version=end.executed_version,
            extra_headers=extra,
        )
    # success without a body: 202 (Event) or 204 (DryRun)
    status = end.status or 200
    headers = [
        ("X-Amzn-RequestId", end.request_id),
        ("X-Amz-Executed-Version", end.executed_version),
        ("Content-Length", "0"),
        *extra,
    ]
    if status == 200:
        headers.append(("Content-Type", BUFFERED_CONTENT_TYPE))
    start_response(status_line(status), headers)
    return [b""]
