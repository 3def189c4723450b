"""Invoke (``POST /2015-03-31/functions/{name}/invocations``): validate, hand to the supervisor, relay the answer.

A buffered result is answered with the runtime's Content-Type and a Content-Length; a streamed one is relayed with
each runtime write flushed to the client as its frame arrives. A failure after bytes have gone out cannot become an
error status any more: the response is cut short and the connection closed, so the client sees it truncated.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import json
import logging
import re
import socket
from collections.abc import Iterable, Iterator
from typing import Any, Final, NoReturn
from urllib.parse import parse_qs

from invoke_api.responses import (
    StartResponse,
    function_error,
    service_error,
    service_error_json,
    service_unavailable,
    status_line,
)
from invoke_api.supervisor_client import SupervisorClient, SupervisorConnection, SupervisorUnavailable
from supervisor.config import Limits
from supervisor.messages import Cancel, Chunk, End, Head, Invoke, Outcome

__all__ = ["RequestError", "handle", "read_invoke"]

log = logging.getLogger("pyrie.invoke_api")

LIMITS: Final = Limits()
CLIENT_CONTEXT_MAX: Final = 3583  # bytes of base64, Lambda's limit
BUFFERED_CONTENT_TYPE: Final = "application/json"
_HEADER_SAFE: Final = re.compile(r"[\x20-\x7e\t]*")
SUPERVISOR_UNAVAILABLE: Final = "The emulator's supervisor is unavailable; try again."


class RequestError(Exception):
    """The request is wrong before it reaches any function: a rest-json service error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def handle(
    client: SupervisorClient, environ: dict[str, Any], start_response: StartResponse, name: str
) -> Iterable[bytes]:
    try:
        request = read_invoke(environ, name)
    except RequestError as exc:
        body = service_error_json(exc.code, str(exc))
        return service_error(start_response, exc.status, exc.code, body)
    try:
        conn, first = _start(client, request)
    except SupervisorUnavailable as exc:
        log.error("%s", exc)
        return service_unavailable(start_response, SUPERVISOR_UNAVAILABLE)
    if isinstance(first, End):
        client.release(conn)
        return _answer_end(start_response, first)
    headers = [
        ("Content-Type", first.content_type),
        ("X-Amzn-RequestId", first.request_id),
        ("X-Amz-Executed-Version", first.executed_version),
    ]
    if first.streaming:
        headers.append(("Lambda-Runtime-Function-Response-Mode", "streaming"))
    elif first.length is not None:
        headers.append(("Content-Length", str(first.length)))
    if request.log_type == "Tail" and not first.streaming:
        return _answer_with_log(client, conn, start_response, headers)
    write = start_response("200 OK", headers)
    if first.streaming:
        write(b"")  # the status line and headers go out now, before the first chunk
    return ResponseBody(client, conn, environ, first)


def _answer_with_log(
    client: SupervisorClient, conn: SupervisorConnection, start_response: StartResponse, headers: list[tuple[str, str]]
) -> Iterable[bytes]:
    """A buffered response whose caller asked for the log tail: X-Amz-Log-Result is a header, so the body (at most
    6 MB) is held until the final frame brings the tail. A streamed response cannot wait; it goes without it."""
    body: list[bytes] = []
    while True:
        try:
            message = conn.read()
        except SupervisorUnavailable:
            conn.close()
            raise
        if isinstance(message, Chunk):
            body.append(message.data)
        elif isinstance(message, End):
            break
        else:
            conn.close()
            raise SupervisorUnavailable(f"unexpected {type(message).__name__} inside a response")
    client.release(conn)
    if message.log_result:
        headers.append(("X-Amz-Log-Result", message.log_result))
    start_response("200 OK", headers)
    return body


def read_invoke(environ: dict[str, Any], name: str) -> Invoke:
    """The Invoke request as the supervisor takes it; ``RequestError`` for what Lambda refuses up front."""
    invocation_type = environ.get("HTTP_X_AMZ_INVOCATION_TYPE") or "RequestResponse"
    limit = LIMITS.event_request_bytes if invocation_type == "Event" else LIMITS.request_bytes
    length_text = environ.get("CONTENT_LENGTH") or ""
    if length_text.isdigit() and int(length_text) > limit:
        raise _too_large(invocation_type, int(length_text), limit)
    payload = environ["wsgi.input"].read(limit + 1) if length_text != "0" else b""
    if len(payload) > limit:
        raise _too_large(invocation_type, len(payload), limit)
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
    return RequestError(413, "RequestEntityTooLargeException", message)


def _client_context(header: str | None) -> str | None:
    """The decoded ``X-Amz-Client-Context``: standard, padded base64 of a JSON object, as Lambda requires."""
    if not header:
        return None
    invalid = RequestError(
        400, "InvalidRequestContentException", "Client context must be a valid Base64-encoded JSON object."
    )
    if len(header) > CLIENT_CONTEXT_MAX:
        raise RequestError(
            400,
            "InvalidRequestContentException",
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


def _start(client: SupervisorClient, request: Invoke) -> tuple[SupervisorConnection, Head | End]:
    """Send the invoke and wait for the first answer. A reused connection that turns out dead is replaced once,
    but only when the invoke could not have been sent on it."""
    conn = client.connect()
    try:
        conn.send(request)
    except SupervisorUnavailable:
        conn.close()
        if not conn.reused:
            raise
        conn = client.connect()
        conn.send(request)
    try:
        first = conn.read()
    except SupervisorUnavailable:
        conn.close()
        raise
    if not isinstance(first, Head | End):
        conn.close()
        raise SupervisorUnavailable(f"the supervisor answered with {type(first).__name__} first")
    return conn, first


def _answer_end(start_response: StartResponse, end: End) -> Iterable[bytes]:
    extra = [("X-Amz-Log-Result", end.log_result)] if end.log_result else []
    if end.outcome is Outcome.FUNCTION_ERROR:
        return function_error(start_response, end.body, end.request_id, end.executed_version, extra)
    if end.outcome is Outcome.SERVICE_ERROR:
        status = end.status or 500
        code = end.error_type or "ServiceException"
        extra += list(end.headers.items())
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


class ResponseBody:
    """The body of a response that has started: chunks as the supervisor sends them, until its End.

    gunicorn writes and flushes each yielded chunk at once. If the client goes away, gunicorn stops iterating and
    calls ``close``; the supervisor is then told (``Cancel``) and the connection is dropped, not reused.
    """

    def __init__(
        self, client: SupervisorClient, conn: SupervisorConnection, environ: dict[str, Any], head: Head
    ) -> None:
        self._client = client
        self._conn = conn
        self._environ = environ
        self._head = head
        self._ended = False

    def __iter__(self) -> Iterator[bytes]:
        while True:
            try:
                message = self._conn.read()
            except SupervisorUnavailable as exc:
                self._truncate(f"the supervisor connection broke: {exc}")
            if isinstance(message, Chunk):
                yield message.data
            elif isinstance(message, End):
                self._ended = True
                if message.outcome is not Outcome.OK:
                    self._truncate(f"{message.error_type}: {message.body[:200]!r}")
                return
            else:
                self._truncate(f"unexpected {type(message).__name__} inside a response")

    def _truncate(self, reason: str) -> NoReturn:
        """End the response here, visibly incomplete to the client: shut its connection, stop gunicorn quietly."""
        log.info("response %s cut short: %s", self._head.request_id, reason)
        # gunicorn's own gevent worker names the client's socket "gunicorn.socket", its pywsgi one "gunicorn.sock"
        client_socket = self._environ.get("gunicorn.socket") or self._environ.get("gunicorn.sock")
        if client_socket is not None:
            with contextlib.suppress(OSError):
                client_socket.shutdown(socket.SHUT_RDWR)
        # gunicorn treats EPIPE as the client having gone: it closes the connection without an error page.
        raise BrokenPipeError(errno.EPIPE, f"response truncated: {reason}")

    def close(self) -> None:
        if self._ended:
            self._client.release(self._conn)
            return
        with contextlib.suppress(SupervisorUnavailable):
            self._conn.send(Cancel())
        self._conn.close()
