"""The events of the Telemetry API (2022-07-01) and the Logs API (2020-08-15), as Lambda shapes them. Pure.

Every event is ``{"time": ..., "type": ..., "record": ...}``; ``time`` is UTC with milliseconds
("2022-10-12T00:00:15.064Z", the Go emulator's ``telemetry.TimeFormat``). The record of each platform event follows
AWS's schema reference (docs.aws.amazon.com/lambda/latest/dg/telemetry-schema-reference.html) with the key order of
the Go emulator's ``interop`` structs (internal/lambda/interop/events_api.go): optional members are left out when
they have no value, as Go's ``omitempty`` does.

The Logs API is the older view of the same stream (docs.aws.amazon.com/lambda/latest/dg/runtimes-logs-api.html): no
init or restore events, ``platform.end`` before ``platform.report``, a smaller ``platform.runtimeDone`` record.
``logs_api_events`` derives it from the Telemetry API's events, so the platform emits each event once.

The same records, one per line, are what Lambda writes for its platform lines when the function's log format is
JSON (``AWS_LAMBDA_LOG_FORMAT=JSON``).
"""

from __future__ import annotations

import enum
import json
import time
from typing import Any, Final

from runtime_api.subscription import Category
from supervisor.observe.platform_lines import billed_durations

__all__ = [
    "Category",
    "Span",
    "Status",
    "category_of",
    "encode_event",
    "event",
    "extension_event",
    "init_report",
    "init_runtime_done",
    "init_start",
    "iso_time",
    "log_line",
    "logs_api_events",
    "logs_dropped",
    "platform_start",
    "report",
    "restore_report",
    "restore_runtime_done",
    "restore_start",
    "runtime_done",
    "span",
    "subscription",
    "telemetry_api_events",
]

TRACE_TYPE: Final = "X-Amzn-Trace-Id"
INIT_TYPE: Final = "on-demand"  # pyrie starts environments when invokes need them: Lambda's on-demand init
SNAP_START: Final = "snap-start"  # the init type with init caching (the Go emulator's telemetry.InitTypeInitCaching)


class Status(enum.StrEnum):
    """``Status`` of the schema reference (success | failure | error), and ``timeout`` as Lambda reports it."""

    SUCCESS = "success"
    ERROR = "error"  # the function reported an error (/error, /init/error)
    FAILURE = "failure"  # the platform saw it fail (a crash, an oversize response)
    TIMEOUT = "timeout"


Span = dict[str, Any]  # {"name", "start", "durationMs"}


def iso_time(epoch: float) -> str:
    """``2022-10-12T00:00:15.064Z``"""
    millis = int(epoch * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis // 1000)) + f".{millis % 1000:03d}Z"


def event(event_type: str, record: Any, epoch: float | None = None) -> dict[str, Any]:
    return {"time": iso_time(time.time() if epoch is None else epoch), "type": event_type, "record": record}


def category_of(telemetry_event: dict[str, Any]) -> Category:
    event_type = telemetry_event["type"]
    if event_type == "function":
        return Category.FUNCTION
    if event_type == "extension":
        return Category.EXTENSION
    return Category.PLATFORM


def encode_event(value: Any) -> bytes:
    """JSON as Go's ``json.Marshal`` writes it: compact, UTF-8, ``<``, ``>`` and ``&`` escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if "<" in text or ">" in text or "&" in text or "\u2028" in text or "\u2029" in text:
        for raw, escaped in _GO_ESCAPES:
            text = text.replace(raw, escaped)
    return text.encode("utf-8", "surrogateescape")


_GO_ESCAPES: Final = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def _tracing(trace_id: str | None, span_id: str | None) -> dict[str, str] | None:
    if not trace_id:
        return None
    tracing = {"spanId": span_id} if span_id else {}
    tracing.update(type=TRACE_TYPE, value=trace_id)
    return tracing


def _compact(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if value is not None}


# -- init ----------------------------------------------------------------------------------------------------------


def init_start(
    function_name: str, function_version: str, phase: str = "init", init_type: str = INIT_TYPE
) -> dict[str, Any]:
    return event(
        "platform.initStart",
        {
            "initializationType": init_type,
            "phase": phase,
            "functionName": function_name,
            "functionVersion": function_version,
        },
    )


def init_runtime_done(
    status: Status, error_type: str | None = None, phase: str = "init", init_type: str = INIT_TYPE
) -> dict[str, Any]:
    record = {"initializationType": init_type, "phase": phase, "status": status.value, "errorType": error_type}
    return event("platform.initRuntimeDone", _compact(record))


def init_report(
    duration_ms: float, status: Status, error_type: str | None = None, phase: str = "init", init_type: str = INIT_TYPE
) -> dict[str, Any]:
    record = {
        "initializationType": init_type,
        "phase": phase,
        "status": status.value,
        "errorType": error_type,
        "metrics": {"durationMs": _ms(duration_ms)},
    }
    return event("platform.initReport", _compact(record))


# -- restore (SnapStart) ---------------------------------------------------------------------------------------------


def restore_start(function_name: str, function_version: str) -> dict[str, Any]:
    """``platform.restoreStart``: the environment is being restored (the schema's optional members left out, as
    ``platform.initStart``'s are)."""
    return event("platform.restoreStart", {"functionName": function_name, "functionVersion": function_version})


def restore_runtime_done(status: Status, error_type: str | None = None) -> dict[str, Any]:
    """``platform.restoreRuntimeDone``: the runtime's part of the restore (its after-restore hooks) is over; the
    record of the Go emulator's ``interop.RestoreRuntimeDoneData``."""
    return event("platform.restoreRuntimeDone", _compact({"status": status.value, "errorType": error_type}))


def restore_report(duration_ms: float, status: Status, error_type: str | None = None) -> dict[str, Any]:
    record = {"status": status.value, "errorType": error_type, "metrics": {"durationMs": _ms(duration_ms)}}
    return event("platform.restoreReport", _compact(record))


def extension_event(name: str, state: str, events: list[str], error_type: str | None = None) -> dict[str, Any]:
    """``platform.extension``: an extension has initialised (``state`` "Ready") or failed to."""
    return event(
        "platform.extension", _compact({"name": name, "state": state, "events": events, "errorType": error_type})
    )


def subscription(api: str, name: str, types: list[str]) -> dict[str, Any]:
    """``platform.telemetrySubscription`` (Telemetry API) or ``platform.logsSubscription`` (Logs API)."""
    event_type = "platform.logsSubscription" if api == "logs" else "platform.telemetrySubscription"
    return event(event_type, {"name": name, "state": "Subscribed", "types": types})


def logs_dropped(dropped_bytes: int, dropped_records: int, reason: str) -> dict[str, Any]:
    return event(
        "platform.logsDropped", {"droppedBytes": dropped_bytes, "droppedRecords": dropped_records, "reason": reason}
    )


# -- invoke --------------------------------------------------------------------------------------------------------


def platform_start(request_id: str, version: str, trace_id: str | None, span_id: str | None) -> dict[str, Any]:
    record = {"requestId": request_id, "version": version, "tracing": _tracing(trace_id, span_id)}
    return event("platform.start", _compact(record))


def runtime_done(
    request_id: str,
    status: Status,
    *,
    duration_ms: float,
    produced_bytes: int,
    spans: list[Span],
    trace_id: str | None,
    span_id: str | None,
    error_type: str | None = None,
) -> dict[str, Any]:
    record = {
        "requestId": request_id,
        "status": status.value,
        "metrics": {"durationMs": _ms(duration_ms), "producedBytes": produced_bytes},
        "tracing": _tracing(trace_id, span_id),
        "spans": spans or None,
        "errorType": error_type,
    }
    return event("platform.runtimeDone", _compact(record))


def report(
    request_id: str,
    status: Status,
    *,
    duration_ms: float,
    memory_mb: int,
    max_memory_used_mb: int,
    init_duration_ms: float | None,
    spans: list[Span],
    trace_id: str | None,
    span_id: str | None,
    error_type: str | None = None,
    restore_duration_ms: float | None = None,
) -> dict[str, Any]:
    """``platform.report``; after a restore (SnapStart) with ``restoreDurationMs``, and the billed duration counting
    the billed restore too, as REPORT's text does (``platform_lines.report_line``)."""
    metrics: dict[str, Any] = {
        "durationMs": _ms(duration_ms),
        "billedDurationMs": billed_durations(duration_ms, restore_duration_ms)[0],
        "memorySizeMB": memory_mb,
        "maxMemoryUsedMB": max_memory_used_mb,
    }
    if init_duration_ms is not None:
        metrics["initDurationMs"] = _ms(init_duration_ms)
    if restore_duration_ms is not None:
        metrics["restoreDurationMs"] = _ms(restore_duration_ms)
    record = {
        "requestId": request_id,
        "status": status.value,
        "metrics": metrics,
        "tracing": _tracing(trace_id, span_id),
        "spans": spans or None,
        "errorType": error_type,
    }
    return event("platform.report", _compact(record))


def span(name: str, start_epoch: float, duration_ms: float) -> Span:
    return {"name": name, "start": iso_time(start_epoch), "durationMs": _ms(duration_ms)}


def log_line(category: Category, line: bytes, epoch: float | None = None) -> dict[str, Any]:
    """A ``function`` or ``extension`` event: one line of output, without its line break."""
    text = line.rstrip(b"\r\n").decode("utf-8", "replace")
    return event(category.value, text, epoch)


def _ms(value: float) -> float:
    return round(value, 3)


# -- the Logs API's view -------------------------------------------------------------------------------------------

_LOGS_API_SKIPS: Final = frozenset(
    {
        "platform.initStart",
        "platform.initRuntimeDone",
        "platform.initReport",
        "platform.restoreStart",
        "platform.restoreRuntimeDone",
        "platform.restoreReport",
        "platform.telemetrySubscription",
    }
)


def telemetry_api_events(telemetry_event: dict[str, Any]) -> list[dict[str, Any]]:
    """What a Telemetry API subscriber receives: every event but the Logs API's own subscription event."""
    return [] if telemetry_event["type"] == "platform.logsSubscription" else [telemetry_event]


def logs_api_events(telemetry_event: dict[str, Any]) -> list[dict[str, Any]]:
    """What a Logs API subscriber receives for one Telemetry API event (nothing, one event, or two)."""
    event_type = telemetry_event["type"]
    if event_type in _LOGS_API_SKIPS:
        return []
    record = telemetry_event["record"]
    stamp = telemetry_event["time"]
    if event_type == "platform.start":
        return [
            {
                "time": stamp,
                "type": event_type,
                "record": {"requestId": record["requestId"], "version": record.get("version")},
            }
        ]
    if event_type == "platform.runtimeDone":
        return [
            {
                "time": stamp,
                "type": event_type,
                "record": {"requestId": record["requestId"], "status": record["status"]},
            }
        ]
    if event_type == "platform.report":
        request_id = record["requestId"]
        return [
            {"time": stamp, "type": "platform.end", "record": {"requestId": request_id}},
            {"time": stamp, "type": event_type, "record": {"requestId": request_id, "metrics": record["metrics"]}},
        ]
    return [telemetry_event]
