"""HTTP/1.1 for the Runtime API: llhttp (``runtime_api.http_parser``) over one gevent socket, with request bodies
read incrementally.

The parser gives chunked bodies piece by piece, and request trailers, which gevent's pywsgi drops; this module only
moves bytes between it and the socket and shapes what handlers see: a ``Request``, a body they can iterate or read
whole, and ``respond``, which writes a whole response (head and body) with one ``send``. A peer that sent
``Expect: 100-continue`` is told "100 Continue" when its body is first waited for.
"""

from __future__ import annotations

import http
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import gevent

from pyrie_core.socket_io import dropping, send_all, send_all_parts
from runtime_api.http_parser import NEED_DATA, EndOfMessage, ParseError, RequestHead, RequestParser

__all__ = ["ConnectionClosed", "HttpConnection", "Request", "error_response", "json_body"]

log = logging.getLogger(__name__)

RECV_SIZE: Final = 64 * 1024
# A body is handed on as soon as the socket has nothing more for now: one piece per runtime write while the relay
# keeps up, the writes that queued up together when it falls behind. A piece never grows past this size, so a huge
# write never sits whole in memory.
FLUSH_SIZE: Final = 128 * 1024
# A body read whole lets the loop run after each this many bytes: a socket with data is read without yielding.
YIELD_EVERY: Final = 1024 * 1024
# Status lines, rendered once: "HTTP/1.1 202 Accepted\r\n".
_STATUS_LINES: Final = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode("latin-1") for status in http.HTTPStatus
}
_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
# A response body at least this large is sent after its head without being copied behind it.
_SEND_APART: Final = 64 * 1024


class ConnectionClosed(Exception):
    """The peer went away or broke HTTP; the connection is finished."""


@dataclass(slots=True)
class Request:
    method: str
    path: str  # as received (percent-encoded), without the query
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    chunked: bool
    query: str = ""  # as received, without the "?"
    trailers: dict[str, str] = field(default_factory=dict)  # filled once the body has been read to its end

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


class HttpConnection:
    """The server side of one keep-alive connection from a runtime or extension."""

    def __init__(self, sock: Any, peer: tuple[str, int] = ("", 0)) -> None:
        self._sock = sock
        self.peer = peer  # the runtime's or extension's end: its address and port
        self._parser = RequestParser()
        self._request: Request | None = None
        self._body_done = True  # the current request's body has been read to its end
        self._responded = True  # the current request has been answered
        self._keep_alive = True  # whether another request may follow the current one's response
        self._head_method = False  # the current request is a HEAD: its response has no body
        # The peer waits for "100 Continue" before sending the current request's body (``Expect: 100-continue``,
        # which curl sends for a body over 1 MiB): it is sent when the body is first read, as Go's net/http does.
        self._continue_owed = False

    def next_request(self) -> Request | None:
        """The next request's head, or ``None`` when the peer closed the connection between requests (or the last
        exchange ended the connection)."""
        if not (self._responded and self._keep_alive):
            return None  # the last request was not answered, or the connection ends with its answer
        event = self._next_event()
        if not isinstance(event, RequestHead):
            return None  # the peer closed the connection
        headers: dict[str, str] = {}
        for name, value in event.headers:
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        path, _, query = event.target.partition("?")
        self._request = Request(
            method=event.method,
            path=path,
            headers=headers,
            chunked="chunked" in headers.get("transfer-encoding", "").lower(),
            query=query,
        )
        self._body_done = False
        self._responded = False
        self._head_method = event.method == "HEAD"
        self._continue_owed = event.http_version == "1.1" and headers.get("expect", "").lower() == "100-continue"
        return self._request

    def body(self) -> Iterator[bytes]:
        """The request body piece by piece, each piece what arrived together (at most ``FLUSH_SIZE`` bytes)."""
        assert self._request is not None
        if self._body_done:
            return
        pending: list[bytes] = []
        pending_size = 0
        while True:
            event = self._next_event(flush_first=bool(pending))
            if event is NEED_DATA or pending_size >= FLUSH_SIZE:
                yield b"".join(pending)
                pending.clear()
                pending_size = 0
            if event is NEED_DATA:
                continue
            if type(event) is bytes:
                pending.append(event)
                pending_size += len(event)
            elif isinstance(event, EndOfMessage):
                if pending:
                    yield b"".join(pending)
                self._end_of_body(event)
                return
            else:
                raise ConnectionClosed(f"connection ended inside a request body ({event!r})")

    def read_body(self, limit: int) -> tuple[bytes, int]:
        """The whole body if it is at most ``limit`` bytes (else what fits), and its full size; reads it all."""
        assert self._request is not None
        parts: list[bytes] = []
        kept = 0
        size = 0
        unyielded = 0
        while not self._body_done:
            event = self._next_event()
            if type(event) is bytes:
                size += len(event)
                unyielded += len(event)
                if unyielded >= YIELD_EVERY:  # a huge body must not hold the loop
                    gevent.sleep(0)
                    unyielded = 0
                if kept < limit:
                    part = event[: limit - kept] if kept + len(event) > limit else event
                    parts.append(part)
                    kept += len(part)
            elif isinstance(event, EndOfMessage):
                self._end_of_body(event)
            else:
                raise ConnectionClosed(f"connection ended inside a request body ({event!r})")
        return (parts[0] if len(parts) == 1 else b"".join(parts)), size

    def discard_body(self) -> None:
        """Read the rest of the request body and drop it."""
        assert self._request is not None
        while not self._body_done:
            gevent.sleep(0)  # as in read_body
            event = self._next_event()
            if isinstance(event, EndOfMessage):
                self._end_of_body(event)
            elif type(event) is not bytes:
                raise ConnectionClosed(f"connection ended inside a request body ({event!r})")

    def respond(self, status: int, headers: Iterable[tuple[str, str]] = (), body: bytes = b"") -> None:
        """Send a whole response. A request body the handler did not read is read and dropped first, so the
        connection stays usable and the peer is not cut off mid-upload."""
        if self._responded:
            raise ConnectionClosed("cannot respond: no request waits for an answer")
        if not self._body_done:
            self.discard_body()
        status_line = _STATUS_LINES.get(status) or f"HTTP/1.1 {status} \r\n".encode("latin-1")
        lines = [f"{name}: {value}\r\n" for name, value in headers]
        head = "".join(lines)
        if head.count("\n") != len(lines) or head.count("\r") != len(lines) or "\0" in head:
            raise ConnectionClosed(f"cannot respond: a header holds a line break or NUL: {head!r}")
        head += f"Content-Length: {len(body)}\r\n"
        if not self._keep_alive:
            head += "Connection: close\r\n"
        data = status_line + head.encode("latin-1") + b"\r\n"
        self._responded = True
        if not body or self._head_method:
            self._sendall(data)
        elif len(body) < _SEND_APART:
            self._sendall(data + body)
        else:  # a large body (an event) leaves as it is, after the head, not copied behind it
            try:
                send_all_parts(self._sock, (data, body))
            except OSError as exc:
                raise ConnectionClosed(str(exc)) from exc

    def close(self) -> None:
        with dropping(log, "closing a Runtime API connection"):
            self._sock.close()

    def _end_of_body(self, end: EndOfMessage) -> None:
        assert self._request is not None
        self._body_done = True
        self._continue_owed = False  # the body came without it
        self._keep_alive = end.keep_alive
        self._request.trailers = dict(end.trailers)

    def _next_event(self, flush_first: bool = False) -> Any:
        """The next event, reading from the socket as needed; with ``flush_first``, ``NEED_DATA`` is returned
        instead of the first wait for more bytes, so the caller can pass on what it holds before waiting."""
        parser = self._parser
        while True:
            try:
                event = parser.next_event()
            except ParseError as exc:
                self._answer_protocol_error(exc)
                raise ConnectionClosed(f"bad HTTP from peer: {exc}") from exc
            if event is not NEED_DATA or flush_first:
                return event
            if self._continue_owed:
                self._continue_owed = False
                self._sendall(_CONTINUE)
            try:
                data = self._sock.recv(RECV_SIZE)
            except OSError as exc:
                raise ConnectionClosed(str(exc)) from exc
            parser.receive_data(data)

    def _answer_protocol_error(self, exc: ParseError) -> None:
        self._responded = True
        self._keep_alive = False
        body = f"{exc}\n".encode()
        head = f"HTTP/1.1 {exc.status} {_phrase(exc.status)}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        with dropping(log, "the answer to a request that broke HTTP (its peer is gone)"):
            self._sock.sendall(head.encode() + body)

    def _sendall(self, data: bytes) -> None:
        try:
            send_all(self._sock, data)
        except OSError as exc:
            raise ConnectionClosed(str(exc)) from exc


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Bad Request"


def json_body(value: Any) -> bytes:
    """JSON as the Go emulator renders it: compact, with a trailing newline."""
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"


def error_response(conn: HttpConnection, status: int, error_type: str, message: str) -> None:
    """The Go emulator's error body: ``{"errorMessage":...,"errorType":...}`` and a newline."""
    conn.respond(
        status, [("Content-Type", "application/json")], json_body({"errorMessage": message, "errorType": error_type})
    )
