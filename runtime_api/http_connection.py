"""HTTP/1.1 for the Runtime API: h11 over one gevent socket, with request bodies read incrementally.

h11 does the parsing (and gives us chunked bodies piece by piece, and request trailers, which gevent's pywsgi
drops); this module only moves bytes between it and the socket and shapes what handlers see: a ``Request``, a body
they can iterate or read whole, and ``respond``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import gevent
import h11

from pyrie_core.socket_io import send_all

__all__ = ["ConnectionClosed", "HttpConnection", "Request", "error_response", "json_body"]

RECV_SIZE: Final = 64 * 1024
# A body is handed on as soon as the socket has nothing more for now: one piece per runtime write while the relay
# keeps up, the writes that queued up together when it falls behind. A piece never grows past this size, so a huge
# write never sits whole in memory.
FLUSH_SIZE: Final = 128 * 1024


class ConnectionClosed(Exception):
    """The peer went away or broke HTTP; the connection is finished."""


@dataclass(slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    chunked: bool
    trailers: dict[str, str] = field(default_factory=dict)  # filled once the body has been read to its end

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


class HttpConnection:
    """The server side of one keep-alive connection from a runtime or extension."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._h11 = h11.Connection(h11.SERVER)
        self._request: Request | None = None

    def next_request(self) -> Request | None:
        """The next request's head, or ``None`` when the peer closed the connection between requests."""
        conn = self._h11
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        elif conn.our_state is not h11.IDLE or conn.their_state is not h11.IDLE:
            return None  # the last exchange did not end cleanly (h11 MUST_CLOSE or similar)
        event = self._next_event()
        if isinstance(event, h11.ConnectionClosed):
            return None
        if not isinstance(event, h11.Request):
            raise ConnectionClosed(f"unexpected {type(event).__name__} instead of a request")
        headers: dict[str, str] = {}
        for raw_name, raw_value in event.headers:
            name = raw_name.decode("latin-1")
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        target = event.target.decode("latin-1")
        self._request = Request(
            method=event.method.decode("ascii"),
            path=target.partition("?")[0],
            headers=headers,
            chunked="chunked" in headers.get("transfer-encoding", "").lower(),
        )
        return self._request

    def body(self) -> Iterator[bytes]:
        """The request body piece by piece, each piece what arrived together (at most ``FLUSH_SIZE`` bytes)."""
        assert self._request is not None
        pending: list[bytes] = []
        pending_size = 0
        while True:
            event = self._next_event(flush_first=bool(pending))
            if event is h11.NEED_DATA or pending_size >= FLUSH_SIZE:
                yield b"".join(pending)
                pending.clear()
                pending_size = 0
            if event is h11.NEED_DATA:
                continue
            if isinstance(event, h11.Data):
                pending.append(event.data)
                pending_size += len(event.data)
            elif isinstance(event, h11.EndOfMessage):
                if pending:
                    yield b"".join(pending)
                self._request.trailers = {
                    name.decode("latin-1"): value.decode("latin-1") for name, value in event.headers
                }
                return
            else:
                raise ConnectionClosed(f"connection ended inside a request body ({type(event).__name__})")

    def read_body(self, limit: int) -> tuple[bytes, int]:
        """The whole body if it is at most ``limit`` bytes (else what fits), and its full size; reads it all."""
        parts: list[bytes] = []
        kept = 0
        size = 0
        for piece in self.body():
            gevent.sleep(0)  # a socket with data is read without yielding: a huge body must not hold the loop
            size += len(piece)
            if kept < limit:
                part = piece[: limit - kept]
                parts.append(part)
                kept += len(part)
        return b"".join(parts), size

    def discard_body(self) -> None:
        """Read the rest of the request body and drop it."""
        assert self._request is not None
        while True:
            gevent.sleep(0)  # as in read_body
            event = self._next_event()
            if isinstance(event, h11.EndOfMessage):
                self._request.trailers = {
                    name.decode("latin-1"): value.decode("latin-1") for name, value in event.headers
                }
                return
            if not isinstance(event, h11.Data):
                raise ConnectionClosed(f"connection ended inside a request body ({type(event).__name__})")

    def respond(self, status: int, headers: Iterable[tuple[str, str]] = (), body: bytes = b"") -> None:
        """Send a whole response. A request body the handler did not read is read and dropped first, so the
        connection stays usable and the peer is not cut off mid-upload."""
        conn = self._h11
        if conn.their_state is h11.SEND_BODY:
            self.discard_body()
        head = h11.Response(
            status_code=status,
            headers=[*headers, ("Content-Length", str(len(body)))],
        )
        try:
            data = conn.send(head)
            if body:
                data += conn.send(h11.Data(data=body))
            data += conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            raise ConnectionClosed(f"cannot respond: {exc}") from exc
        self._sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()

    def _next_event(self, flush_first: bool = False) -> Any:
        """The next event, reading from the socket as needed; with ``flush_first``, ``NEED_DATA`` is returned
        instead of the first wait for more bytes, so the caller can pass on what it holds before waiting."""
        conn = self._h11
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                self._answer_protocol_error(exc)
                raise ConnectionClosed(f"bad HTTP from peer: {exc}") from exc
            if event is not h11.NEED_DATA:
                return event
            if flush_first:
                return event
            try:
                data = self._sock.recv(RECV_SIZE)
            except OSError as exc:
                raise ConnectionClosed(str(exc)) from exc
            conn.receive_data(data)

    def _answer_protocol_error(self, exc: h11.RemoteProtocolError) -> None:
        if self._h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = f"{exc}\n".encode()
        head = f"HTTP/1.1 {exc.error_status_hint} Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
        head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        with contextlib.suppress(OSError):
            self._sock.sendall(head.encode() + body)

    def _sendall(self, data: bytes) -> None:
        try:
            send_all(self._sock, data)
        except OSError as exc:
            raise ConnectionClosed(str(exc)) from exc


def json_body(value: Any) -> bytes:
    """JSON as the Go emulator renders it: compact, with a trailing newline."""
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"


def error_response(conn: HttpConnection, status: int, error_type: str, message: str) -> None:
    """The Go emulator's error body: ``{"errorMessage":...,"errorType":...}`` and a newline."""
    conn.respond(
        status, [("Content-Type", "application/json")], json_body({"errorMessage": message, "errorType": error_type})
    )
