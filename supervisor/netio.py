"""Socket helpers shared by the supervisor's and the front end's connections."""

from __future__ import annotations

from typing import Any

__all__ = ["send_all"]


def send_all(sock: Any, data: bytes) -> None:
    """Send all of ``data``. One ``send`` usually takes a whole message; gevent's own ``sendall`` would first ask
    the kernel for the socket's buffer size on every call."""
    sent = sock.send(data)
    if sent < len(data):
        sock.sendall(memoryview(data)[sent:])
