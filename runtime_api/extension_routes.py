"""The Extensions API (2020-01-01) and the Telemetry (2022-07-01) and Logs (2020-08-15) subscriptions, as
rie-behaviour.md §7 specifies them: every refusal is a 403 with the Go emulator's error type and message.

The checks run in the Go emulator's order (internal/lambda/rapi/router.go and rapi/handler/agent*.go): the
``Lambda-Extension-Identifier`` header (missing, then not a UUID), then the call's own headers, then the extension
(unknown); then the handler reports the call to the environment (``runtime_api.host.RuntimeHost``), which moves the
extension's state or refuses the call.
"""

from __future__ import annotations

import uuid
from typing import Final

from runtime_api.host import RegisteredExtension, RuntimeHost, RuntimeRefusal
from runtime_api.http_connection import HttpConnection, Request, error_response
from runtime_api.registration import ExtensionError, parse_register_body
from runtime_api.runtime_routes import ACCEPTED, JSON, refuse

__all__ = ["exit_error", "extension_by_identifier", "init_error", "next_event", "register"]

NAME: Final = "lambda-extension-name"
IDENTIFIER: Final = "lambda-extension-identifier"
ACCEPT_FEATURE: Final = "lambda-extension-accept-feature"
ERROR_TYPE: Final = "lambda-extension-function-error-type"
BODY_LIMIT: Final = 1024 * 1024  # registration and subscription bodies are small JSON documents


def register(host: RuntimeHost, request: Request, conn: HttpConnection, params: dict[str, str]) -> None:
    if not host.extensions.enabled:
        conn.respond(404)
        return
    name = request.header(NAME)
    if not name:
        error_response(conn, 403, "Extension.InvalidExtensionName", "Empty extension name")
        return
    features = {feature.strip() for feature in (request.header(ACCEPT_FEATURE) or "").split(",")}
    body, _ = conn.read_body(BODY_LIMIT)
    try:
        events = parse_register_body(body)
        extension, response = host.extensions.register(name, events, with_account="accountId" in features)
    except ExtensionError as refused:
        error_response(conn, refused.status, refused.error_type, str(refused))
        return
    conn.respond(200, [("Lambda-Extension-Identifier", extension.id), JSON], response)


def next_event(host: RuntimeHost, request: Request, conn: HttpConnection, params: dict[str, str]) -> None:
    extension = extension_by_identifier(host, request, conn)
    if extension is None:
        return
    try:
        event = host.extension_waits(extension)
    except RuntimeRefusal as refused:
        refuse(conn, refused)
        return
    if event.event_id is not None:  # INVOKE
        headers = [("Lambda-Extension-Event-Identifier", event.event_id), JSON]
    else:  # SHUTDOWN: no event id, and Go's sniffed content type
        headers = [("Content-Type", "text/plain; charset=utf-8")]
    conn.respond(200, headers, event.body)


def init_error(host: RuntimeHost, request: Request, conn: HttpConnection, params: dict[str, str]) -> None:
    _report_error(host, request, conn, "Extension.InitError")


def exit_error(host: RuntimeHost, request: Request, conn: HttpConnection, params: dict[str, str]) -> None:
    _report_error(host, request, conn, "Extension.ExitError")


def _report_error(host: RuntimeHost, request: Request, conn: HttpConnection, fatal_type: str) -> None:
    if not host.extensions.enabled:
        conn.respond(404)
        return
    ident = _identifier(request, conn)
    if ident is None:
        return
    error_type = request.header(ERROR_TYPE)
    if not error_type:
        error_response(conn, 403, "Extension.MissingHeader", "Lambda-Extension-Function-Error-Type not found")
        return
    extension = host.extensions.find(ident)
    if extension is None:
        error_response(conn, 403, "Extension.UnknownExtensionIdentifier", "Unknown Lambda-Extension-Identifier")
        return
    try:
        host.extension_failed(extension, fatal_type, error_type)
    except RuntimeRefusal as refused:
        refuse(conn, refused)
        return
    conn.respond(202, [JSON], ACCEPTED)


def _identifier(request: Request, conn: HttpConnection) -> str | None:
    """The caller's ``Lambda-Extension-Identifier`` in canonical form, or None after answering 403."""
    text = request.header(IDENTIFIER)
    if not text:
        error_response(conn, 403, "Extension.MissingExtensionIdentifier", "Missing Lambda-Extension-Identifier header")
        return None
    try:
        return str(uuid.UUID(text))
    except ValueError:
        error_response(conn, 403, "Extension.InvalidExtensionIdentifier", "Invalid Lambda-Extension-Identifier")
        return None


def extension_by_identifier(
    host: RuntimeHost, request: Request, conn: HttpConnection, check_enabled: bool = True
) -> RegisteredExtension | None:
    if check_enabled and not host.extensions.enabled:
        conn.respond(404)
        return None
    ident = _identifier(request, conn)
    if ident is None:
        return None
    extension = host.extensions.find(ident)
    if extension is None:
        error_response(conn, 403, "Extension.UnknownExtensionIdentifier", f"Unknown extension {ident}")
    return extension
