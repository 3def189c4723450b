"""Socket helpers shared by the supervisor's connections (its end of the pipe, the Runtime API's) and the front
end's."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

from pyrie_core.pipe.frames import NEED_DATA, FrameDecoder
from pyrie_core.pipe.messages import Message, decode

__all__ = ["ConnectionBroken", "dropping", "read_message", "send_all", "send_all_parts"]


class ConnectionBroken(Exception):
    """The connection broke under a read (reset by the peer, or another error of the socket): not a clean end."""


@contextlib.contextmanager
def dropping(log: logging.Logger, what: str) -> Iterator[None]:
    """An ``OSError`` in the block is given up on purpose (a socket already gone, a peer that left): it is logged at
    debug, saying ``what`` was dropped, and the block ends there. Any other error goes on."""
    try:
        yield
    except OSError as exc:
        log.debug("%s: dropped after %s", what, exc.strerror or exc)


def read_message(
    sock: Any,
    decoder: FrameDecoder,
    recv_size: int,
    first_within: float | None = None,
    rest_within: float | None = None,
) -> Message | None:
    """The next message from ``sock``, or ``None`` when the peer closed the connection cleanly. Raises
    ``ConnectionBroken`` when the connection broke instead (a reset), ``FrameError``/``ProtocolError`` for a bad frame,
    and ``TimeoutError`` when a deadline passes: the socket's own timeout, or, when given, ``first_within`` seconds
    for the first byte and ``rest_within`` for the rest of a frame once it has begun (each read then sets the
    socket's timeout; with neither, it is left as it is)."""
    timed = first_within is not None or rest_within is not None
    deadline = None if first_within is None else time.monotonic() + first_within
    while True:
        frame = decoder.next_frame()
        if frame is None:
            return None
        if frame is not NEED_DATA:
            return decode(frame)
        if timed:
            if deadline is None and rest_within is not None and decoder.buffered:
                deadline = time.monotonic() + rest_within
            sock.settimeout(None if deadline is None else max(deadline - time.monotonic(), 0.0))
        into = decoder.receive_buffer()
        try:
            if into is None:
                decoder.feed(sock.recv(recv_size))
            else:
                with into:
                    decoder.received(sock.recv_into(into))
        except TimeoutError:
            raise  # the caller set a timeout: it is not the peer closing
        except OSError as exc:
            raise ConnectionBroken(exc.strerror or str(exc)) from exc


def send_all(sock: Any, data: bytes | bytearray | memoryview) -> None:
    """Send all of ``data``. One ``send`` usually takes a whole message; gevent's own ``sendall`` would first ask
    the kernel for the socket's buffer size on every call."""
    sent = sock.send(data)
    if sent < len(data):
        sock.sendall(memoryview(data)[sent:])


def send_all_parts(sock: Any, parts: Sequence[bytes | bytearray | memoryview]) -> None:
    """Send all of ``parts``, one after the other, without joining them: one ``sendmsg`` usually takes them all."""
    sent = sock.sendmsg(parts)
    for part in parts:
        if sent >= len(part):
            sent -= len(part)
            continue
        sock.sendall(memoryview(part)[sent:])
        sent = 0
