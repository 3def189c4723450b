"""One invoke on its way through an execution environment, and the sink its response flows into.

The runtime side (runtime_api handlers, timers, process watchers) reports what happens through the methods of
``Invocation``; the invocation turns that into messages for its ``ResponseSink`` (the front end's connection). The
first final outcome wins: once ``finished`` is set, later reports (a response after the timeout fired, a crash after
the response) change nothing the caller sees.
"""

from __future__ import annotations

import time
from typing import Final, Protocol

import gevent
import gevent.event
import msgspec

from pyrie_core import lambda_errors as errors
from pyrie_core.ids import new_request_id, new_span_id, new_trace_id
from pyrie_core.pipe.messages import CHUNK_SIZE, Chunk, End, Head, Invoke, Message, Outcome
from runtime_api.runtime_api_server import Parking
from supervisor.log_tail import LogTail

__all__ = ["DiscardingSink", "Invocation", "ResponseSink"]

DEFAULT_CONTENT_TYPE: Final = "application/octet-stream"


class ResponseSink(Protocol):
    """Where an invocation's response goes. ``send`` never waits and never raises: a sink whose peer has gone drops
    what it is given. ``wait_for_room`` is the backpressure: a streaming runtime's relay waits there while the sink
    holds as much as it may, until it has room again, its peer is gone, or ``abort`` is set."""

    def send(self, *messages: Message) -> None: ...

    def wait_for_room(self, abort: gevent.event.Event) -> None: ...


class DiscardingSink:
    """A sink for invokes nobody waits for (Event invokes, warm-ups)."""

    def send(self, *messages: Message) -> None:
        return None

    def wait_for_room(self, abort: gevent.event.Event) -> None:
        return None


class _NotParked:
    """Where an invoke that was never delivered would park (it never streams)."""

    def park(self) -> None:
        return None

    def unpark(self) -> None:
        return None


class Invocation:
    def __init__(
        self, request: Invoke, sink: ResponseSink, executed_version: str, request_id: str | None = None
    ) -> None:
        self.request = request
        self.sink = sink
        self.request_id = request_id or new_request_id()
        self.executed_version = executed_version
        self.arrived = time.monotonic()
        self.delivered: float | None = None  # when the runtime's /next received it
        self.deadline_ms: int = 0  # epoch milliseconds, the runtime's Lambda-Runtime-Deadline-Ms
        self.trace_id = request.trace_id or new_trace_id()
        self.responded: float | None = None  # when the final outcome was decided
        self.outcome: End | None = None
        self.finished = gevent.event.Event()
        self._head: Head | None = None
        self.bytes_out = 0
        # Its streamed response waits for the sink (a client behind by as much as pyrie holds for it): the runtime's
        # socket is not read meanwhile, and its connection is parked on the Runtime API server that delivered it.
        self.waiting_for_room = False
        self._parking: Parking = _NOT_PARKED
        self.response_started: float | None = None  # when the runtime began its /response or /error
        self.runtime_done: float | None = None  # when the runtime was done with it (back at /next, or gone)
        self.platform_failure = False  # the failure was seen by the platform (timeout, crash), not reported
        self.span_id = new_span_id()  # the invoke's span in telemetry's tracing context
        # The caller asked for the log tail: the final frame then waits until the log is complete (END, REPORT).
        tail = request.log_type == "Tail" and request.invocation_type == "RequestResponse"
        self.log_tail: LogTail | None = LogTail() if tail else None
        self._log_open = False
        self._held: tuple[Message, ...] = ()

    # -- delivery ---------------------------------------------------------------------------------------------

    def deliver(self, timeout_s: int, parking: Parking) -> None:
        """The runtime takes the invoke now, from the Runtime API server ``parking``: its timer starts."""
        self._parking = parking
        self.delivered = time.monotonic()
        self.deadline_ms = int(time.time() * 1000) + timeout_s * 1000

    # -- the response, as the runtime produces it --------------------------------------------------------------

    def respond(self, content_type: str | None, body: bytes, headers: dict[str, str] | None = None) -> None:
        """A whole buffered response: one write of head, body and end (``headers`` go on the head)."""
        if self.finished.is_set():
            return
        head = self._make_head(content_type, streaming=False, length=len(body), headers=headers)
        end = self._end(Outcome.OK)
        # A body over one chunk is cut into views of it, not copies (each is sent as it is).
        view = memoryview(body) if len(body) > CHUNK_SIZE else body
        chunks = [Chunk(view[i : i + CHUNK_SIZE]) for i in range(0, len(body), CHUNK_SIZE)]  # type: ignore[arg-type]
        self.bytes_out = len(body)
        self._finish(end, head, *chunks)

    def start_stream(self, content_type: str | None) -> None:
        if self.finished.is_set() or self._head is not None:
            return
        self.sink.send(self._make_head(content_type, streaming=True))

    def write(self, data: bytes) -> None:
        """Relay one piece of a streamed body; returns once the sink has room for more (or the invoke ended).

        Each piece first lets the loop's other work run: a runtime that streams as fast as its relay reads (to a
        fast client, or into nothing once the invoke has ended) never keeps a timer, a kill or another invoke
        waiting, since a socket that has data is read without ever yielding."""
        gevent.sleep(0)
        if self.finished.is_set() or not data:
            return
        self.bytes_out += len(data)
        if len(data) <= CHUNK_SIZE:
            self.sink.send(Chunk(data))
            self._wait_for_room()
            return
        view = memoryview(data)
        for start in range(0, len(data), CHUNK_SIZE):
            if self.finished.is_set():
                return
            self.sink.send(Chunk(bytes(view[start : start + CHUNK_SIZE])))
            self._wait_for_room()

    def _wait_for_room(self) -> None:
        self.waiting_for_room = True
        self._parking.park()
        try:
            self.sink.wait_for_room(self.finished)
        finally:
            self._parking.unpark()
            self.waiting_for_room = False

    def succeed(self) -> None:
        """The streamed body ended normally."""
        self._finish(self._end(Outcome.OK))

    def fail(self, error_type: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        """A function error: Lambda answers 200 with X-Amz-Function-Error: Unhandled and ``body``."""
        self._finish(self._end(Outcome.FUNCTION_ERROR, error_type=error_type, body=body, headers=headers))

    def fail_platform(self, error_type: str, message: str) -> None:
        """A function error that Lambda itself detected (timeout, crash, oversize): its JSON body."""
        if self.finished.is_set():
            return
        self.platform_failure = True
        self.fail(error_type, errors.function_error_body(error_type, f"RequestId: {self.request_id} Error: {message}"))

    def acknowledge(self, status: int, headers: dict[str, str] | None = None) -> None:
        """Success without a response body (202 for an Event invoke, 204 for a DryRun)."""
        self._finish(self._end(Outcome.OK, status=status, headers=headers))

    def reject(self, status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: str) -> None:
        """A service error: the invoke did not run (unknown function, throttled...)."""
        body = errors.service_error_body(code, message, **extra)
        self._finish(self._end(Outcome.SERVICE_ERROR, error_type=code, body=body, status=status, headers=headers))

    # -- internals ----------------------------------------------------------------------------------------------

    def _make_head(
        self,
        content_type: str | None,
        streaming: bool,
        length: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> Head:
        self._head = Head(
            request_id=self.request_id,
            content_type=content_type or DEFAULT_CONTENT_TYPE,
            streaming=streaming,
            executed_version=self.executed_version,
            length=length,
            headers=headers or {},
        )
        return self._head

    def _end(
        self,
        outcome: Outcome,
        error_type: str | None = None,
        body: bytes = b"",
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> End:
        return End(
            outcome=outcome,
            request_id=self.request_id,
            executed_version=self.executed_version,
            error_type=error_type,
            body=body,
            status=status,
            headers=headers or {},
        )

    def _finish(self, end: End, *before: Message) -> None:
        # The first final outcome wins; everything after it is ignored.
        if self.finished.is_set():
            return
        self.outcome = end
        self.responded = time.monotonic()
        self.finished.set()
        if self._log_open and self.log_tail is not None:
            self._held = (*before, end)  # sent with the log tail, once END and REPORT are written
            return
        self.sink.send(*before, self._with_log_result(end))

    # -- the log tail -------------------------------------------------------------------------------------------

    def open_log(self) -> None:
        """Its START line is written: a Tail caller's final frame now waits for ``close_log``."""
        self._log_open = True

    def close_log(self) -> None:
        """Its END and REPORT are written: the log tail is complete."""
        self._log_open = False
        held, self._held = self._held, ()
        if held:
            *before, end = held
            assert isinstance(end, End)
            self.sink.send(*before, self._with_log_result(end))

    def _with_log_result(self, end: End) -> End:
        if self.log_tail is None:
            return end
        return msgspec.structs.replace(end, log_result=self.log_tail.result() or None)

    def __repr__(self) -> str:
        return f"<Invocation {self.request_id}>"


_NOT_PARKED: Final = _NotParked()
