"""HTTP/1.1 request parsing for the Runtime API: llhttp (through httptools) behind a pull interface like h11's.

Theory of operation: bytes from the socket go in with ``receive_data`` (``b""`` when the peer closed its side);
``next_event`` hands back, in order, a ``RequestHead``, the body's pieces (``bytes``) as they arrive, and an
``EndOfMessage`` with the request's trailers, then the next request's events; ``NEED_DATA`` when more bytes are
needed, ``CLOSED`` when the peer closed cleanly between requests. llhttp reports a chunked body's trailers as header
callbacks after the body: they go into the ``EndOfMessage``, which Lambda's error trailers need.

The parser never touches a socket, and holds at most what one ``receive_data`` produced: the caller feeds more only
once it has taken every event, so a pipelined request waits in the socket, not here.

Bad input raises ``ParseError`` with the status to answer: 400, 431 for a request head over ``MAX_HEAD_SIZE``
(h11's limit), 501 for a transfer coding other than chunked (as h11 answers). Events that came before the bad bytes
are handed out first. llhttp is stricter than h11 in a few places (bare LF line ends, obsolete line folding, both
Content-Length and Transfer-Encoding, lower-case methods: all 400 here), and laxer in one (empty lines before a
request line are skipped, as RFC 9112 asks); tests/test_http_parser.py checks both against h11 on the same bytes.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Final

import httptools

__all__ = [
    "CLOSED",
    "MAX_HEAD_SIZE",
    "NEED_DATA",
    "EndOfMessage",
    "ParseError",
    "RequestHead",
    "RequestParser",
]

# A request head (request line and headers), or a trailer section, may be at most this long: h11's default.
MAX_HEAD_SIZE: Final = 16 * 1024


class _Sentinel:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


NEED_DATA: Final = _Sentinel("NEED_DATA")
CLOSED: Final = _Sentinel("CLOSED")


class ParseError(Exception):
    """The peer broke HTTP/1.1; ``status`` is the answer it gets before the connection closes."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class RequestHead:
    method: str
    target: str
    headers: list[tuple[str, str]]  # names lower-case, in the order sent; names and values latin-1
    http_version: str  # "1.1", "1.0"


@dataclass(slots=True)
class EndOfMessage:
    trailers: list[tuple[str, str]] = field(default_factory=list)  # as ``RequestHead.headers``
    keep_alive: bool = True  # whether the connection may carry another request after this one's response


Event = RequestHead | bytes | EndOfMessage | _Sentinel


class RequestParser:
    """Incremental parser for the server side of one connection."""

    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._events: collections.deque[RequestHead | bytes | EndOfMessage] = collections.deque()
        self._error: ParseError | None = None  # raised once the events before it have been taken
        self._eof = False
        self._in_message = False
        # The message being parsed: its target (llhttp may hand it in pieces), its headers, then its trailers.
        self._target: list[bytes] = []
        self._headers: list[tuple[str, str]] = []
        self._head: RequestHead | None = None
        self._head_size = 0  # bytes of the head, or of the trailer section, seen so far
        # Bytes fed since llhttp last reported anything: it holds a header line that is still incomplete. A line
        # that never ends is refused once this passes MAX_HEAD_SIZE (so what is held stays bounded).
        self._quiet = 0

    # -- the pull interface -------------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Bytes from the peer; ``b""`` when it closed its side."""
        if self._error is not None or self._eof:
            if data:
                self._fail(ParseError("data after the end of the connection"))
            return
        if not data:
            self._eof = True
            if self._in_message:
                self._fail(ParseError("connection closed inside a request"))
            return
        self._quiet += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # An Upgrade or CONNECT request: the Runtime API switches to no other protocol. The request is answered
            # as any other (a 404 or 405), then the connection closes, since what follows it is not HTTP/1.1.
            self._upgraded()
            return
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            self._fail(cause if isinstance(cause, ParseError) else ParseError(str(exc)))
            return
        except httptools.HttpParserError as exc:
            self._fail(ParseError(_reason(exc), _status_of(exc)))
            return
        if self._quiet > MAX_HEAD_SIZE:
            self._fail(ParseError("request head too long", 431))

    def next_event(self) -> Event:
        """The next event, ``NEED_DATA``, or ``CLOSED``; raises ``ParseError`` when the bytes it reaches are bad."""
        if self._events:
            return self._events.popleft()
        if self._error is not None:
            raise self._error
        return CLOSED if self._eof else NEED_DATA

    # -- llhttp's callbacks (httptools calls these by name) -----------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_message = True
        self._head_size = 0
        self._target = []
        self._headers = []
        self._head = None

    def on_url(self, url: bytes) -> None:
        self._target.append(url)
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1").strip(" \t")  # llhttp keeps trailing whitespace; h11 and RFC 9110 drop it
        self._headers.append((key, text.lower() if key == "transfer-encoding" else text))

    def on_headers_complete(self) -> None:
        parser = self._parser
        headers = self._headers
        method = parser.get_method().decode("ascii")
        version = parser.get_http_version()
        codings = [value for name, value in headers if name == "transfer-encoding"]
        if codings and codings != ["chunked"]:
            raise ParseError("Only Transfer-Encoding: chunked is supported", 501)
        if version == "1.1" and not any(name == "host" for name, _ in headers):
            raise ParseError("Missing mandatory Host: header")
        self._head = RequestHead(method, b"".join(self._target).decode("latin-1"), headers, version)
        self._events.append(self._head)
        self._headers = []  # from here on: the trailers, if any
        self._head_size = 0
        self._quiet = 0

    def on_body(self, body: bytes) -> None:
        self._events.append(body)
        self._quiet = 0

    def on_chunk_header(self) -> None:
        self._quiet = 0

    def on_chunk_complete(self) -> None:
        self._quiet = 0

    def on_message_complete(self) -> None:
        self._in_message = False
        self._quiet = 0
        keep_alive = bool(self._parser.should_keep_alive()) and self._head is not None
        if self._head is not None and self._head.http_version != "1.1":
            keep_alive = False
        self._events.append(EndOfMessage(self._headers, keep_alive))
        self._headers = []

    # -- internals ----------------------------------------------------------------------------------------------

    def _count(self, size: int) -> None:
        self._quiet = 0
        self._head_size += size
        if self._head_size > MAX_HEAD_SIZE:
            raise ParseError("request head too long", 431)

    def _upgraded(self) -> None:
        for event in reversed(self._events):
            if isinstance(event, EndOfMessage):
                event.keep_alive = False
                break
        self._error = ParseError("protocol upgrade refused")

    def _fail(self, error: ParseError) -> None:
        if self._error is None:
            self._error = error


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _status_of(exc: httptools.HttpParserError) -> int:
    if "Transfer-Encoding" in str(exc) and "Content-Length" not in str(exc):
        return 501
    return 400
