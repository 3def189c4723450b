"""What one execution environment reports about itself, in one place: pyrie's stdout, the invoke's log tail, and
the telemetry subscribers.

Platform lines go to stdout as Lambda's text (START / END / REPORT; with SnapStart also INIT_REPORT and
RESTORE_REPORT) or, with ``AWS_LAMBDA_LOG_FORMAT=JSON``, as Lambda's JSON records (the Telemetry API's events:
``platform.start``, ``platform.runtimeDone``, ``platform.report``, ``platform.restoreReport``...). Every line
written while an invoke runs (its START, the runtime's and extensions' output, its END and REPORT) also goes into that
invoke's log tail when its caller asked for one (``X-Amz-Log-Type: Tail``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pyrie_core.lambda_errors import FunctionError
from pyrie_core.pipe.messages import Outcome
from runtime_api.subscription import Category
from supervisor.config import FunctionConfig
from supervisor.invocation import Invocation
from supervisor.observe.function_log import FunctionLog
from supervisor.observe.platform_lines import (
    end_line,
    init_report_line,
    report_line,
    restore_report_line,
    start_line,
)
from supervisor.observe.telemetry_events import (
    INIT_TYPE,
    SNAP_START,
    Span,
    Status,
    encode_event,
    extension_event,
    init_report,
    init_runtime_done,
    init_start,
    iso_time,
    log_line,
    platform_start,
    report,
    restore_report,
    restore_runtime_done,
    restore_start,
    runtime_done,
    span,
)
from supervisor.observe.telemetry_hub import TelemetryHub

__all__ = ["PlatformReporter", "invoke_status"]


def invoke_status(invocation: Invocation) -> tuple[Status, str | None]:
    """How an invoke ended, as ``platform.runtimeDone`` and ``platform.report`` put it."""
    outcome = invocation.outcome
    if outcome is None:
        return Status.FAILURE, FunctionError.EXIT.value
    if outcome.outcome is Outcome.OK:
        return Status.SUCCESS, None
    if not invocation.platform_failure:
        return Status.ERROR, outcome.error_type
    if outcome.error_type == FunctionError.TIMEOUT:
        return Status.TIMEOUT, outcome.error_type
    return Status.FAILURE, outcome.error_type


def _epoch(monotonic: float) -> float:
    return time.time() - (time.monotonic() - monotonic)


class PlatformReporter:
    def __init__(self, out: FunctionLog, function: FunctionConfig, hub: TelemetryHub) -> None:
        self._out = out
        self._function = function
        self._hub = hub
        self._json = function.log_format == "JSON"
        self._snapstart = function.snapstart is not None
        self._init_type = SNAP_START if self._snapstart else INIT_TYPE

    # -- output lines -------------------------------------------------------------------------------------------

    def function_output(self, line: bytes, invocation: Invocation | None) -> None:
        self._output(Category.FUNCTION, line, invocation)

    def extension_output(self, line: bytes, invocation: Invocation | None) -> None:
        self._output(Category.EXTENSION, line, invocation)

    def _output(self, category: Category, line: bytes, invocation: Invocation | None) -> None:
        if not line.endswith(b"\n"):
            line += b"\n"
        self._out.write(line)  # stdout, the tail and telemetry all take the line with its newline
        if invocation is not None and invocation.log_tail is not None:
            invocation.log_tail.append(line)
        if self._hub.listening:
            self._hub.publish(log_line(category, line))

    # -- init ---------------------------------------------------------------------------------------------------

    def init_start(self) -> None:
        function = self._function
        self._platform(lambda: init_start(function.name, function.version, init_type=self._init_type))

    def init_runtime_done(self, status: Status, error_type: str | None = None) -> None:
        self._platform(lambda: init_runtime_done(status, error_type, init_type=self._init_type))

    def init_report(self, duration_ms: float, status: Status, error_type: str | None = None) -> None:
        """``platform.initReport``; with SnapStart also Lambda's INIT_REPORT line, as its REPORT shows no init."""
        text = init_report_line(duration_ms, status.value, error_type) if self._snapstart else None
        self._platform(lambda: init_report(duration_ms, status, error_type, init_type=self._init_type), text)

    # -- restore (SnapStart) ------------------------------------------------------------------------------------

    def restore_start(self) -> None:
        self._platform(lambda: restore_start(self._function.name, self._function.version))

    def restore_runtime_done(self, status: Status, error_type: str | None = None) -> None:
        self._platform(lambda: restore_runtime_done(status, error_type))

    def restore_report(self, duration_ms: float, status: Status, error_type: str | None = None) -> None:
        text = restore_report_line(duration_ms, status.value, error_type)
        self._platform(lambda: restore_report(duration_ms, status, error_type), text)

    def extension_ready(self, name: str, events: list[str]) -> None:
        """An extension is initialised (Lambda's ``EXTENSION`` line, ``platform.extension``)."""
        text = f"EXTENSION\tName: {name}\tState: Ready\tEvents: [{','.join(events)}]"
        self._platform(lambda: extension_event(name, "Ready", events), text)

    # -- invoke -------------------------------------------------------------------------------------------------

    def start(self, invocation: Invocation) -> None:
        invocation.open_log()
        version = self._function.version
        self._platform(
            lambda: platform_start(invocation.request_id, version, invocation.trace_id, invocation.span_id),
            start_line(invocation.request_id, version),
            invocation,
        )

    def timed_out(self, invocation: Invocation, message: str) -> None:
        """Lambda's timeout line (text format only: in JSON, ``platform.report`` says ``timeout``)."""
        if not self._json:
            # One reading of the clock: two could straddle a second and stamp the line a second early.
            self._write(f"{iso_time(time.time())} {invocation.request_id} {message}", invocation)

    def runtime_done(self, invocation: Invocation, now: float) -> None:
        """The runtime is done with ``invocation`` (it came back to ``/next``, or it is gone)."""
        invocation.runtime_done = now

        def event() -> dict[str, Any]:
            status, error_type = invoke_status(invocation)
            started = invocation.delivered or invocation.arrived
            return runtime_done(
                invocation.request_id,
                status,
                duration_ms=(now - started) * 1000,
                produced_bytes=invocation.bytes_out,
                spans=self._spans(invocation),
                trace_id=invocation.trace_id,
                span_id=invocation.span_id,
                error_type=error_type,
            )

        self._platform(event, None, invocation)

    def end_report(
        self,
        invocation: Invocation,
        max_memory_used_mb: int,
        init_duration_ms: float | None,
        now: float,
        restore_duration_ms: float | None = None,
    ) -> None:
        """END and REPORT, ``Duration`` from the invoke's delivery (or its arrival, if it never reached the runtime) to
        ``now``; then the invoke's log is complete and its tail goes to the caller. The first invoke of an
        environment has its init's duration, or, with SnapStart, its restore's."""
        duration_ms = (now - (invocation.delivered or invocation.arrived)) * 1000
        if invocation.runtime_done is None:
            self.runtime_done(invocation, now)
        memory_mb = self._function.memory_mb

        def event() -> dict[str, Any]:
            status, error_type = invoke_status(invocation)
            return report(
                invocation.request_id,
                status,
                duration_ms=duration_ms,
                memory_mb=memory_mb,
                max_memory_used_mb=max_memory_used_mb,
                init_duration_ms=init_duration_ms,
                spans=self._spans(invocation),
                trace_id=invocation.trace_id,
                span_id=invocation.span_id,
                error_type=error_type,
                restore_duration_ms=restore_duration_ms,
            )

        report_text = report_line(
            invocation.request_id,
            duration_ms,
            memory_mb,
            max_memory_used_mb,
            init_duration_ms,
            restore_duration_ms=restore_duration_ms,
        )
        text = end_line(invocation.request_id) + "\n" + report_text
        self._platform(event, text, invocation)
        invocation.close_log()

    @staticmethod
    def _spans(invocation: Invocation) -> list[Span]:
        """``responseLatency`` (delivery to the first byte of the response) and ``responseDuration`` (to its end),
        the spans the schema reference documents for ``platform.runtimeDone``."""
        delivered, started, ended = invocation.delivered, invocation.response_started, invocation.responded
        if delivered is None or started is None:
            return []
        spans = [span("responseLatency", _epoch(delivered), (started - delivered) * 1000)]
        if ended is not None:
            spans.append(span("responseDuration", _epoch(started), max(ended - started, 0.0) * 1000))
        return spans

    # -- writing ------------------------------------------------------------------------------------------------

    def _platform(
        self, event: Callable[[], dict[str, Any]], text: str | None = None, invocation: Invocation | None = None
    ) -> None:
        """Publish the ``event`` (built only when someone takes it); write it as JSON, or as ``text`` (when Lambda
        has a text line for it)."""
        if not self._json:
            if self._hub.listening:
                self._hub.publish(event())
            if text is not None:
                self._write(text, invocation)
            return
        built = event()
        self._hub.publish(built)
        self._write(encode_event(built).decode(), invocation)

    def _write(self, text: str, invocation: Invocation | None) -> None:
        data = f"{text}\n".encode()
        self._out.write(data)
        if invocation is not None and invocation.log_tail is not None:
            invocation.log_tail.append(data)
