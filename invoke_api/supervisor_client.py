"""The front end's end of the pipe: connections to the supervisor, reused one invoke after another.

Runs inside gunicorn's gevent workers, where the socket module is cooperative.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Final

from supervisor.frames import FrameDecoder, FrameError, encode_frame
from supervisor.messages import SUPERVISOR_SOCKET_ENV, Message, ProtocolError, encode
from supervisor.netio import read_message, send_all

__all__ = ["SupervisorClient", "SupervisorConnection", "SupervisorUnavailable"]

RECV_SIZE: Final = 128 * 1024
MAX_IDLE: Final = 64  # connections kept open for reuse, per worker


class SupervisorUnavailable(Exception):
    """The supervisor cannot be reached, or broke the protocol."""


class SupervisorConnection:
    def __init__(self, path: str) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.connect(path)
        except OSError as exc:
            self._sock.close()
            raise SupervisorUnavailable(f"cannot reach the supervisor at {path}: {exc.strerror}") from exc
        self._decoder = FrameDecoder()
        self.reused = False

    def send(self, message: Message) -> None:
        try:
            send_all(self._sock, encode_frame(encode(message)))
        except OSError as exc:
            raise SupervisorUnavailable(f"the supervisor connection broke: {exc.strerror}") from exc

    def read(self) -> Message:
        """The next message; ``SupervisorUnavailable`` if the supervisor went away or broke the protocol."""
        try:
            message = read_message(self._sock, self._decoder, RECV_SIZE)
        except (FrameError, ProtocolError) as exc:
            raise SupervisorUnavailable(f"bad frame from the supervisor: {exc}") from exc
        if message is None:
            raise SupervisorUnavailable("the supervisor closed the connection")
        return message

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


class SupervisorClient:
    def __init__(self, path: str | None = None) -> None:
        self._path = path or os.environ.get(SUPERVISOR_SOCKET_ENV, "")
        self._idle: list[SupervisorConnection] = []

    def connect(self) -> SupervisorConnection:
        """A connection ready for one invoke: an idle one if there is one, else a new one."""
        if self._idle:
            conn = self._idle.pop()
            conn.reused = True
            return conn
        if not self._path:
            raise SupervisorUnavailable(f"{SUPERVISOR_SOCKET_ENV} is not set: the front end was started without pyrie")
        return SupervisorConnection(self._path)

    def release(self, conn: SupervisorConnection) -> None:
        """Give back a connection whose invoke ended cleanly (its End frame was read)."""
        if len(self._idle) < MAX_IDLE:
            self._idle.append(conn)
        else:
            conn.close()
