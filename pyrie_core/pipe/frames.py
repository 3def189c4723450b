"""The frame codec of the supervisor protocol (the "pipe"), without any I/O.

Theory of operation: a frame is a 4-byte big-endian length followed by that many bytes holding one msgpack map.
The encoder turns a map into bytes; the decoder is fed whatever bytes a socket produced (``feed``) and hands back
whole frames one at a time (``next_frame``), or ``NEED_DATA`` until one is complete. It never touches a socket, so
the supervisor and the gunicorn workers share it, and tests drive it byte by byte.

Errors are final: after a ``FrameError`` the decoder refuses further input, because a peer that sent one bad frame
cannot be trusted to be aligned on the next length prefix.
"""

from __future__ import annotations

import struct
from typing import Any, Final

import msgpack

__all__ = ["MAX_FRAME_SIZE", "NEED_DATA", "FrameDecoder", "FrameError", "encode_frame"]

# The largest frame is an INVOKE carrying a synchronous payload (6,291,456 bytes, Lambda's limit) plus its headers;
# every other frame is far smaller (body chunks are cut to at most 1 MiB). 8 MiB leaves room without letting a
# confused peer make us buffer an arbitrary amount.
MAX_FRAME_SIZE: Final = 8 * 1024 * 1024

_LENGTH: Final = struct.Struct(">I")
_PREFIX: Final = _LENGTH.size
# A bytes value at least this large (a payload, a body chunk) is not copied into the packed map and then again into
# the frame: the frame is joined from the packed pieces around it, and it, once.
_SPLICE_MIN: Final = 64 * 1024
_BIN32: Final = struct.Struct(">BI")


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()


class FrameError(Exception):
    """The peer broke the framing: an oversize, truncated or undecodable frame."""


def encode_frame(message: dict[str, Any]) -> bytes:
    """Return the bytes of one frame holding ``message``."""
    for value in message.values():
        if type(value) is bytes and len(value) >= _SPLICE_MIN:
            return _spliced_frame(message)
    body = msgpack.packb(message, use_bin_type=True)
    if len(body) > MAX_FRAME_SIZE:
        raise FrameError(f"frame of {len(body)} bytes exceeds the maximum of {MAX_FRAME_SIZE}")
    return _LENGTH.pack(len(body)) + body


def _spliced_frame(message: dict[str, Any]) -> bytes:
    """The same bytes as ``encode_frame``'s general case, with each large bytes value copied only into the frame:
    msgpack writes a map as its header, then each key and value in order, each packed as on its own."""
    parts: list[bytes] = [b"", _map_header(len(message))]
    for key, value in message.items():
        parts.append(msgpack.packb(key, use_bin_type=True))
        if type(value) is bytes and len(value) >= _SPLICE_MIN:
            parts.append(_BIN32.pack(0xC6, len(value)))  # bin 32: every value this large needs it
            parts.append(value)
        else:
            parts.append(msgpack.packb(value, use_bin_type=True))
    size = sum(map(len, parts))
    if size > MAX_FRAME_SIZE:
        raise FrameError(f"frame of {size} bytes exceeds the maximum of {MAX_FRAME_SIZE}")
    parts[0] = _LENGTH.pack(size)
    return b"".join(parts)


def _map_header(count: int) -> bytes:
    if count <= 15:
        return bytes((0x80 | count,))  # fixmap
    return struct.pack(">BH", 0xDE, count)  # map 16 (a message has far fewer than 65,536 fields)


class FrameDecoder:
    """Incremental decoder: ``feed`` bytes in, take ``next_frame`` out until it says ``NEED_DATA``."""

    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        # Whole frames are decoded straight out of the bytes given to ``feed`` (``_fresh`` from ``_offset``); only
        # the start of an incomplete frame is copied into ``_buffer`` to wait for the rest.
        self._fresh: bytes | None = None
        self._offset = 0
        self._buffer = bytearray()
        self.max_frame_size = max_frame_size  # may be changed between frames (raised once a peer is trusted)
        self._eof = False
        self._failed: FrameError | None = None

    def feed(self, data: bytes) -> None:
        """Add bytes from the peer; an empty ``data`` means the peer closed its side."""
        if self._failed is not None:
            raise self._failed
        if self._eof and data:
            raise FrameError("data after end of stream")
        if not data:
            self._eof = True
        elif self._fresh is None and not self._buffer:
            self._fresh, self._offset = bytes(data), 0
        else:
            self._keep_fresh()
            self._buffer += data

    def next_frame(self) -> dict[str, Any] | _NeedData | None:
        """The next whole frame, ``NEED_DATA`` if more bytes are needed, or ``None`` at a clean end of stream.

        Raises ``FrameError`` for a frame over the maximum size, a stream that ends inside a frame, or a body that
        is not one msgpack map.
        """
        if self._failed is not None:
            raise self._failed
        if self._fresh is not None:
            frame = self._frame_from_fresh()
            if frame is not None:
                return frame
        buffer = self._buffer
        if len(buffer) < _PREFIX:
            return self._at_short_input()
        (length,) = _LENGTH.unpack_from(buffer)
        if length > self.max_frame_size:
            return self._fail(f"frame of {length} bytes exceeds the maximum of {self.max_frame_size}")
        end = _PREFIX + length
        if len(buffer) < end:
            return self._at_short_input()
        view = memoryview(buffer)
        try:
            message = self._unpack(view[_PREFIX:end])
        finally:
            view.release()
        del buffer[:end]
        return message

    @property
    def buffered(self) -> int:
        """How many bytes are held waiting for the rest of a frame."""
        fresh = len(self._fresh) - self._offset if self._fresh is not None else 0
        return len(self._buffer) + fresh

    def _frame_from_fresh(self) -> dict[str, Any] | None:
        """The next frame if ``_fresh`` holds all of it; else its start goes to the buffer and None."""
        data, start = self._fresh, self._offset
        assert data is not None
        if len(data) - start >= _PREFIX:
            (length,) = _LENGTH.unpack_from(data, start)
            if length > self.max_frame_size:
                return self._fail(f"frame of {length} bytes exceeds the maximum of {self.max_frame_size}")
            end = start + _PREFIX + length
            if end <= len(data):
                message = self._unpack(memoryview(data)[start + _PREFIX : end])
                self._offset = end
                if end == len(data):
                    self._fresh = None
                return message
        self._keep_fresh()
        return None

    def _keep_fresh(self) -> None:
        if self._fresh is not None:
            self._buffer += memoryview(self._fresh)[self._offset :]
            self._fresh = None

    def _unpack(self, body: memoryview) -> dict[str, Any]:
        try:
            message = msgpack.unpackb(body, raw=False, strict_map_key=True)
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
            return self._fail(f"undecodable frame body: {str(exc) or type(exc).__name__}")  # FormatError says nothing
        if not isinstance(message, dict):
            return self._fail(f"frame body is a {type(message).__name__}, not a map")
        return message

    def _at_short_input(self) -> _NeedData | None:
        if not self._eof:
            return NEED_DATA
        if self._buffer or self._fresh is not None:
            return self._fail(f"stream ended inside a frame ({len(self._buffer)} bytes pending)")
        return None

    def _fail(self, reason: str) -> Any:
        self._failed = FrameError(reason)
        raise self._failed
