"""Telemetry API and Logs API subscriptions of one execution environment, and the delivery of their events.

An extension subscribes during init (``PUT /2022-07-01/telemetry`` or ``PUT /2020-08-15/logs``) with the types it
wants (platform, function, extension), a destination and a buffering policy
(docs.aws.amazon.com/lambda/latest/dg/telemetry-api.html). Each subscriber has its own buffer and one greenlet that
sends a batch when it holds ``maxItems`` events or ``maxBytes`` bytes, or ``timeoutMs`` after its first event:
over HTTP as one POST of a JSON array on a connection of its own (the answer's status, read by llhttp through
httptools, says whether the batch arrived), over TCP as newline-delimited JSON (the Go emulator's
internal/lambda-managed-instances/aws-lambda-rie/internal/telemetry/internal/client.go does the same). A subscriber
that is slow or gone never blocks the platform: ``publish`` only appends to buffers, a failed send drops its batch,
and a buffer that outgrows four batches drops events, reported to that subscriber as ``platform.logsDropped``.

Events published before subscriptions close (the end of init) are kept and replayed to each new subscriber, so an
extension that subscribes during init still sees ``platform.initStart`` (as the Go emulator's ``Relay`` does).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Final

import gevent
import gevent.event
import gevent.socket
import httptools

from runtime_api.subscription import LOGS_API, Category, Destination, Subscription, SubscriptionError
from supervisor.observe.telemetry_events import (
    category_of,
    encode_event,
    logs_api_events,
    logs_dropped,
    subscription,
    telemetry_api_events,
)

__all__ = [
    "BatchBuffer",
    "TelemetryHub",
]

log = logging.getLogger(__name__)

SEND_TIMEOUT_S: Final = 5.0
RECV_SIZE: Final = 64 * 1024
HELD_BATCHES: Final = 4  # a subscriber's buffer holds at most this many full batches; beyond that, events drop
REPLAY_LIMIT: Final = 10_000  # events kept for subscribers still to come (init only)


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
        except (OSError, gevent.Timeout) as exc:
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
    """One POST of a JSON array to an HTTP subscriber; raises ``OSError`` unless it answers 2xx or 3xx. Only the
    answer's head is read: the connection is closed after it."""
    target = destination.path
    if not target.isascii() or not target.isprintable() or " " in target:
        raise OSError(f"the subscriber's path {target!r} cannot be sent in a request line")
    head = (
        f"POST {target} HTTP/1.1\r\n"
        f"Host: sandbox.localdomain:{destination.port}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    sock = gevent.socket.create_connection((destination.host, destination.port))
    try:
        sock.sendall(head.encode("ascii") + body)
        status = _answer_status(sock)
    finally:
        sock.close()
    if status >= 400:
        raise OSError(f"the subscriber answered {status}")


class _AnswerHead:
    """llhttp's callbacks (httptools calls them by name) for the answer to a POST: its final status, once its head
    has been read (an informational 1xx answer comes before it)."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status >= 200:
            self.status = status


def _answer_status(sock: gevent.socket.socket) -> int:
    """The status of the answer read from ``sock``; ``OSError`` when the subscriber closes the connection before its
    head, or sends something that is not an HTTP/1.x answer."""
    answer = _AnswerHead()
    while not answer.status:
        data = sock.recv(RECV_SIZE)
        if not data:
            raise OSError("the subscriber closed the connection before answering")
        try:
            answer.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise OSError(f"bad HTTP from the subscriber: {exc}") from exc
    return answer.status


class TelemetryHub:
    """The subscribers of one environment and the events it publishes to them."""

    def __init__(self) -> None:
        self._subscribers: dict[str, Subscriber] = {}
        self._replay: list[dict[str, Any]] | None = []  # None once subscriptions are closed

    @property
    def listening(self) -> bool:
        """Whether a published event goes anywhere: to a subscriber, or to those still to come (during init)."""
        return bool(self._subscribers) or self._replay is not None

    def publish(self, event: dict[str, Any]) -> None:
        if self._replay is not None and len(self._replay) < REPLAY_LIMIT:
            self._replay.append(event)
        if self._subscribers:
            self._deliver(event, list(self._subscribers.values()))

    def subscribe(self, name: str, request: Subscription) -> None:
        """Subscribe extension ``name`` (again: the new subscription replaces its old one); ``SubscriptionError``
        once subscriptions are closed (after init)."""
        api = request.api
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
