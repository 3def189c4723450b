"""The supervisor's end of the pipe: the front end's connections, one invoke at a time on each.

Each connection is served by one greenlet that reads frames: an ``Invoke`` is handed to the pool with the connection
itself as the response sink; a ``Cancel`` or the connection's end while an invoke runs means the client went away,
and the invoke goes on with its output dropped (as Lambda does); a ``StatusRequest`` between invokes is answered at
once with the pool's ``Status``, and an ``ApiRequest`` (the durable execution APIs) with its ``ApiResponse``. The
response's frames are queued on the connection by whichever greenlet produces them (the Runtime API's, a timer's)
and never wait for the peer (``supervisor.frontend_link.pipe_connection``).

Nothing a peer does holds the supervisor: a frame that has begun must arrive whole within ``FRAME_REST_S``; a server
given a token (the TCP listener of a split deployment) requires a ``Hello`` carrying it as the first frame of every
connection, within ``HELLO_S``, and until then accepts frames no larger than a Hello needs; and each server takes at
most ``max_connections`` at once, of which at most ``MAX_UNADMITTED`` may still owe their Hello (so strangers who
can reach the port cannot crowd out the front ends that know the token). The cap also leaves the process the
descriptors its environments need: each server takes at most half of what ``ulimit -n`` allows beyond
``RESERVED_DESCRIPTORS``. Every refusal closes that connection and is logged in one line; everyone else is served
as before. The Unix socket needs no token: only pyrie's user can open its directory.
"""

from __future__ import annotations

import logging
import resource
import socket
from typing import Any, Final, Protocol

import gevent
import gevent.event
import gevent.pool
import gevent.server

from pyrie_core.pipe.frames import MAX_FRAME_SIZE, FrameError
from pyrie_core.pipe.messages import (
    ApiRequest,
    ApiResponse,
    Cancel,
    Hello,
    Invoke,
    ProtocolError,
    Status,
    StatusRequest,
)
from pyrie_core.socket_io import ConnectionBroken
from supervisor.frontend_link.pipe_connection import FRAME_REST_S, SEND_BUFFER, PipeConnection
from supervisor.invocation import Invocation, ResponseSink

__all__ = ["HELLO_S", "MAX_CONNECTIONS", "MAX_UNADMITTED", "InvokeTaker", "PipeServer", "connection_cap"]

log = logging.getLogger(__name__)

# Until a connection has shown the token, its frames may be no larger than a Hello needs: a stranger cannot make the
# supervisor buffer a full-size frame.
UNTRUSTED_FRAME_SIZE: Final = 4096
HELLO_S: Final = 5.0
# A front end holds one connection per invoke in flight plus a few idle ones per worker (gunicorn's
# worker_connections, 1,000 per worker by default).
MAX_CONNECTIONS: Final = 10_000
# Connections that have not shown the token yet (each for at most HELLO_S).
MAX_UNADMITTED: Final = 64
# Descriptors left to everything else the supervisor opens: environments (a Runtime API listener and connections,
# the runtime's output pipe, extensions), gunicorn's, and the process's own.
RESERVED_DESCRIPTORS: Final = 256


class InvokeTaker(Protocol):
    """What the pipe hands its requests to (the desk: durable invokes to their service, the rest to the pool)."""

    def submit(self, request: Invoke, sink: ResponseSink) -> Invocation: ...

    def status(self) -> Status: ...

    def answer(self, request: ApiRequest) -> ApiResponse:
        """An API request answered whole, at once (it never waits on a peer)."""
        ...


class PipeServer:
    def __init__(
        self,
        listener: socket.socket,
        pool: InvokeTaker,
        token: str | None = None,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self._pool = pool
        self._token = token.encode() if token is not None else None
        self._max_connections = connection_cap(max_connections)
        self._connections: set[PipeConnection] = set()
        self._unadmitted = 0  # connections still owing their Hello
        self._greenlets = gevent.pool.Pool()
        self._server = gevent.server.StreamServer(listener, self._serve, spawn=self._greenlets)

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        """Take no more connections and drop the open ones (whatever they still had queued is given up)."""
        self._server.close()
        for conn in list(self._connections):
            conn.close()
        self._greenlets.kill(block=False)

    def _serve(self, sock: Any, peer: Any) -> None:
        if len(self._connections) >= self._max_connections:
            log.warning(
                "refused a front-end connection from %s: %d are open already, the most it takes (see ulimit -n)",
                _describe(peer),
                len(self._connections),
            )
            sock.close()
            return
        if self._token is not None and self._unadmitted >= MAX_UNADMITTED:
            log.warning(
                "refused a front-end connection from %s: %d connections are still to show the token",
                _describe(peer),
                self._unadmitted,
            )
            sock.close()
            return
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        conn = PipeConnection(sock, MAX_FRAME_SIZE if self._token is None else UNTRUSTED_FRAME_SIZE)
        self._connections.add(conn)
        invocation: Invocation | None = None
        try:
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each streamed chunk goes out at once
            if self._token is not None:
                self._unadmitted += 1
                try:
                    admitted = self._admit(conn, peer)
                finally:
                    self._unadmitted -= 1
                if not admitted:
                    return
            never = gevent.event.Event()
            while True:
                if invocation is None or invocation.finished.is_set():
                    # Between invokes, a peer that sends requests without reading the answers is read no further
                    # until it has taken them (what waits for it stays bounded), or is cut for taking nothing...
                    conn.wait_for_room(never)
                gevent.sleep(0)  # ... and each request lets the loop's other work run first.
                try:
                    message = conn.read_message()
                except ConnectionBroken as broken:
                    log.info("a front-end connection broke: %s", broken)
                    message = None  # as good as closed: the front end is gone
                running = invocation is not None and not invocation.finished.is_set()
                if message is None or isinstance(message, Cancel):
                    if running:
                        log.info("%s: the client went away; the invoke runs on, its output dropped", invocation)
                        conn.close()
                    if message is None:
                        return
                elif running:
                    raise ProtocolError(f"{type(message).__name__} while an Invoke is running on the connection")
                elif isinstance(message, Invoke):
                    conn.start_exchange()
                    invocation = self._pool.submit(message, conn)
                elif isinstance(message, StatusRequest):
                    conn.start_exchange()
                    conn.send(self._pool.status())
                elif isinstance(message, ApiRequest):
                    conn.start_exchange()
                    conn.send(self._pool.answer(message))
                else:
                    raise ProtocolError(f"unexpected {type(message).__name__} from the front end")
        except (FrameError, ProtocolError) as exc:
            log.error("supervisor protocol error from the front end, closing its connection: %s", _reason(exc))
        except TimeoutError:
            log.error(
                "supervisor protocol error from the front end, closing its connection: a frame began but did not "
                "arrive whole within %g s",
                FRAME_REST_S,
            )
        finally:
            self._connections.discard(conn)
            conn.close()

    def _admit(self, conn: PipeConnection, peer: Any) -> bool:
        """Whether the connection's first frame is a ``Hello`` with the right token, within ``HELLO_S``."""
        assert self._token is not None
        try:
            message = conn.read_message(first_within=HELLO_S)
        except TimeoutError:
            log.warning("refused a front-end connection from %s: no Hello within %g s", _describe(peer), HELLO_S)
            return False
        except (FrameError, ProtocolError) as exc:
            log.warning("refused a front-end connection from %s: %s", _describe(peer), _reason(exc))
            return False
        if message is None:
            return False
        if not isinstance(message, Hello):
            name = type(message).__name__
            log.warning("refused a front-end connection from %s: it sent %s, not Hello", _describe(peer), name)
            return False
        import hmac  # noqa: PLC0415 - only for a split deployment's TCP listener: hashlib's OpenSSL is 4 MiB of RSS

        if not hmac.compare_digest(message.token.encode(), self._token):
            log.warning("refused a front-end connection from %s: wrong token", _describe(peer))
            return False
        conn.decoder.max_frame_size = MAX_FRAME_SIZE
        return True


def connection_cap(requested: int) -> int:
    """``requested``, or fewer when the process may not open that many descriptors: at most half of what its
    ``RLIMIT_NOFILE`` leaves beyond ``RESERVED_DESCRIPTORS`` (the pipe has two servers at most)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return requested
    return max(1, min(requested, (soft - RESERVED_DESCRIPTORS) // 2))


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _describe(peer: Any) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = peer[0], peer[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return "the Unix socket"
