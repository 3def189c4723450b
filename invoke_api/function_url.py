"""Function URLs: on their own listener every method and path is the function (lambda-protocols.md §c, §d).

The request becomes a payload-format-2.0 event (``url_event``) and an ordinary invoke; the supervisor does not know
it came through a URL. Its answer is mapped back (``url_response``): a buffered result from its JSON, a streamed
one with the HTTP prelude from that prelude, its body then relayed write by write as it arrives, so a browser's
``EventSource`` receives server-sent events one by one; any other stream is passed through as a 200 with the
runtime's content type. A failure before the response starts is Lambda's 502 ``Internal Server Error``; after
it, the response is cut short as on the Invoke API.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any, Final

from invoke_api.invoke import LIMITS, RequestError, begin
from invoke_api.relay import Relay, RelayBody, start_streaming
from invoke_api.request_target import request_target
from invoke_api.responses import StartResponse, status_line
from invoke_api.supervisor_client import SupervisorClient
from invoke_api.url_event import UrlRequest, build_event
from invoke_api.url_response import (
    FAILURE,
    HTTP_INTEGRATION_CONTENT_TYPE,
    BadResponse,
    HttpResponse,
    from_buffered,
    from_prelude,
    split_prelude,
)
from pyrie_core.ids import new_request_id, new_trace_id
from pyrie_core.lambda_errors import ServiceError
from pyrie_core.pipe.messages import End, Invoke, Outcome

__all__ = ["handle"]

log = logging.getLogger("pyrie.invoke_api")

# How much of a stream may come before its prelude's 8 NUL bytes. API Gateway documents 16 KB for its prelude
# (response-transfer-mode-lambda.html); for Function URLs nothing is documented, and pyrie allows this much.
PRELUDE_MAX: Final = 1024 * 1024
_FUNCTION: Final = "function"  # the Go emulator's name for the one function: always resolves


def handle(client: SupervisorClient, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    body = environ["wsgi.input"].read(LIMITS.request_bytes + 1)
    trace_id = environ.get("HTTP_X_AMZN_TRACE_ID") or new_trace_id()
    event = build_event(_url_request(environ, body), request_id=new_request_id(), trace_id=trace_id)
    payload = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
    try:
        if len(body) > LIMITS.request_bytes or len(payload) > LIMITS.request_bytes:
            raise RequestError(
                413,
                ServiceError.REQUEST_TOO_LARGE,
                f"Request must be smaller than {LIMITS.request_bytes} bytes for the InvokeFunction operation",
            )
        conn, first = begin(client, Invoke(function=_FUNCTION, payload=payload, trace_id=trace_id))
    except RequestError as exc:
        if exc.status < 500:  # begin logged why the supervisor is unavailable
            log.info("function URL request refused: %d %s: %s", exc.status, exc.code, exc.message)
        return _service_error(start_response, exc.status, exc.code, exc.message)
    if isinstance(first, End):
        client.release(conn)
        return _answer_end(start_response, first)
    relay = Relay(client, conn, environ, first.request_id)
    try:
        if not first.streaming:
            return _buffered(relay, start_response)
        if first.content_type.partition(";")[0].strip().lower() == HTTP_INTEGRATION_CONTENT_TYPE:
            return _with_prelude(relay, start_response)
    except BaseException:
        relay.close()  # the response never started: give up the invoke
        raise
    _start(start_response, HttpResponse(200, [("Content-Type", first.content_type)]), relay.request_id)
    return RelayBody(relay, _stream(relay, b""))


def _url_request(environ: dict[str, Any], body: bytes) -> UrlRequest:
    raw_path, _, raw_query = _text(request_target(environ)).partition("?")
    headers = [(key[5:].replace("_", "-"), _text(value)) for key, value in environ.items() if key.startswith("HTTP_")]
    for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
        if environ.get(key):
            headers.append((name, _text(environ[key])))
    return UrlRequest(
        method=environ.get("REQUEST_METHOD", "GET"),
        raw_path=raw_path,
        raw_query=raw_query,
        headers=headers,
        body=body,
        source_ip=environ.get("REMOTE_ADDR", ""),
        protocol=environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
        server_port=str(environ.get("SERVER_PORT", "")),
    )


def _text(wsgi_string: str) -> str:
    """A WSGI string (the request's bytes decoded as latin-1, PEP 3333) as the UTF-8 text the client meant."""
    try:
        return wsgi_string.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:  # not a WSGI byte string after all
        return wsgi_string


def _buffered(relay: Relay, start_response: StartResponse) -> Iterable[bytes]:
    payload = b"".join(relay.chunks())
    relay.close()
    try:
        response = from_buffered(payload)
    except BadResponse as exc:
        log.info("function URL response %s: %s", relay.request_id, exc)
        response = FAILURE
    return _respond(start_response, response, relay.request_id)


def _with_prelude(relay: Relay, start_response: StartResponse) -> Iterable[bytes]:
    """Read up to the end of the prelude, answer with its status and headers, then relay the rest."""
    received = b""
    while (parts := split_prelude(received)) is None:
        message = relay.read()
        if isinstance(message, End):
            if message.outcome is not Outcome.OK:  # nothing has gone out: the caller gets the 502
                relay.close()
                return _respond(start_response, FAILURE, relay.request_id)
            parts = (received, b"")  # the stream ended without its separator: all of it is the prelude
            break
        received += message.data
        if len(received) > PRELUDE_MAX:
            log.info("function URL response %s: no end of the HTTP prelude in %d bytes", relay.request_id, PRELUDE_MAX)
            relay.close()
            return _respond(start_response, FAILURE, relay.request_id)
    prelude, rest = parts
    try:
        response = from_prelude(prelude)
    except BadResponse as exc:
        log.info("function URL response %s: %s", relay.request_id, exc)
        relay.close()
        return _respond(start_response, FAILURE, relay.request_id)
    _start(start_response, response, relay.request_id)
    return RelayBody(relay, _stream(relay, rest))


def _stream(relay: Relay, first: bytes) -> Iterator[bytes]:
    if first:
        yield first
    if not relay.ended:
        yield from relay.chunks()


def _answer_end(start_response: StartResponse, end: End) -> Iterable[bytes]:
    if end.outcome is Outcome.SERVICE_ERROR:
        try:
            fields = json.loads(end.body)
            message = str(fields.get("message") or fields.get("Message") or "")
        except (ValueError, AttributeError):
            message = ""
        return _service_error(start_response, end.status or 500, end.error_type or ServiceError.SERVICE, message)
    if end.outcome is Outcome.FUNCTION_ERROR:
        log.info("function URL response %s: %s", end.request_id, end.error_type)
        return _respond(start_response, FAILURE, end.request_id)
    return _respond(start_response, HttpResponse(end.status or 200), end.request_id)


def _service_error(start_response: StartResponse, status: int, code: str, message: str) -> Iterable[bytes]:
    # How a Function URL answers a throttle or an oversize request is not recorded anywhere we could find. This is
    # the shape AWS recorded for the URL errors it does answer itself (LocalStack's AWS-validated snapshots of
    # test_lambda_url_persists_after_alias_delete and test_lambda_url_non_existing_url): the status,
    # x-amzn-ErrorType and {"Message": ...}.
    body = json.dumps({"Message": message or None}, separators=(",", ":")).encode()
    headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)]
    return _respond(start_response, HttpResponse(status, headers, body), new_request_id())


def _start(start_response: StartResponse, response: HttpResponse, request_id: str) -> None:
    """Start a streamed response: its status line and headers go out now."""
    start_streaming(start_response, status_line(response.status), [*response.headers, ("X-Amzn-RequestId", request_id)])


def _respond(start_response: StartResponse, response: HttpResponse, request_id: str) -> Iterable[bytes]:
    headers = [*response.headers, ("Content-Length", str(len(response.body))), ("X-Amzn-RequestId", request_id)]
    start_response(status_line(response.status), headers)
    return [response.body]
