"""The front end's end of the pipe: connections to the supervisor, reused one invoke after another.

Runs inside gunicorn's gevent workers, where the socket module is cooperative. The supervisor is found from the
environment: ``PYRIE_SUPERVISOR_SOCKET`` (a Unix socket; pyrie sets it for the gunicorn it starts), else
``PYRIE_SUPERVISOR_ADDRESS`` with ``PYRIE_SUPERVISOR_TOKEN`` (TCP, for a front end deployed on its own). A TCP
connection opens with a ``Hello`` carrying the token, sent together with the first request (no round trip); a
supervisor that refuses the token closes the connection, which the caller sees as ``SupervisorUnavailable``.

Reaching the supervisor never hangs: connecting has a short timeout, and so does waiting for a status reply. An
invoke's own reads have none, since a function may run for its whole timeout before it answers.

The kernel tells when the supervisor shuts a connection (``_Hangups``): every open connection is registered, once, in
one epoll of the worker's, for the peer's hang-up alone, and gevent's loop wakes on that epoll. Such a connection is
marked ``hung_up`` (an idle one is not reused) and its ``on_hangup`` runs: a relay then ends its response (see
``invoke_api.relay``). Nothing is polled on a timer; a reuse asks the epoll once, for news the loop has not handed
on yet.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar, overload

import gevent

from pyrie_core.address import Address, InvalidAddress
from pyrie_core.frontend_contract import SUPERVISOR_ADDRESS_ENV, SUPERVISOR_SOCKET_ENV, SUPERVISOR_TOKEN_ENV
from pyrie_core.pipe.frames import FrameDecoder, FrameError
from pyrie_core.pipe.messages import Hello, Message, ProtocolError, Status, StatusRequest, frames
from pyrie_core.socket_io import ConnectionBroken, dropping, read_message, send_all

try:  # gevent's monkey-patching may take select.epoll away; an epoll that is never waited on is safe in a worker
    from gevent.monkey import get_original

    _epoll = get_original("select", "epoll")
except ImportError:  # pragma: no cover - the front end always runs under gevent
    _epoll = select.epoll

__all__ = ["SupervisorClient", "SupervisorConnection", "SupervisorEndpoint", "SupervisorUnavailable"]

log = logging.getLogger("pyrie.invoke_api")

RECV_SIZE: Final = 128 * 1024
MAX_IDLE: Final = 64  # connections kept open for reuse, per worker
CONNECT_TIMEOUT_S: Final = 2.0
STATUS_TIMEOUT_S: Final = 2.0

_M = TypeVar("_M", bound=Message)
_N = TypeVar("_N", bound=Message)


class SupervisorUnavailable(Exception):
    """The supervisor cannot be reached, refused the connection, or broke the protocol."""


class SupervisorSilent(SupervisorUnavailable):
    """The supervisor did not answer in time: it is there but hung (another connection would fare no better)."""


@dataclass(frozen=True, slots=True)
class SupervisorEndpoint:
    """Where the supervisor listens: a Unix socket path, or a TCP address with the token it requires."""

    path: str | None = None
    address: Address | None = None
    token: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SupervisorEndpoint | None:
        """The endpoint the environment names, or ``None`` when it names none; ``SupervisorUnavailable`` when it
        is misconfigured (the front end answers 503 saying why)."""
        if env.get(SUPERVISOR_SOCKET_ENV):
            return cls(path=env[SUPERVISOR_SOCKET_ENV])
        text = env.get(SUPERVISOR_ADDRESS_ENV)
        if not text:
            return None
        try:
            address = Address.parse(text, SUPERVISOR_ADDRESS_ENV)
        except InvalidAddress as exc:
            raise SupervisorUnavailable(str(exc)) from None
        token = env.get(SUPERVISOR_TOKEN_ENV)
        if not token:
            raise SupervisorUnavailable(f"{SUPERVISOR_ADDRESS_ENV} is set but {SUPERVISOR_TOKEN_ENV} is not")
        return cls(address=address, token=token)

    def __str__(self) -> str:
        return self.path if self.path is not None else str(self.address)


class SupervisorConnection:
    def __init__(self, endpoint: SupervisorEndpoint, connect_timeout: float = CONNECT_TIMEOUT_S) -> None:
        self._endpoint = endpoint
        self._sock = _connect(endpoint, connect_timeout)
        self._decoder = FrameDecoder()
        self.reused = False
        self._answered = False  # a frame has come back on this connection
        self.hung_up = False  # the supervisor shut it (the kernel said so: ``_Hangups``)
        self.on_hangup: Callable[[], None] | None = None  # what its user does then (runs in the loop: no waiting)
        _hangups.watch(self)
        if endpoint.token is not None:
            try:
                self.send(Hello(endpoint.token))
            except SupervisorUnavailable:
                self.close()
                raise

    def send(self, message: Message) -> None:
        try:
            send_all(self._sock, frames(message))
        except OSError as exc:
            raise SupervisorUnavailable(f"the supervisor connection broke: {exc.strerror}") from exc

    def read(self, timeout: float | None = None) -> Message:
        """The next message; ``SupervisorUnavailable`` if the supervisor went away, broke the protocol, or did not
        answer within ``timeout`` seconds (``None``: wait as long as it takes)."""
        if timeout is not None:
            self._sock.settimeout(timeout)
        try:
            message = read_message(self._sock, self._decoder, RECV_SIZE)
        except TimeoutError:
            raise SupervisorSilent(f"the supervisor did not answer within {timeout:.3g} s") from None
        except (FrameError, ProtocolError) as exc:
            raise SupervisorUnavailable(f"bad frame from the supervisor: {exc}") from exc
        except ConnectionBroken as exc:
            raise SupervisorUnavailable(f"the supervisor connection broke: {exc}") from exc
        finally:
            if timeout is not None:
                with dropping(log, "the timeout of a supervisor connection"):
                    self._sock.settimeout(None)
        if message is None:
            raise SupervisorUnavailable(self._closed_reason())
        self._answered = True
        return message

    @overload
    def expect(self, kind: type[_M], what: str, timeout: float | None = None) -> _M: ...
    @overload
    def expect(self, kind: tuple[type[_M], type[_N]], what: str, timeout: float | None = None) -> _M | _N: ...
    def expect(self, kind: type[Any] | tuple[type[Any], ...], what: str, timeout: float | None = None) -> Message:
        """The next message, which must be a ``kind`` (a class, or a tuple of classes); the connection is closed
        when it is not, or when ``read`` fails. ``what`` names the request in the error (``"an invoke"``)."""
        try:
            message = self.read(timeout)
        except SupervisorUnavailable:
            self.close()
            raise
        if not isinstance(message, kind):
            self.close()
            raise SupervisorUnavailable(f"the supervisor answered {what} with {type(message).__name__}")
        return message

    def close(self) -> None:
        _hangups.forget(self)
        with dropping(log, "closing a supervisor connection"):
            self._sock.close()

    @property
    def fileno(self) -> int:
        return int(self._sock.fileno())

    def shut_by_supervisor(self) -> None:
        """The supervisor shut the connection (frames it sent before may still wait unread in it)."""
        self.hung_up = True
        if self.on_hangup is not None:
            self.on_hangup()

    @property
    def open(self) -> bool:
        """Not closed on this side."""
        return self._sock.fileno() >= 0

    def _closed_reason(self) -> str:
        if self._endpoint.token is not None and not self._answered:
            return f"the supervisor at {self._endpoint} closed the connection (is {SUPERVISOR_TOKEN_ENV} right?)"
        return "the supervisor closed the connection"


def _connect(endpoint: SupervisorEndpoint, timeout: float = CONNECT_TIMEOUT_S) -> socket.socket:
    try:
        if endpoint.address is not None:
            sock = socket.create_connection((endpoint.address.host, endpoint.address.port), timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each streamed chunk goes out at once
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)  # pooled connections notice a vanished peer
        else:
            assert endpoint.path is not None
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(endpoint.path)
            except BaseException:
                sock.close()
                raise
        sock.settimeout(None)
    except TimeoutError:
        message = f"cannot reach the supervisor at {endpoint}: no answer within {timeout:.3g} s"
        raise SupervisorUnavailable(message) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SupervisorUnavailable(f"cannot reach the supervisor at {endpoint}: {reason}") from exc
    return sock


class SupervisorClient:
    def __init__(self, endpoint: SupervisorEndpoint | None = None) -> None:
        self._endpoint = endpoint
        self._idle: list[SupervisorConnection] = []

    def connect(self, connect_timeout: float = CONNECT_TIMEOUT_S) -> SupervisorConnection:
        """A connection ready for one invoke: an idle one the supervisor has not shut, if there is one, else a new
        one."""
        if self._idle:
            _hangups.report()  # a hang-up the loop has not handed on yet (the supervisor shut it just now)
        while self._idle:
            conn = self._idle.pop()
            if conn.hung_up:
                conn.close()
                continue
            conn.reused = True
            return conn
        endpoint = self._endpoint or SupervisorEndpoint.from_env(os.environ)
        if endpoint is None:
            raise SupervisorUnavailable(
                f"neither {SUPERVISOR_SOCKET_ENV} nor {SUPERVISOR_ADDRESS_ENV} is set: "
                "the front end does not know where the supervisor is"
            )
        return SupervisorConnection(endpoint, connect_timeout)

    def send(self, request: Message) -> SupervisorConnection:
        """A connection that has carried ``request``. A reused connection found dead while sending is replaced
        once, by a new connection (the other idle ones, likely dead too, are dropped): nothing can have reached the
        supervisor on it, so the request is not sent twice."""
        conn = self.connect()
        try:
            conn.send(request)
        except SupervisorUnavailable:
            conn.close()
            if not conn.reused:
                raise
            self._drop_idle()
            conn = self.connect()
            try:
                conn.send(request)
            except SupervisorUnavailable:
                conn.close()
                raise
        return conn

    def release(self, conn: SupervisorConnection) -> None:
        """Give back a connection whose exchange ended cleanly (its End or Status frame was read)."""
        conn.on_hangup = None
        if len(self._idle) < MAX_IDLE and not conn.hung_up:
            self._idle.append(conn)
        else:
            conn.close()

    def status(self) -> Status:
        """The supervisor's status, fast: ``SupervisorUnavailable`` within ``STATUS_TIMEOUT_S`` in all when it cannot
        answer (connecting, asking and the answer share that one deadline).

        A status request is safe to repeat, so a reused connection that turns out closed or broken is replaced once
        (and the other idle ones, likely dead too, are dropped). One that stays silent is not: the supervisor is hung,
        and a new connection would only wait again."""
        deadline = time.monotonic() + STATUS_TIMEOUT_S
        conn = self.connect(STATUS_TIMEOUT_S)
        try:
            return self._status_on(conn, deadline)
        except SupervisorSilent:
            raise
        except SupervisorUnavailable:
            if not conn.reused:
                raise
        self._drop_idle()
        return self._status_on(self.connect(_left(deadline)), deadline)

    def _status_on(self, conn: SupervisorConnection, deadline: float) -> Status:
        try:
            conn.send(StatusRequest())
        except SupervisorUnavailable:
            conn.close()
            raise
        reply = conn.expect(Status, "a status request", _left(deadline))
        self.release(conn)
        return reply

    def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class _Hangups:
    """One epoll per worker process, holding every open supervisor connection for the peer's hang-up alone
    (``EPOLLRDHUP``; ``EPOLLHUP`` and ``EPOLLERR`` always come too), its own descriptor watched by gevent's loop: the
    kernel wakes the loop when the supervisor shuts one, whatever the worker is doing (waiting to write to a client,
    say), and nothing is read from the connection to find out. Made on first use, in the worker that uses it."""

    def __init__(self) -> None:
        self._epoll: Any = None
        self._watcher: Any = None
        self._conns: dict[int, SupervisorConnection] = {}

    def watch(self, conn: SupervisorConnection) -> None:
        if self._epoll is None:
            self._epoll = _epoll()
            self._watcher = gevent.get_hub().loop.io(self._epoll.fileno(), 1)
            self._watcher.ref = False  # it never keeps the worker's loop alive on its own
            self._watcher.start(self.report)
        self._conns[conn.fileno] = conn
        self._epoll.register(conn.fileno, _HANGUP)

    def forget(self, conn: SupervisorConnection) -> None:
        fileno = conn.fileno
        if fileno >= 0 and self._conns.get(fileno) is conn:
            del self._conns[fileno]
            with dropping(log, "a supervisor connection's hang-up watch"):
                self._epoll.unregister(fileno)

    def report(self) -> None:
        """Tell each connection the supervisor has shut (once; it is no longer watched). Never waits: the loop calls
        it when the epoll has news, and so does a reuse, for news the loop has not handed on yet."""
        if self._epoll is None:
            return
        for fileno, _ in self._epoll.poll(0):
            conn = self._conns.pop(fileno, None)
            with dropping(log, "a supervisor connection's hang-up watch"):
                self._epoll.unregister(fileno)
            if conn is not None:
                try:
                    conn.shut_by_supervisor()
                except Exception:  # a bug there must not stop the loop's other work
                    log.exception("internal error after the supervisor shut a connection")


_HANGUP: Final = select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
_hangups = _Hangups()


def _left(deadline: float) -> float:
    """The seconds left before ``deadline`` (``SupervisorSilent`` when none are)."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise SupervisorSilent(f"the supervisor did not answer within {STATUS_TIMEOUT_S:g} s")
    return left
