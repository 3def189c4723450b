"""The durable execution APIs on a loopback listener of the supervisor's own, where a durable function's runtime
reaches them.

The runtime's Durable Execution SDK checkpoints every step (``CheckpointDurableExecution``) and reads its state
(``GetDurableExecutionState``) through its Lambda client, which finds the service in ``AWS_ENDPOINT_URL_LAMBDA``.
That names this listener: the supervisor answers the SDK itself, as it answers the Runtime API, instead of each call
going through the front end (a gunicorn worker, then the pipe, re-encoded on the way in and out). boto3, the AWS CLI
and every other client reach the same APIs on the Invoke API listener (``invoke_api.durable_api``). The listener is
bound when the supervisor starts, before any runtime: its address is in the runtime's environment.

HTTP/1.1 with keep-alive (``runtime_api.http_connection``), one greenlet per connection, on 127.0.0.1 only. Every
request is answered by ``pyrie_durable.DurableApi``; a path it has no operation for is its 404
``UnknownOperationException`` (the Invoke API is not served here).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any, Final

import gevent
import gevent.pool
import gevent.server

from pyrie_core.address import Address
from pyrie_core.lambda_errors import ServiceError, service_error_body
from pyrie_core.limits import Limits
from pyrie_durable import RestRequest, RestResponse
from runtime_api.http_connection import ConnectionClosed, HttpConnection, Request
from supervisor.config import Config, frozen_env

__all__ = ["ENDPOINT_ENV", "DurableApiListener", "told_to_runtime"]

log = logging.getLogger(__name__)

ENDPOINT_ENV: Final = "AWS_ENDPOINT_URL_LAMBDA"
LOOPBACK: Final = "127.0.0.1"
# A checkpoint carries the operations' payloads: the Invoke API's request limit bounds it, as on that listener.
BODY_LIMIT: Final = Limits().request_bytes

Handle = Callable[[RestRequest], RestResponse]


class DurableApiListener:
    def __init__(self, host: str = LOOPBACK) -> None:
        """Bind now (a free port of ``host``); serve once ``start`` is given the API."""
        self._connections = gevent.pool.Pool()
        self._server = gevent.server.StreamServer((host, 0), self._serve, spawn=self._connections)
        self._server.init_socket()
        self.address = Address(host, self._server.server_port)
        self._handle: Handle | None = None

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self, handle: Handle) -> None:
        self._handle = handle
        self._server.start()

    def stop(self) -> None:
        """Close the listener and every connection (a request being answered is answered first: the API never
        yields)."""
        self._server.close()
        self._connections.kill(block=False)

    def _serve(self, sock: Any, peer: tuple[str, int]) -> None:
        conn = HttpConnection(sock, peer)
        try:
            while (request := conn.next_request()) is not None:
                self._answer(conn, request)
        except ConnectionClosed as closed:
            log.debug("durable API connection from %s closed: %s", peer, closed)
        finally:
            conn.close()

    def _answer(self, conn: HttpConnection, request: Request) -> None:
        body, size = conn.read_body(BODY_LIMIT)
        if size > BODY_LIMIT:
            message = f"Request must be smaller than {BODY_LIMIT} bytes"
            headers = [("Content-Type", "application/json"), ("X-Amzn-ErrorType", ServiceError.REQUEST_TOO_LARGE)]
            conn.respond(413, headers, service_error_body(ServiceError.REQUEST_TOO_LARGE, message))
            return
        assert self._handle is not None, "served only once started"
        response = self._handle(RestRequest(request.method, request.path, request.query, body))
        # HttpConnection writes the Content-Length itself.
        conn.respond(response.status, [h for h in response.headers if h[0] != "Content-Length"], response.body)


def told_to_runtime(config: Config, listener: DurableApiListener) -> Config:
    """``config`` with the function's runtime told where ``listener`` is (``AWS_ENDPOINT_URL_LAMBDA``), unless
    pyrie's environment sets that for the function."""
    function = config.function
    if function.base_env.get(ENDPOINT_ENV):
        return config
    env = frozen_env({**function.base_env, ENDPOINT_ENV: listener.url})
    return dataclasses.replace(config, function=dataclasses.replace(function, base_env=env))
