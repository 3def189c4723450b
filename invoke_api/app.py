"""The invoke front end, a WSGI application for gunicorn's gevent workers: ``invoke_api.app:application``.

Routes (DESIGN §4): ``/2015-03-31/functions/{name}/invocations`` (Invoke). Any method is accepted on it, as the Go
emulator accepts any. ``GET /healthz``: the supervisor's status (``invoke_api.health``). Other paths answer the Go
emulator's plain-text 404.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

from invoke_api import health, invoke
from invoke_api.responses import StartResponse, plain_text
from invoke_api.supervisor_client import SupervisorClient

__all__ = ["application"]

INVOKE_PATH: Final = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
HEALTH_PATH: Final = "/healthz"

# One client per worker process: it keeps that worker's connections to the supervisor for reuse.
_client = SupervisorClient()


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    match = INVOKE_PATH.match(path)
    if match is not None:
        return invoke.handle(_client, environ, start_response, match["name"])
    if path == HEALTH_PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
        return health.handle(_client, start_response)
    return plain_text(start_response, 404, "404 page not found\n")
