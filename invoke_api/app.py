"""The invoke front end, a WSGI application for gunicorn's gevent workers: ``invoke_api.app:application``.

On the Invoke API listener (DESIGN §4): ``POST /2015-03-31/functions/{name}/invocations`` (Invoke),
``POST /2021-11-15/functions/{name}/response-streaming-invocations`` (InvokeWithResponseStream) and ``GET /healthz``
(the supervisor's status, ``invoke_api.health``), the durable execution APIs under ``/2025-12-01/``
(``invoke_api.durable_api``); other paths answer the Go emulator's plain-text 404. The invoke
paths take POST only, as Lambda's do (the Go emulator takes any method): another method matches no operation of
Lambda's API, and Lambda answers it 403 ``AccessDeniedException``, "Unable to determine service/operation name to be
authorized" (the answer AWS documents for an API Gateway integration that calls a function's ``invocations`` path
with GET: repost.aws knowledge-center article api-gateway-lambda-template-invoke-error; botocore reads it as an
``AccessDeniedException`` with that message, boto/botocore#678). On the Function URL listener, when there is one,
every method and path is the function.

Every request reaches the application whole: the worker (``invoke_api.worker``) reads its head and body first.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable
from typing import Any, Final

from invoke_api import durable_api, function_url, health, invoke, stream_invoke
from invoke_api.responses import StartResponse, plain_text, service_error
from invoke_api.supervisor_client import SupervisorClient
from pyrie_core.frontend_contract import FUNCTION_URL_LISTENER_ENV
from pyrie_core.socket_io import dropping

__all__ = ["application", "listener_address", "on_url_listener"]

INVOKE_PATH: Final = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
STREAM_INVOKE_PATH: Final = re.compile(r"^/2021-11-15/functions/(?P<name>[^/]+)/response-streaming-invocations/?$")
HEALTH_PATH: Final = "/healthz"
INVOKE_METHOD: Final = "POST"
NO_OPERATION: Final = "Unable to determine service/operation name to be authorized"

log = logging.getLogger("pyrie.invoke_api")


def listener_address(text: str | None) -> tuple[str, str] | None:
    """``(host, port)`` of the Function URL listener's ``HOST:PORT`` (``PYRIE_FUNCTION_URL_LISTENER``)."""
    if not text:
        return None
    host, _, port = text.rpartition(":")
    return host, port


# One client per worker process: it keeps that worker's connections to the supervisor for reuse.
_client = SupervisorClient()
_url_listener = listener_address(os.environ.get(FUNCTION_URL_LISTENER_ENV))
_WILDCARDS: Final = ("0.0.0.0", "::", "")
_INVOKE_ROUTES: Final = ((INVOKE_PATH, invoke.handle), (STREAM_INVOKE_PATH, stream_invoke.handle))


def on_url_listener(environ: dict[str, Any], url_listener: tuple[str, str] | None = _url_listener) -> bool:
    """Whether the request came in on the Function URL listener.

    gunicorn's workers set ``SERVER_PORT`` to the port of the listener that accepted the request. Two listeners can
    share a port only on two different specific addresses (a wildcard address takes the port on all of them); then
    the connection's own local address tells which one it is.
    """
    if url_listener is None:
        return False
    host, port = url_listener
    if environ.get("SERVER_PORT") != port:
        return False
    if host in _WILDCARDS:
        return True
    # gunicorn's own gevent worker names the client's socket "gunicorn.socket", its pywsgi one "gunicorn.sock"
    sock = environ.get("gunicorn.socket") or environ.get("gunicorn.sock")
    if sock is None:
        return True
    with dropping(log, "a request whose socket cannot tell its local address, not on the Function URL listener"):
        return bool(sock.getsockname()[0] == host)
    return False


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    if on_url_listener(environ):
        return function_url.handle(_client, environ, start_response)
    path = environ.get("PATH_INFO", "")
    for pattern, route in _INVOKE_ROUTES:
        if match := pattern.match(path):
            method = environ.get("REQUEST_METHOD", "")
            if method != INVOKE_METHOD:
                return _no_operation(start_response, method, path)
            return route(_client, environ, start_response, match["name"])
    if path == HEALTH_PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
        return health.handle(_client, start_response)
    if path.startswith(durable_api.PREFIX):
        return durable_api.handle(_client, environ, start_response)
    return plain_text(start_response, 404, "404 page not found\n")


def _no_operation(start_response: StartResponse, method: str, path: str) -> Iterable[bytes]:
    log.info("%s %r refused: 403 AccessDeniedException: the Invoke API takes POST only", method, path)
    body = json.dumps({"Message": NO_OPERATION}, separators=(",", ":")).encode()
    return service_error(start_response, 403, "AccessDeniedException", body)
