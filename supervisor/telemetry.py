"""Telemetry API and Logs API subscriptions of one execution environment, and the delivery of their events.

An extension subscribes during init (``PUT /2022-07-01/telemetry`` or ``PUT /2020-08-15/logs``) with the types it
wants (platform, function, extension), a destination and a buffering policy
(docs.aws.amazon.com/lambda/latest/dg/telemetry-api.html). Each subscriber has its own buffer and one greenlet that
sends a batch when it holds ``maxItems`` events or ``maxBytes`` bytes, or ``timeoutMs`` after its first event:
over HTTP as one POST of a JSON array, over TCP as newline-delimited JSON (the Go emulator's
internal/lambda-managed-instances/aws-lambda-rie/internal/telemetry/internal/client.go does the same). A subscriber
that is slow or gone never blocks the platform: ``publish`` only appends to buffers, a failed send drops its batch,
and a buffer that outgrows four batches drops events, reported to that subscriber as ``platform.logsDropped``.

Events published before subscriptions close (the end of init) are kept and replayed to each new subscriber, so an
extension that subscribes during init still sees ``platform.initStart`` (as the Go emulator's ``Relay`` does).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import gevent
import gevent.event
import gevent.socket
import h11

from supervisor.telemetry_events import (
    Category,
    category_of,
    encode_event,
    logs_api_events,
    logs_dropped,
    subscription,
    telemetry_api_events,
)

__all__ = [
    "BatchBuffer",
    "Destination",
    "Subscription",
    "SubscriptionError",
    "TelemetryHub",
    "parse_subscription",
]

log = logging.getLogger(__name__)

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
SEND_TIMEOUT_S: Final = 5.0
HELD_BATCHES: Final = 4  # a subscriber's buffer holds at most this many full batches; beyond that, events drop
REPLAY_LIMIT: Final = 10_000  # events kept for subscribers still to come (init only)


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


class BatchBuffer:
    """One subscriber's buffered events and when they make a batch (the buffering policy, without I/O)."""

    def __init__(self, max_items: int, max_bytes: int, timeout_s: float) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self._events: list[bytes] = []
        self._size = 0
        self.started = 0.0  # monotonic time of the oldest buffered event
        self.dropped_events = 0
        self.dropped_bytes = 0

    def __len__(self) -> int:
        return len(self._events)

    @property
    def full(self) -> bool:
        return len(self._events) >= self.max_items or self._size >= self.max_bytes

    @property
    def due(self) -> float:
        """When the buffered events must go at the latest."""
        return self.started + self.timeout_s

    def add(self, data: bytes, now: float) -> bool:
        """Buffer ``data``; False (and counted as dropped) when the buffer already holds too much."""
        if len(self._events) >= HELD_BATCHES * self.max_items or self._size >= HELD_BATCHES * self.max_bytes:
            self.dropped_events += 1
            self.dropped_bytes += len(data)
            return False
        if not self._events:
            self.started = now
        self._events.append(data)
        self._size += len(data)
        return True

    def take(self) -> list[bytes]:
        """The next batch: at most ``max_items`` events, at most ``max_bytes`` (but at least one event)."""
        count = 0
        size = 0
        for data in self._events:
            if count and (count >= self.max_items or size + len(data) > self.max_bytes):
                break
            count += 1
            size += len(data)
        batch, self._events = self._events[:count], self._events[count:]
        self._size -= size
        if self.dropped_events:
            reason = "Some logs were dropped because the downstream consumer is slower than the logs production rate"
            batch.insert(0, encode_event(logs_dropped(self.dropped_bytes, self.dropped_events, reason)))
            self.dropped_events = self.dropped_bytes = 0
        return batch


class Subscriber:
    def __init__(self, name: str, subscription: Subscription) -> None:
        self.name = name
        self.subscription = subscription
        self._buffer = BatchBuffer(subscription.max_items, subscription.max_bytes, subscription.timeout_ms / 1000)
        self._wake = gevent.event.Event()
        self._idle = gevent.event.Event()
        self._idle.set()
        self._flushing = False
        self._stopped = False
        self._tcp: Any = None
        self._failing = False
        self._greenlet = gevent.spawn(self._run)

    def offer(self, data: list[bytes]) -> None:
        now = time.monotonic()
        was_empty = not self._buffer
        for item in data:
            self._buffer.add(item, now)
        if self._buffer and (was_empty or self._buffer.full):
            self._idle.clear()
            self._wake.set()

    def flush(self, timeout_s: float) -> None:
        """Send what is buffered now, waiting at most ``timeout_s`` for it to go."""
        if not self._buffer and self._idle.is_set():
            return
        self._flushing = True
        self._wake.set()
        self._idle.wait(timeout_s)
        self._flushing = False

    def stop(self) -> None:
        self._stopped = True
        self._greenlet.kill(block=False)
        if self._tcp is not None:
            with contextlib.suppress(OSError):
                self._tcp.close()

    def _run(self) -> None:
        buffer = self._buffer
        while not self._stopped:
            if not buffer:
                self._idle.set()
                self._wake.clear()
                self._wake.wait()
                continue
            now = time.monotonic()
            due = buffer.due
            if not (buffer.full or self._flushing or now >= due):
                self._wake.clear()
                self._wake.wait(due - now)
                continue
            self._send(buffer.take())

    def _send(self, batch: list[bytes]) -> None:
        destination = self.subscription.destination
        try:
            with gevent.Timeout(SEND_TIMEOUT_S):
                if destination.protocol == "HTTP":
                    _post(destination, b"[" + b",".join(batch) + b"]")
                else:
                    self._write_tcp(destination, batch)
        except (OSError, h11.ProtocolError, gevent.Timeout) as exc:
            if self._tcp is not None:
                with contextlib.suppress(OSError):
                    self._tcp.close()
                self._tcp = None
            level = logging.DEBUG if self._failing else logging.WARNING
            log.log(level, "telemetry subscriber %s: %d events dropped: %s", self.name, len(batch), exc or "timed out")
            self._failing = True
            return
        self._failing = False

    def _write_tcp(self, destination: Destination, batch: list[bytes]) -> None:
        if self._tcp is None:
            self._tcp = gevent.socket.create_connection((destination.host, destination.port))
        self._tcp.sendall(b"".join(item + b"\n" for item in batch))


def _post(destination: Destination, body: bytes) -> None:
    """One POST of a JSON array to an HTTP subscriber; raises ``OSError`` unless it answers 2xx or 3xx."""
    sock = gevent.socket.create_connection((destination.host, destination.port))
    try:
        conn = h11.Connection(h11.CLIENT)
        head = h11.Request(
            method="POST",
            target=destination.path,
            headers=[
                ("Host", f"sandbox.localdomain:{destination.port}"),
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
            ],
        )
        sock.sendall(conn.send(head) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
        status = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
        if status >= 400:
            raise OSError(f"the subscriber answered {status}")
    finally:
        sock.close()


class TelemetryHub:
    """The subscribers of one environment and the events it publishes to them."""

    def __init__(self) -> None:
        self._subscribers: dict[str, Subscriber] = {}
        self._replay: list[dict[str, Any]] | None = []  # None once subscriptions are closed

    @property
    def open(self) -> bool:
        return self._replay is not None

    @property
    def listening(self) -> bool:
        """Whether a published event goes anywhere: to a subscriber, or to those still to come (during init)."""
        return bool(self._subscribers) or self._replay is not None

    def publish(self, event: dict[str, Any]) -> None:
        if self._replay is not None and len(self._replay) < REPLAY_LIMIT:
            self._replay.append(event)
        if self._subscribers:
            self._deliver(event, list(self._subscribers.values()))

    def subscribe(self, api: str, name: str, body: bytes) -> None:
        """Subscribe extension ``name`` (again: the new subscription replaces its old one); ``SubscriptionError``."""
        request = parse_subscription(api, body)
        if self._replay is None:
            if api == LOGS_API:
                raise SubscriptionError(403, "Logs.SubscriptionClosed", "Logs API subscription is closed")
            raise SubscriptionError(403, "Telemetry.SubscriptionClosed", "Telemetry API subscription is closed")
        old = self._subscribers.pop(name, None)
        if old is not None:
            old.stop()
        subscriber = Subscriber(name, request)
        self._subscribers[name] = subscriber
        log.info("%s subscribed to the %s API: %s", name, api, ", ".join(sorted(request.types)))
        for event in self._replay:
            self._deliver(event, [subscriber])
        order = list(Category)
        self.publish(subscription(api, name, [category.value for category in order if category in request.types]))

    def close_subscriptions(self) -> None:
        """Init is over: no more subscriptions, and nothing more to replay."""
        self._replay = None

    def flush(self, timeout_s: float) -> None:
        """Send every subscriber's buffered events, waiting at most ``timeout_s`` in all."""
        greenlets = [gevent.spawn(subscriber.flush, timeout_s) for subscriber in self._subscribers.values()]
        gevent.joinall(greenlets, timeout=timeout_s)

    def stop(self) -> None:
        for subscriber in self._subscribers.values():
            subscriber.stop()
        self._subscribers.clear()
        self._replay = None

    @staticmethod
    def _deliver(event: dict[str, Any], subscribers: list[Subscriber]) -> None:
        category = category_of(event)
        rendered: dict[str, list[bytes]] = {}
        for subscriber in subscribers:
            api = subscriber.subscription.api
            if category not in subscriber.subscription.types:
                continue
            if api not in rendered:
                view: Callable[[dict[str, Any]], list[dict[str, Any]]]
                view = logs_api_events if api == LOGS_API else telemetry_api_events
                rendered[api] = [encode_event(item) for item in view(event)]
            if rendered[api]:
                subscriber.offer(rendered[api])
