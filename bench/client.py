"""A small HTTP/1.1 client over one raw keep-alive socket, cheap enough to time an emulator with.

It does only what the bench needs: POST a body, read the status line and headers, and read the body framed by
Content-Length, chunked encoding or connection close, handing body bytes to a sink as they arrive together
with the CLOCK_MONOTONIC time of the `recv` that produced them. No parsing beyond the framing, no copies of the
body unless the caller keeps it.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

INVOKE_PATH = "/2015-03-31/functions/function/invocations"
STREAM_INVOKE_PATH = "/2021-11-15/functions/function/response-streaming-invocations"
_RECV_SIZE = 1024 * 1024
_MAX_HEAD = 64 * 1024

# A body sink: called with each piece of body and the monotonic time (ns) at which it was received.
Sink = Callable[[memoryview, int], None]


class ProtocolError(Exception):
    """The server's answer could not be parsed as HTTP/1.1, or the connection closed mid-answer."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    sent_ns: int  # just before the request's first byte was sent
    head_ns: int = 0  # when the end of the response head was received
    first_body_ns: int = 0  # when the first body byte was received (0: empty body)
    end_ns: int = 0  # when the last body byte was received
    body_size: int = 0
    body: bytearray = field(default_factory=bytearray)  # kept only when asked

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.sent_ns) / 1e9


class InvokeClient:
    """One keep-alive connection to an invoke endpoint; reconnects when the server closes it."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._scratch = bytearray(_RECV_SIZE)
        self._view = memoryview(self._scratch)
        self._recv_ns = 0

    def __enter__(self) -> InvokeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buf.clear()

    def connect(self) -> None:
        if self._sock is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            self._buf.clear()

    def invoke(
        self,
        body: bytes,
        *,
        path: str = INVOKE_PATH,
        keep_body: bool = True,
        sink: Sink | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """POST `body` and read the whole answer. Raises OSError or ProtocolError; the connection is then closed."""
        self.connect()
        assert self._sock is not None
        head = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        try:
            sent_ns = time.monotonic_ns()
            self._sock.sendall(request)
            return self._read_response(sent_ns, keep_body, sink)
        except BaseException:
            self.close()
            raise

    def _fill(self) -> int:
        assert self._sock is not None
        n = self._sock.recv_into(self._scratch)
        self._recv_ns = time.monotonic_ns()
        if n == 0:
            raise ProtocolError("connection closed by the server")
        self._buf += self._view[:n]
        return n

    def _read_line(self) -> bytes:
        while True:
            end = self._buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[: end + 2]
                return line
            if len(self._buf) > _MAX_HEAD:
                raise ProtocolError("line too long")
            self._fill()

    def _read_response(self, sent_ns: int, keep_body: bool, sink: Sink | None) -> Response:
        while True:
            end = self._buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self._buf) > _MAX_HEAD:
                raise ProtocolError("response head too long")
            self._fill()
        lines = bytes(self._buf[:end]).decode("latin-1").split("\r\n")
        del self._buf[: end + 4]
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {lines[0]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise ProtocolError(f"bad header line {line!r}")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        resp = Response(status=int(parts[1]), headers=headers, sent_ns=sent_ns, head_ns=self._recv_ns)

        def deliver(piece: memoryview) -> None:
            if not resp.body_size:
                resp.first_body_ns = self._recv_ns
            resp.body_size += len(piece)
            if keep_body:
                resp.body += piece
            if sink is not None:
                sink(piece, self._recv_ns)

        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._read_chunked(deliver)
        elif "content-length" in headers:
            self._read_exactly(int(headers["content-length"]), deliver)
        elif resp.status in (204, 304) or resp.status < 200:
            pass
        else:
            self._read_until_close(deliver)
        resp.end_ns = self._recv_ns if resp.body_size else time.monotonic_ns()
        if "close" in headers.get("connection", "").lower():
            self.close()
        return resp

    def _read_exactly(self, size: int, deliver: Callable[[memoryview], None]) -> None:
        remaining = size
        while remaining:
            if not self._buf:
                self._fill()
            take = min(remaining, len(self._buf))
            with memoryview(self._buf) as view, view[:take] as piece:
                deliver(piece)
            del self._buf[:take]
            remaining -= take

    def _read_chunked(self, deliver: Callable[[memoryview], None]) -> None:
        while True:
            size_line = self._read_line()
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size line {size_line[:40]!r}") from None
            if size == 0:
                while self._read_line():  # trailers, up to the empty line
                    pass
                return
            self._read_exactly(size, deliver)
            if self._read_line():
                raise ProtocolError("chunk not followed by CRLF")

    def _read_until_close(self, deliver: Callable[[memoryview], None]) -> None:
        try:
            while True:
                if self._buf:
                    with memoryview(self._buf) as view:
                        deliver(view)
                    self._buf.clear()
                self._fill()
        except ProtocolError:
            pass
        self.close()


class EventStreamSink:
    """A body sink for InvokeWithResponseStream's ``application/vnd.amazon.eventstream`` body: it follows the
    messages' framing and hands each ``PayloadChunk``'s payload to ``inner`` as it arrives, piece by piece and
    without copying it, with the receive time, so the workloads measure payload as they do on the plain invoke.

    Minimal on purpose: it reads each message's prelude (its lengths) and its ``:event-type`` header and skips the
    CRCs (tests/test_eventstream.py checks the encoding against botocore's decoder); the JSON of
    ``InvokeComplete`` ends up in ``complete``.
    """

    def __init__(self, inner: Sink | None = None) -> None:
        self.inner = inner
        self.payload_bytes = 0
        self.events = 0
        self.complete: dict[str, Any] | None = None
        self._head = bytearray()  # the current message's prelude and headers, while they arrive
        self._head_size = 12  # how many bytes the head has: the prelude, then prelude + headers
        self._payload_left = 0
        self._trailer_left = 0  # the message CRC, skipped
        self._event_type = b""
        self._json = bytearray()  # an InvokeComplete's payload

    def __call__(self, piece: memoryview, recv_ns: int) -> None:
        pos, size = 0, len(piece)
        while pos < size:
            if self._payload_left:
                take = min(self._payload_left, size - pos)
                if self._event_type == b"PayloadChunk":
                    self.payload_bytes += take
                    if self.inner is not None:
                        self.inner(piece[pos : pos + take], recv_ns)
                elif self._event_type == b"InvokeComplete":
                    self._json += piece[pos : pos + take]
                self._payload_left -= take
                pos += take
            elif self._trailer_left:
                take = min(self._trailer_left, size - pos)
                self._trailer_left -= take
                pos += take
                if not self._trailer_left:
                    self._message_done()
            else:
                take = min(self._head_size - len(self._head), size - pos)
                self._head += piece[pos : pos + take]
                pos += take
                if len(self._head) == self._head_size:
                    self._head_done()

    def _head_done(self) -> None:
        total, headers_length = struct.unpack_from(">II", self._head)
        if total < 16 + headers_length:
            raise ProtocolError(f"bad event-stream prelude: total {total}, headers {headers_length}")
        if self._head_size == 12:  # the prelude is in: now read the headers too
            self._head_size = 12 + headers_length
            if headers_length:
                return
        self._event_type = _event_type(memoryview(self._head)[12:])
        self._payload_left = total - 16 - headers_length
        self._trailer_left = 4
        self._head = bytearray()
        self._head_size = 12

    def _message_done(self) -> None:
        if self._event_type == b"InvokeComplete":
            self.complete = json.loads(bytes(self._json))
            self._json.clear()
        self.events += 1


def _event_type(headers: memoryview) -> bytes:
    """The value of the ``:event-type`` string header (b"" if there is none)."""
    pos = 0
    while pos < len(headers):
        name_length = headers[pos]
        name = bytes(headers[pos + 1 : pos + 1 + name_length])
        pos += 1 + name_length
        if headers[pos] != 7:  # the only value type Lambda's events use: a string
            raise ProtocolError(f"unexpected event-stream header type {headers[pos]}")
        (value_length,) = struct.unpack_from(">H", headers, pos + 1)
        value = bytes(headers[pos + 3 : pos + 3 + value_length])
        pos += 3 + value_length
        if name == b":event-type":
            return value
    return b""
