"""Socket helpers shared by the supervisor's and the front end's connections."""

from __future__ import annotations

from typing import Any

from pyrie_core.pipe.frames import NEED_DATA, FrameDecoder
from pyrie_core.pipe.messages import Message, decode

__all__ = ["read_message", "send_all"]


def read_message(sock: Any, decoder: FrameDecoder, recv_size: int) -> Message | None:
    """The next message from ``sock``, or ``None`` when the peer closed the connection (a broken connection
    counts as closed). Raises ``FrameError``/``ProtocolError`` for a bad frame, and ``TimeoutError`` when the socket
    has a timeout and it passes."""
    while True:
        frame = decoder.next_frame()
        if frame is None:
            return None
        if frame is not NEED_DATA:
            assert isinstance(frame, dict)
            return decode(frame)
        try:
            data = sock.recv(recv_size)
        except TimeoutError:
            raise  # the caller set a timeout: it is not the peer closing
        except OSError:
            data = b""
        decoder.feed(data)


def send_all(sock: Any, data: bytes) -> None:
    """Send all of ``data``. One ``send`` usually takes a whole message; gevent's own ``sendall`` would first ask
    the kernel for the socket's buffer size on every call."""
    sent = sock.send(data)
    if sent < len(data):
        sock.sendall(memoryview(data)[sent:])
