"""The Runtime API server of one execution environment: a gevent stream server on a loopback address."""

from __future__ import annotations

import logging
from typing import Any

import gevent
import gevent.pool
import gevent.server

from pyrie_core.address import Address
from runtime_api import router
from runtime_api.host import RuntimeHost
from runtime_api.http_connection import ConnectionClosed, HttpConnection

__all__ = ["RuntimeApiServer"]

log = logging.getLogger(__name__)


class RuntimeApiServer:
    def __init__(self, address: Address, host: RuntimeHost) -> None:
        self.address = address
        self._host = host
        self._connections = gevent.pool.Pool()
        self._server = gevent.server.StreamServer((address.host, address.port), self._serve, spawn=self._connections)

    def start(self) -> Address:
        """Bind and start serving; returns the address bound (port 0 becomes a real port). Raises ``OSError``
        when the address cannot be bound."""
        self._server.start()
        self.address = Address(self.address.host, self._server.server_port)
        return self.address

    @property
    def connections(self) -> int:
        """Connections open now."""
        return len(self._connections)

    def stop(self) -> None:
        """Close the listener and every connection. Safe to call from one of the connections' own greenlets."""
        self._server.close()
        current = gevent.getcurrent()
        for greenlet in list(self._connections):
            if greenlet is not current:
                greenlet.kill(block=False)

    def _serve(self, sock: Any, peer: tuple[str, int]) -> None:
        conn = HttpConnection(sock, peer)
        try:
            while (request := conn.next_request()) is not None:
                router.dispatch(self._host, request, conn)
        except ConnectionClosed as closed:
            log.debug("runtime API connection from %s closed: %s", peer, closed)
        finally:
            conn.close()
