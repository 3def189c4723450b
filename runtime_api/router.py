"""The table of contents of the Runtime API: every route, and how a request finds its handler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from runtime_api import credentials_routes, extension_routes, runtime_routes, telemetry_routes
from runtime_api.host import RuntimeHost
from runtime_api.http_connection import HttpConnection, Request

__all__ = ["ROUTES", "Route", "dispatch"]

Handler = Callable[[RuntimeHost, Request, HttpConnection, dict[str, str]], None]


def _always(host: RuntimeHost) -> bool:
    return True


def _init_caching(host: RuntimeHost) -> bool:
    """The routes the Go emulator mounts only with ``--enable-init-caching`` (SnapStart)."""
    return host.init_caching


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: tuple[str, ...]  # path segments; "{name}" segments capture
    handler: Handler
    enabled: Callable[[RuntimeHost], bool] = _always  # a route that is not enabled is not there at all (404)

    def match(self, segments: list[str]) -> dict[str, str] | None:
        if len(segments) != len(self.pattern):
            return None
        captured: dict[str, str] = {}
        for expected, actual in zip(self.pattern, segments, strict=True):
            if expected.startswith("{"):
                if not actual:
                    return None
                captured[expected[1:-1]] = actual
            elif expected != actual:
                return None
        return captured


def _route(method: str, path: str, handler: Handler, enabled: Callable[[RuntimeHost], bool] = _always) -> Route:
    return Route(method, tuple(path.strip("/").split("/")), handler, enabled)


ROUTES: Final = (
    _route("GET", "/2018-06-01/ping", runtime_routes.ping),
    _route("GET", "/2018-06-01/runtime/invocation/next", runtime_routes.next_invocation),
    _route("POST", "/2018-06-01/runtime/invocation/{request_id}/response", runtime_routes.invocation_response),
    _route("POST", "/2018-06-01/runtime/invocation/{request_id}/error", runtime_routes.invocation_error),
    _route("POST", "/2018-06-01/runtime/init/error", runtime_routes.init_error),
    _route("GET", "/2018-06-01/runtime/restore/next", runtime_routes.restore_next, _init_caching),
    _route("POST", "/2018-06-01/runtime/restore/error", runtime_routes.restore_error, _init_caching),
    _route("GET", credentials_routes.CREDENTIALS_PATH, credentials_routes.credentials, _init_caching),
    _route("POST", "/2020-01-01/extension/register", extension_routes.register),
    _route("GET", "/2020-01-01/extension/event/next", extension_routes.next_event),
    _route("POST", "/2020-01-01/extension/init/error", extension_routes.init_error),
    _route("POST", "/2020-01-01/extension/exit/error", extension_routes.exit_error),
    _route("PUT", "/2020-08-15/logs", telemetry_routes.logs_subscribe),
    _route("PUT", "/2022-07-01/telemetry", telemetry_routes.telemetry_subscribe),
)


def dispatch(host: RuntimeHost, request: Request, conn: HttpConnection) -> None:
    """Run the handler of ``request``: 404 for an unknown path, 405 (with ``Allow``) for a wrong method."""
    segments = request.path.strip("/").split("/")
    allowed: list[str] = []
    for route in ROUTES:
        params = route.match(segments)
        if params is None or not route.enabled(host):
            continue
        if route.method == request.method:
            route.handler(host, request, conn, params)
            return
        allowed.append(route.method)
    if allowed:
        conn.respond(405, [("Allow", ", ".join(allowed))])
    else:
        conn.respond(404, [("Content-Type", "text/plain; charset=utf-8")], b"404 page not found\n")
