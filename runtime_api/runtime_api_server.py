"""The Runtime API server of one execution environment: a gevent stream server on a loopback address.

It also knows when its connections are quiet (``wait_quiet``): when each one open waits for pyrie rather than pyrie
for it, and none waits to be accepted. A connection is busy from the moment it is accepted until it closes; it is
parked while its handler waits for pyrie (a ``/next`` waiting for an invoke, an ``/event/next`` for an event, a
streamed response for room at its client), and the environment marks those waits (``park`` and ``unpark``,
``Parking``). So after a runtime exits, what it sent last, even on a connection it opened just before, is read
before its exit is judged, by waiting for events rather than polling.
"""

from __future__ import annotations

import logging
import select
from typing import Any, Protocol

import gevent
import gevent.event
import gevent.pool
import gevent.server

from pyrie_core.address import Address
from runtime_api import router
from runtime_api.host import RuntimeHost
from runtime_api.http_connection import ConnectionClosed, HttpConnection

__all__ = ["Parking", "RuntimeApiServer"]

log = logging.getLogger(__name__)


class Parking(Protocol):
    """Where a handler that waits for pyrie says so: ``park`` before the wait, ``unpark`` after it."""

    def park(self) -> None: ...

    def unpark(self) -> None: ...


class RuntimeApiServer:
    def __init__(self, address: Address, host: RuntimeHost) -> None:
        self.address = address
        self._host = host
        self._connections = gevent.pool.Pool()
        self._server = gevent.server.StreamServer((address.host, address.port), self._serve, spawn=self._accepted)
        self._busy = 0  # connections open and not parked
        self._quiet = gevent.event.Event()  # set while none is busy
        self._quiet.set()
        self._stirred = gevent.event.Event()  # set while one is

    def start(self) -> Address:
        """Bind and start serving; returns the address bound (port 0 becomes a real port). Raises ``OSError``
        when the address cannot be bound."""
        self._server.start()
        self.address = Address(self.address.host, self._server.server_port)
        return self.address

    def stop(self) -> None:
        """Close the listener and every connection. Safe to call from one of the connections' own greenlets."""
        self._server.close()
        current = gevent.getcurrent()
        for greenlet in list(self._connections):
            if greenlet is not current:
                greenlet.kill(block=False)

    def park(self) -> None:
        """A handler of this server waits for pyrie."""
        self._busy -= 1
        if self._busy == 0:
            self._quiet.set()
            self._stirred.clear()

    def unpark(self) -> None:
        """It waits no more: its connection is busy again."""
        self._busy += 1
        if self._busy == 1:
            self._quiet.clear()
            self._stirred.set()

    def wait_quiet(self, timeout: float) -> None:
        """Wait, for at most ``timeout``, until every connection is parked and none waits to be accepted."""
        with gevent.Timeout(timeout, False):
            while True:
                self._quiet.wait()
                if not self._waiting_to_be_accepted():
                    return
                self._stirred.wait()  # the loop accepts it: it is busy until it is read to its end, or parks

    def _waiting_to_be_accepted(self) -> bool:
        listener = self._server.socket
        return listener is not None and bool(select.select([listener], [], [], 0)[0])  # a look, not a wait

    def _accepted(self, *args: Any) -> Any:
        """gevent's server hands a connection it has just accepted to its greenlet: it is busy from now on, before
        that greenlet runs."""
        self.unpark()
        return self._connections.spawn(*args)

    def _serve(self, sock: Any, peer: tuple[str, int]) -> None:
        conn = HttpConnection(sock, peer)
        try:
            while (request := conn.next_request()) is not None:
                router.dispatch(self._host, request, conn)
        except ConnectionClosed as closed:
            log.debug("runtime API connection from %s closed: %s", peer, closed)
        finally:
            conn.close()
            self.park()
            self._host.disconnected(peer)
