"""The Telemetry API (2022-07-01) and the older Logs API (2020-08-15): an extension subscribes during init."""

from __future__ import annotations

from runtime_api.extension_routes import BODY_LIMIT, extension_by_identifier
from runtime_api.host import RuntimeHost
from runtime_api.http_connection import HttpConnection, Request, error_response
from runtime_api.runtime_routes import JSON
from runtime_api.subscription import LOGS_API, TELEMETRY_API, SubscriptionError, parse_subscription

__all__ = ["logs_subscribe", "telemetry_subscribe"]


def telemetry_subscribe(host: RuntimeHost, request: Request, conn: HttpConnection, params: dict[str, str]) -> None:
    _subscribe(host, request, conn, TELEMETRY_API)


def logs_subscribe(host: RuntimeHost, request: Request, conn: HttpConnection, params: dict[str, str]) -> None:
    _subscribe(host, request, conn, LOGS_API)


def _subscribe(host: RuntimeHost, request: Request, conn: HttpConnection, api: str) -> None:
    extension = extension_by_identifier(host, request, conn, check_enabled=False)
    if extension is None:
        return
    body, _ = conn.read_body(BODY_LIMIT)
    try:
        host.telemetry.subscribe(extension.name, parse_subscription(api, body))
    except SubscriptionError as refused:
        error_response(conn, refused.status, refused.error_type, str(refused))
        return
    conn.respond(200, [JSON], b'"OK"')
