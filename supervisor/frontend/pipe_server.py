"""The supervisor's end of the pipe: the front end's connections, one invoke at a time on each.

Each connection is served by one greenlet that reads frames: an ``Invoke`` is handed to the dispatcher with the
connection itself as the response sink; a ``Cancel`` or the connection's end while an invoke runs means the client
went away, and the invoke goes on with its output dropped (as Lambda does); a ``StatusRequest`` between invokes is
answered at once with the dispatcher's ``Status``. The response's frames are written by whichever greenlet produces
them (the Runtime API's, a timer's), one frame group at a time under a lock.

A server given a token (the TCP listener of a split deployment) requires a ``Hello`` carrying it as the first frame
of every connection; any other first frame, or a wrong token, closes the connection and is logged, and everyone else
is served as before. The Unix socket needs no token: only pyrie's user can open its directory.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import socket
from typing import Any, Final

import gevent
import gevent.lock
import gevent.pool
import gevent.server

from pyrie_core.pipe.frames import MAX_FRAME_SIZE, FrameDecoder, FrameError, encode_frame
from pyrie_core.pipe.messages import Cancel, Hello, Invoke, Message, ProtocolError, StatusRequest, encode
from pyrie_core.socket_io import read_message, send_all
from supervisor.invocation import Invocation
from supervisor.pool.dispatcher import Dispatcher

__all__ = ["PipeConnection", "PipeServer"]

log = logging.getLogger(__name__)

RECV_SIZE: Final = 256 * 1024
PIPE_BUFFER: Final = 1024 * 1024
# Until a connection has shown the token, its frames may be no larger than a Hello needs: a stranger cannot make the
# supervisor buffer a full-size frame.
UNTRUSTED_FRAME_SIZE: Final = 4096


class PipeConnection:
    """One front-end connection; it is also the ``ResponseSink`` of the invoke it carries."""

    def __init__(self, sock: Any, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        self._sock = sock
        self.decoder = FrameDecoder(max_frame_size)
        self._write_lock = gevent.lock.Semaphore()
        self.closed = False  # the peer is gone: what is sent is dropped

    def read_message(self) -> Message | None:
        """The next message, or ``None`` when the peer closed the connection."""
        return read_message(self._sock, self.decoder, RECV_SIZE)

    def send(self, *messages: Message) -> None:
        if self.closed:
            return
        data = b"".join(encode_frame(encode(message)) for message in messages)
        with self._write_lock:
            if self.closed:
                return
            try:
                send_all(self._sock, data)
            except OSError:
                self.closed = True

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self._sock.close()


class PipeServer:
    def __init__(self, listener: socket.socket, dispatcher: Dispatcher, token: str | None = None) -> None:
        self._dispatcher = dispatcher
        self._token = token.encode() if token is not None else None
        self._connections = gevent.pool.Pool()
        self._server = gevent.server.StreamServer(listener, self._serve, spawn=self._connections)

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.close()

    def _serve(self, sock: Any, peer: Any) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, PIPE_BUFFER)
        conn = PipeConnection(sock, MAX_FRAME_SIZE if self._token is None else UNTRUSTED_FRAME_SIZE)
        invocation: Invocation | None = None
        try:
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each streamed chunk goes out at once
            if self._token is not None and not self._admit(conn, peer):
                return
            while True:
                message = conn.read_message()
                if message is None or isinstance(message, Cancel):
                    if invocation is not None and not invocation.finished.is_set():
                        log.info("%s: the client went away; the invoke runs on, its output dropped", invocation)
                        conn.closed = True
                    if message is None:
                        return
                elif isinstance(message, Invoke):
                    if invocation is not None and not invocation.finished.is_set():
                        raise ProtocolError("a second Invoke before the first one ended")
                    invocation = self._dispatcher.submit(message, conn)
                elif isinstance(message, StatusRequest):
                    if invocation is not None and not invocation.finished.is_set():
                        raise ProtocolError("a StatusRequest while an Invoke is running on the connection")
                    conn.send(self._dispatcher.status())
                else:
                    raise ProtocolError(f"unexpected {type(message).__name__} from the front end")
        except (FrameError, ProtocolError) as exc:
            log.error("supervisor protocol error from the front end, closing its connection: %s", exc)
            if invocation is not None and not invocation.finished.is_set():
                conn.closed = True
        finally:
            conn.close()

    def _admit(self, conn: PipeConnection, peer: Any) -> bool:
        """Whether the connection's first frame is a ``Hello`` with the right token."""
        assert self._token is not None
        message = conn.read_message()
        if message is None:
            return False
        if not isinstance(message, Hello):
            name = type(message).__name__
            log.warning("refused a front-end connection from %s: it sent %s, not Hello", _describe(peer), name)
            return False
        if not hmac.compare_digest(message.token.encode(), self._token):
            log.warning("refused a front-end connection from %s: wrong token", _describe(peer))
            return False
        conn.decoder.max_frame_size = MAX_FRAME_SIZE
        return True


def _describe(peer: Any) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = peer[0], peer[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return "the Unix socket"
