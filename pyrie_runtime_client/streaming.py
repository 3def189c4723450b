"""Streamed responses: what handlers use to stream, and how a handler's result becomes a stream of chunks.

A handler's result is streamed when it is a ``StreamingResponse``, when the handler is marked with
``@streaming``, or when it is an iterator or iterable other than ``str``, bytes-like, ``dict``, ``list``,
``tuple``, set or ``None`` (a generator, say). Each item becomes one chunk sent as soon as it is produced;
``str`` items are encoded as UTF-8, bytes-like items are sent as they are, empty items are skipped.
"""

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar, overload

DEFAULT_CONTENT_TYPE = "application/octet-stream"
HTTP_INTEGRATION_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"
"""The content type of a stream that starts with an HTTP prelude (JSON, then 8 NUL bytes) for Function URLs."""
PRELUDE_END = bytes(8)
"""The 8 NUL bytes that end an HTTP prelude."""

STREAMING_ATTRIBUTE = "__lambda_streaming_content_type__"
"""Set by ``@streaming`` on the handler: the content type of its streams."""

Chunk = str | bytes | bytearray | memoryview
_BYTES_LIKE = (bytes, bytearray, memoryview)
# Results that are never streamed unless asked for (a set is refused too: its order is arbitrary).
_NOT_STREAMS = (str, bytes, bytearray, memoryview, dict, list, tuple, set, frozenset, Mapping)
_BUFFERED_TYPES = frozenset({dict, list, str, bytes, int, float, bool, tuple, type(None)})
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]+")

F = TypeVar("F", bound=Callable[..., Any])


class StreamingResponse:
    """A result to stream: ``body`` (an iterable of ``str``/bytes-like chunks, or one ``str``/bytes) sent as
    ``content_type``. ``content_type=None`` means the handler's ``@streaming`` content type, else
    ``application/octet-stream``.

    ``prelude`` is sent as the first chunks, once the body's first chunk exists (or the body turns out empty), so
    that an error before any body chunk is still reported as a plain error response. It is meant for the HTTP
    integration prelude of Function URLs (JSON, then 8 NUL bytes).
    """

    __slots__ = ("body", "content_type", "prelude")

    def __init__(
        self, body: Iterable[Chunk] | Chunk, content_type: str | None = None, *, prelude: Iterable[bytes] = ()
    ) -> None:
        self.body = body
        self.content_type = content_type
        self.prelude = tuple(prelude)

    def __repr__(self) -> str:
        return f"StreamingResponse({self.body!r}, content_type={self.content_type!r})"


def http_response_stream(
    body: Iterable[Chunk] | Chunk,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    cookies: Iterable[str] = (),
) -> StreamingResponse:
    """A streamed HTTP response for a Function URL: status, headers and cookies first, then ``body`` chunk by chunk.

    Return it from a handler::

        def handler(event, context):
            return http_response_stream(ticks(), headers={"Content-Type": "text/event-stream"})

    It is what Node's ``awslambda.HttpResponseStream.from(stream, {statusCode, headers, cookies})`` sends: the
    content type ``application/vnd.awslambda.http-integration-response`` and, before the body's first chunk, the
    prelude ``{"statusCode": ..., "headers": {...}, "cookies": [...]}`` and 8 NUL bytes, which a Function URL turns
    into the status line, the headers and one ``Set-Cookie`` per cookie. An exception before the body's first chunk
    is an ordinary function error (the URL answers 502); after it, the response is cut short.
    """
    if isinstance(status_code, bool) or not isinstance(status_code, int) or not 200 <= status_code <= 599:
        raise ValueError(f"status_code must be an HTTP status from 200 to 599, not {status_code!r}")
    prelude: dict[str, object] = {"statusCode": status_code}
    if headers:
        for name, value in headers.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError(f"header names and values must be str, not {name!r}: {value!r}")
        prelude["headers"] = dict(headers)
    cookie_list = list(cookies)
    if cookie_list:
        prelude["cookies"] = cookie_list
    encoded = json.dumps(prelude, separators=(",", ":")).encode("utf-8")
    return StreamingResponse(body, HTTP_INTEGRATION_CONTENT_TYPE, prelude=(encoded, PRELUDE_END))


@overload
def streaming(handler: F, /) -> F: ...
@overload
def streaming(*, content_type: str = DEFAULT_CONTENT_TYPE) -> Callable[[F], F]: ...
def streaming(handler: F | None = None, /, *, content_type: str = DEFAULT_CONTENT_TYPE) -> F | Callable[[F], F]:
    """Mark a handler as streaming its result with ``content_type``.

    ``@streaming(content_type="text/event-stream")`` on a generator function streams what it yields;
    bare ``@streaming`` uses ``application/octet-stream``. The handler itself is returned unchanged (called
    directly, a generator function still returns its generator). A marked handler may also return one
    ``str``/bytes (one chunk), ``None`` (an empty stream) or a ``StreamingResponse``.
    """
    check_content_type(content_type)

    def mark(function: F) -> F:
        setattr(function, STREAMING_ATTRIBUTE, content_type)
        return function

    return mark if handler is None else mark(handler)


def check_content_type(content_type: str) -> str:
    """``content_type`` if it can be sent as a header value, else ``ValueError``."""
    if not isinstance(content_type, str) or not _FIELD_VALUE.fullmatch(content_type):
        raise ValueError(f"invalid content type for a streamed response: {content_type!r}")
    return content_type


def is_stream_like(result: Any) -> bool:
    """Whether an unmarked result is streamed (an iterator or iterable that JSON would not encode)."""
    if type(result) in _BUFFERED_TYPES or isinstance(result, _NOT_STREAMS):
        return False
    return hasattr(result, "__iter__") or hasattr(result, "__next__")


def as_stream(result: Any, marked_content_type: str | None) -> StreamingResponse | None:
    """The stream a handler's result is sent as, or ``None`` if it is sent buffered."""
    if isinstance(result, StreamingResponse):
        return result
    if marked_content_type is not None or is_stream_like(result):
        return StreamingResponse(result)
    return None


def stream_content_type(response: StreamingResponse, marked_content_type: str | None) -> str:
    """The ``Content-Type`` of a stream: its own, else the handler's mark, else ``application/octet-stream``."""
    return check_content_type(response.content_type or marked_content_type or DEFAULT_CONTENT_TYPE)


def iterate_body(body: Any) -> Iterator[Any]:
    """An iterator over the chunks of a stream's body."""
    if body is None:
        return iter(())
    if isinstance(body, (str, *_BYTES_LIKE)):
        return iter((body,))
    if isinstance(body, Mapping):
        raise TypeError(f"a streamed response must be an iterable of str or bytes, not {type(body).__name__}")
    return iter(body)


def to_bytes(item: Any) -> bytes:
    """One streamed item as the bytes of its chunk (empty for an empty item)."""
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, (bytearray, memoryview)):
        return bytes(item)
    raise TypeError(f"streamed items must be str or bytes-like objects, not {type(item).__name__}")


def first_chunk(chunks: Iterator[Any]) -> bytes | None:
    """The first non-empty chunk, or ``None`` if the stream ends without one. Exceptions of the user's
    iterator propagate: nothing has been sent yet, so they are reported as a plain error response."""
    for item in chunks:
        data = to_bytes(item)
        if data:
            return data
    return None
