"""The API's answers about executions, rendered from the model: pure.

``GetDurableExecution``, the ``Execution`` summaries of ``ListDurableExecutionsByFunction``, pages of
``GetDurableExecutionHistory``, and what a synchronous Invoke answers when its execution has closed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from pyrie_durable.codec import epoch_seconds, render_error
from pyrie_durable.durable_errors import DurableServiceError, ErrorCode
from pyrie_durable.history import without_data
from pyrie_durable.model import Execution, Json
from pyrie_durable.states import ExecutionStatus
from pyrie_durable.tokens import decode_marker, encode_marker

__all__ = [
    "InvokeAnswer",
    "execution_summary",
    "execution_view",
    "history_page",
    "invoke_answer",
    "list_page",
]

DEFAULT_ITEMS: Final = 100
MAX_ITEMS: Final = 1000


def execution_view(execution: Execution, *, include_data: bool = True) -> Json:
    """``GetDurableExecutionResponse``."""
    view: Json = {
        "DurableExecutionArn": execution.arn,
        "DurableExecutionName": execution.name,
        "FunctionArn": execution.function_arn,
    }
    if include_data:
        view["InputPayload"] = execution.input_payload
        if execution.result is not None:
            view["Result"] = execution.result
        if execution.error is not None:
            view["Error"] = render_error(execution.error)
    view["StartTimestamp"] = epoch_seconds(execution.start)
    view["Status"] = execution.status.value
    if execution.end is not None:
        view["EndTimestamp"] = epoch_seconds(execution.end)
    view["Version"] = execution.version
    if execution.trace_id is not None:
        view["TraceHeader"] = {"XAmznTraceId": execution.trace_id}
    view["ExecutionDataIncluded"] = include_data
    view["DurableConfig"] = {
        "RetentionPeriodInDays": execution.retention_days,
        "ExecutionTimeout": execution.execution_timeout,
    }
    if execution.running:
        view["ExpectedExecutionTimeoutTimestamp"] = epoch_seconds(execution.deadline)
    return view


def execution_summary(execution: Execution) -> Json:
    """An ``Execution`` of ``ListDurableExecutionsByFunctionResponse``."""
    summary: Json = {
        "DurableExecutionArn": execution.arn,
        "DurableExecutionName": execution.name,
        "FunctionArn": execution.function_arn,
        "Status": execution.status.value,
        "StartTimestamp": epoch_seconds(execution.start),
    }
    if execution.end is not None:
        summary["EndTimestamp"] = epoch_seconds(execution.end)
    return summary


def _limit(max_items: int | None) -> int:
    return DEFAULT_ITEMS if not max_items else min(max_items, MAX_ITEMS)


def _start(marker: str | None, scope: str) -> int:
    if not marker:
        return 0
    position = decode_marker(marker, scope)
    if position is None:
        raise DurableServiceError(ErrorCode.INVALID_PARAMETER, "Invalid marker")
    return position


def history_page(
    execution: Execution,
    *,
    include_data: bool = True,
    reverse: bool = False,
    marker: str | None = None,
    max_items: int | None = None,
) -> Json:
    """``GetDurableExecutionHistoryResponse``: events oldest first (newest first with ``reverse``)."""
    events: Sequence[Json] = execution.events[::-1] if reverse else execution.events
    scope = f"history.{'r' if reverse else 'f'}"
    start = _start(marker, scope)
    end = start + _limit(max_items)
    page = [event if include_data else without_data(event) for event in events[start:end]]
    response: Json = {"Events": page}
    if end < len(events):
        response["NextMarker"] = encode_marker(scope, end)
    return response


def list_page(
    executions: Iterable[Execution],
    *,
    name: str | None = None,
    statuses: frozenset[ExecutionStatus] | None = None,
    started_after: float | None = None,
    started_before: float | None = None,
    oldest_first: bool = False,
    marker: str | None = None,
    max_items: int | None = None,
) -> Json:
    """``ListDurableExecutionsByFunctionResponse``: newest first unless ``oldest_first`` (``ReverseOrder``)."""
    chosen = [
        execution
        for execution in executions
        if (name is None or execution.name == name)
        and (statuses is None or execution.status in statuses)
        and (started_after is None or execution.start >= started_after)
        and (started_before is None or execution.start <= started_before)
    ]
    chosen.sort(key=lambda execution: (execution.start, execution.arn), reverse=not oldest_first)
    scope = f"list.{'o' if oldest_first else 'n'}"
    start = _start(marker, scope)
    end = start + _limit(max_items)
    response: Json = {"DurableExecutions": [execution_summary(execution) for execution in chosen[start:end]]}
    if end < len(chosen):
        response["NextMarker"] = encode_marker(scope, end)
    return response


@dataclass(frozen=True)
class InvokeAnswer:
    """What a RequestResponse Invoke of a durable function answers once its execution closed: always status 200;
    ``function_error`` ("Unhandled") and a ``{"errorType", "errorMessage"}`` body unless it SUCCEEDED."""

    body: bytes
    function_error: str | None = None


_DEFAULT_ERROR_TYPE: Final = {
    ExecutionStatus.FAILED: "Error",
    ExecutionStatus.TIMED_OUT: "Execution.TimedOut",
    ExecutionStatus.STOPPED: "Execution.Stopped",
}


def invoke_answer(execution: Execution) -> InvokeAnswer:
    if execution.status is ExecutionStatus.RUNNING:
        raise ValueError(f"{execution.arn} is still running")
    if execution.status is ExecutionStatus.SUCCEEDED:
        return InvokeAnswer(body=(execution.result or "null").encode())
    error = execution.error
    body: Json = {
        "errorType": (error.type if error is not None else None) or _DEFAULT_ERROR_TYPE[execution.status],
        "errorMessage": (error.message if error is not None else None) or "",
    }
    if error is not None and error.stack_trace:
        body["stackTrace"] = list(error.stack_trace)
    return InvokeAnswer(body=json.dumps(body, separators=(",", ":")).encode(), function_error="Unhandled")
