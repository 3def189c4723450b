"""The frame codec of the supervisor protocol (the "pipe"), without any I/O.

Theory of operation: a frame is a 4-byte big-endian length followed by that many bytes, its body (one msgpack map:
``pyrie_core.pipe.messages`` writes and reads those). ``encode_frame`` puts the length before a body; the decoder is
fed whatever bytes a socket produced (``feed``) and hands back whole bodies one at a time (``next_frame``), or
``NEED_DATA`` until one is complete. It never touches a socket, so the supervisor and the gunicorn workers share it,
and tests drive it byte by byte.

Errors are final: after a ``FrameError`` the decoder refuses further input, because a peer that sent one bad frame
cannot be trusted to be aligned on the next length prefix.
"""

from __future__ import annotations

import struct
from typing import Final, NoReturn

__all__ = [
    "LARGE_FRAME",
    "MAX_FRAME_SIZE",
    "NEED_DATA",
    "PREFIX",
    "FrameDecoder",
    "FrameError",
    "encode_frame",
    "put_prefix",
]

# The largest frame is an INVOKE carrying a synchronous payload (6,291,456 bytes, Lambda's limit) plus its headers;
# every other frame is far smaller (body chunks are cut to at most 1 MiB). 8 MiB leaves room without letting a
# confused peer make us buffer an arbitrary amount.
MAX_FRAME_SIZE: Final = 8 * 1024 * 1024

_LENGTH: Final = struct.Struct(">I")
PREFIX: Final = _LENGTH.size
# A frame whose body is at least this large, once its length is known, gets a buffer of its own that the rest of it
# is read into (``receive_buffer``): it is not gathered piece by piece and copied out again.
LARGE_FRAME: Final = 64 * 1024


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()


class FrameError(Exception):
    """The peer broke the framing: an oversize, truncated or undecodable frame."""


def encode_frame(body: bytes) -> bytes:
    """The bytes of one frame holding ``body``."""
    if len(body) > MAX_FRAME_SIZE:
        raise FrameError(f"frame of {len(body)} bytes exceeds the maximum of {MAX_FRAME_SIZE}")
    return _LENGTH.pack(len(body)) + body


def put_prefix(frame: bytearray | memoryview, beyond: int = 0) -> None:
    """Write the length prefix into the first ``PREFIX`` bytes of ``frame``, whose body follows them (a frame built
    in one buffer: the body encoded after room for its length), and ``beyond`` bytes more (sent after it)."""
    size = len(frame) - PREFIX + beyond
    if size > MAX_FRAME_SIZE:
        raise FrameError(f"frame of {size} bytes exceeds the maximum of {MAX_FRAME_SIZE}")
    _LENGTH.pack_into(frame, 0, size)


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
        # A large frame being received: its body's own buffer, and how much of it has arrived.
        self._large: bytearray | None = None
        self._filled = 0

    def feed(self, data: bytes | memoryview) -> None:
        """Add bytes from the peer; an empty ``data`` means the peer closed its side."""
        if self._failed is not None:
            raise self._failed
        if self._eof and data:
            raise FrameError("data after end of stream")
        if not data:
            self._eof = True
            return
        if self._large is not None:
            take = min(len(data), len(self._large) - self._filled)
            self._large[self._filled : self._filled + take] = memoryview(data)[:take]
            self._filled += take
            if take == len(data):
                return
            data = memoryview(data)[take:]
        if self._fresh is None and not self._buffer:
            self._fresh, self._offset = bytes(data), 0
        else:
            self._keep_fresh()
            self._buffer += data

    def next_frame(self) -> memoryview | bytes | _NeedData | None:
        """The body of the next whole frame, ``NEED_DATA`` if more bytes are needed, or ``None`` at a clean end of
        stream. A body handed out as a ``memoryview`` is valid until the next call.

        Raises ``FrameError`` for a frame over the maximum size or a stream that ends inside a frame.
        """
        if self._failed is not None:
            raise self._failed
        if self._large is not None:
            if self._filled < len(self._large):
                return self._at_short_input()
            large, self._large = self._large, None
            return memoryview(large)
        if self._fresh is not None:
            frame = self._frame_from_fresh()
            if frame is not None:
                return frame
        buffer = self._buffer
        if len(buffer) < PREFIX:
            return self._at_short_input()
        (length,) = _LENGTH.unpack_from(buffer)
        if length > self.max_frame_size:
            return self._fail(f"frame of {length} bytes exceeds the maximum of {self.max_frame_size}")
        end = PREFIX + length
        if len(buffer) < end:
            if length >= LARGE_FRAME:
                self._large = bytearray(length)
                self._filled = len(buffer) - PREFIX
                self._large[: self._filled] = memoryview(buffer)[PREFIX:]
                buffer.clear()
            return self._at_short_input()
        body = bytes(buffer[PREFIX:end])
        del buffer[:end]
        return body

    def receive_buffer(self) -> memoryview | None:
        """Where the rest of a large frame goes, when one is being received: a socket reads straight into it
        (``recv_into``), then ``received`` says how much it read. ``None`` otherwise: then bytes come by ``feed``."""
        if self._large is None or self._failed is not None:
            return None
        return memoryview(self._large)[self._filled :]

    def received(self, count: int) -> None:
        """``count`` bytes were read into the ``receive_buffer``; 0 means the peer closed its side."""
        if count == 0:
            self.feed(b"")
        else:
            self._filled += count

    @property
    def buffered(self) -> int:
        """How many bytes are held waiting for the rest of a frame."""
        fresh = len(self._fresh) - self._offset if self._fresh is not None else 0
        return len(self._buffer) + fresh + (PREFIX + self._filled if self._large is not None else 0)

    def _frame_from_fresh(self) -> memoryview | None:
        """The next frame if ``_fresh`` holds all of it; else its start goes to the buffer and None."""
        data, start = self._fresh, self._offset
        assert data is not None
        if len(data) - start >= PREFIX:
            (length,) = _LENGTH.unpack_from(data, start)
            if length > self.max_frame_size:
                return self._fail(f"frame of {length} bytes exceeds the maximum of {self.max_frame_size}")
            end = start + PREFIX + length
            if end <= len(data):
                self._offset = end
                if end == len(data):
                    self._fresh = None
                return memoryview(data)[start + PREFIX : end]
        self._keep_fresh()
        return None

    def _keep_fresh(self) -> None:
        if self._fresh is not None:
            self._buffer += memoryview(self._fresh)[self._offset :]
            self._fresh = None

    def _at_short_input(self) -> _NeedData | None:
        if not self._eof:
            return NEED_DATA
        if self._buffer or self._fresh is not None or self._large is not None:
            return self._fail(f"stream ended inside a frame ({self.buffered} bytes pending)")
        return None

    def _fail(self, reason: str) -> NoReturn:
        self._failed = FrameError(reason)
        raise self._failed
