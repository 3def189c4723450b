"""Shaping WSGI responses: Lambda's service errors, function errors, and plain ones."""

from __future__ import annotations

import http
import json
from collections.abc import Callable, Iterable
from typing import Any

from pyrie_core.ids import new_request_id
from pyrie_core.lambda_errors import ServiceError

__all__ = [
    "StartResponse",
    "function_error",
    "json_response",
    "plain_text",
    "service_error",
    "service_exception_json",
    "service_unavailable",
    "status_line",
]

StartResponse = Callable[..., Any]


def status_line(status: int) -> str:
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def plain_text(start_response: StartResponse, status: int, text: str) -> Iterable[bytes]:
    """A plain-text answer (the Go emulator's ``404 page not found``), with the request id every answer has."""
    body = text.encode()
    start_response(
        status_line(status),
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Length", str(len(body))),
            ("X-Amzn-RequestId", new_request_id()),
        ],
    )
    return [body]


def service_error(
    start_response: StartResponse,
    status: int,
    code: str,
    body: bytes,
    *,
    request_id: str | None = None,
    executed_version: str = "$LATEST",
    extra_headers: Iterable[tuple[str, str]] = (),
) -> Iterable[bytes]:
    """Lambda's rest-json error: ``X-Amzn-ErrorType`` names it, the JSON body explains it."""
    start_response(
        status_line(status),
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("X-Amzn-RequestId", request_id or new_request_id()),
            ("X-Amz-Executed-Version", executed_version),
            ("X-Amzn-ErrorType", code),
            *extra_headers,
        ],
    )
    return [body]


def service_error_json(code: str, message: str, fields: dict[str, str] | None = None) -> bytes:
    """The JSON body of a service error: ``{"Type": "User", "message": ...}`` unless other ``fields`` are given."""
    body = {"Type": "User"} if fields is None else dict(fields)
    body["message"] = message
    return json.dumps(body, separators=(",", ":")).encode()


def service_exception_json(message: str) -> bytes:
    """Lambda's body for a failure of the service itself (here: the supervisor)."""
    return json.dumps({"Type": "Service", "Message": message}, separators=(",", ":")).encode()


def service_unavailable(start_response: StartResponse, message: str) -> Iterable[bytes]:
    """503 ``ServiceException``."""
    return service_error(start_response, 503, ServiceError.SERVICE, service_exception_json(message))


def json_response(start_response: StartResponse, status: int, value: Any) -> Iterable[bytes]:
    body = json.dumps(value, separators=(",", ":")).encode()
    start_response(status_line(status), [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def function_error(
    start_response: StartResponse,
    body: bytes,
    request_id: str,
    executed_version: str,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> Iterable[bytes]:
    """The invoke ran and the function failed: 200, ``X-Amz-Function-Error: Unhandled``, Lambda's error body."""
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("X-Amzn-RequestId", request_id),
            ("X-Amz-Executed-Version", executed_version),
            ("X-Amz-Function-Error", "Unhandled"),
            *extra_headers,
        ],
    )
    return [body]
