"""Subscribing to the Telemetry API (2022-07-01) and the Logs API (2020-08-15): what a subscription request may ask
for, checked, without I/O (docs.aws.amazon.com/lambda/latest/dg/telemetry-api.html)."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

__all__ = [
    "BUFFERING",
    "LOGS_API",
    "SANDBOX_HOSTS",
    "SCHEMA_VERSIONS",
    "TELEMETRY_API",
    "Category",
    "Destination",
    "Subscription",
    "SubscriptionError",
    "parse_subscription",
]


class Category(enum.StrEnum):
    """What a subscriber names in ``types``."""

    PLATFORM = "platform"
    FUNCTION = "function"
    EXTENSION = "extension"


TELEMETRY_API: Final = "telemetry"
LOGS_API: Final = "logs"
SCHEMA_VERSIONS: Final = {
    TELEMETRY_API: ("2022-07-01", "2022-12-13", "2025-01-29"),
    LOGS_API: ("2020-08-15", "2021-03-18"),
}
# name: (default, minimum, maximum), docs.aws.amazon.com/lambda/latest/dg/telemetry-api.html "Configuring memory
# usage and buffering" (the Logs API has the same limits)
BUFFERING: Final = {
    "maxItems": (10_000, 1_000, 10_000),
    "maxBytes": (262_144, 262_144, 1_048_576),
    "timeoutMs": (1_000, 25, 30_000),
}
# Lambda sends only to destinations inside the execution environment; "sandbox.localdomain" is its name for it.
SANDBOX_HOSTS: Final = ("sandbox.localdomain", "sandbox", "localhost", "127.0.0.1")


class SubscriptionError(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type


@dataclass(frozen=True, slots=True)
class Destination:
    protocol: str  # HTTP | TCP
    port: int
    path: str = "/"
    host: str = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Subscription:
    api: str  # telemetry | logs
    types: frozenset[Category]
    destination: Destination
    max_items: int
    max_bytes: int
    timeout_ms: int


def parse_subscription(api: str, body: bytes) -> Subscription:
    """A subscription request's body, checked; ``SubscriptionError`` (400 ValidationError) naming every problem."""
    try:
        request = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise SubscriptionError(400, "ValidationError", f"Invalid JSON: {exc}") from None
    if not isinstance(request, dict):
        raise SubscriptionError(400, "ValidationError", "the subscription must be a JSON object")
    problems: list[str] = []
    version = request.get("schemaVersion")
    if version is not None and version not in SCHEMA_VERSIONS[api]:
        problems.append(f"schemaVersion {version!r} is not one of {', '.join(SCHEMA_VERSIONS[api])}")
    types = request.get("types")
    categories = {category.value: category for category in Category}
    if not isinstance(types, list) or not types:
        problems.append("types should not be empty")
        types = []
    for name in types:
        if name not in categories:
            problems.append(f"types: {name!r} is not one of platform, function, extension")
    destination = _destination(request.get("destination"), problems)
    buffering = request.get("buffering") or {}
    if not isinstance(buffering, dict):
        problems.append("buffering must be an object")
        buffering = {}
    limits: dict[str, int] = {}
    for name, (default, minimum, maximum) in BUFFERING.items():
        value = buffering.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            problems.append(f"buffering.{name} must be a whole number from {minimum} to {maximum}")
            value = default
        limits[name] = value
    if problems or destination is None:
        raise SubscriptionError(400, "ValidationError", "; ".join(problems))
    return Subscription(
        api=api,
        types=frozenset(categories[name] for name in types),
        destination=destination,
        max_items=limits["maxItems"],
        max_bytes=limits["maxBytes"],
        timeout_ms=limits["timeoutMs"],
    )


def _destination(value: Any, problems: list[str]) -> Destination | None:
    if not isinstance(value, dict):
        problems.append("destination is required")
        return None
    protocol = value.get("protocol")
    uri = value.get("URI")
    if protocol == "TCP" and "port" in value:
        port = value["port"]
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            problems.append("destination.port must be a port number")
            return None
        return Destination("TCP", port)
    if protocol not in ("HTTP", "TCP"):
        problems.append("destination.protocol must be HTTP or TCP")
        return None
    if not isinstance(uri, str) or not uri:
        problems.append("destination.URI is required")
        return None
    parts = urlsplit(uri if "//" in uri else f"//{uri}")
    if protocol == "HTTP" and parts.scheme != "http":
        problems.append("destination.URI must be an http:// URI (Lambda does not support HTTPS)")
        return None
    if parts.hostname not in SANDBOX_HOSTS:
        problems.append("destination.URI host must be sandbox.localdomain")
        return None
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        problems.append("URI port is not provided")
        return None
    return Destination(protocol, port, parts.path or "/")
