"""The history of an execution (``GetDurableExecutionHistory``'s ``Event``), built as things happen.

Each builder returns one event in its wire shape (timestamps as epoch seconds), data included; ``without_data``
strips the payloads for ``IncludeExecutionData=false``. Event ids are given in order by ``append``.
"""

from __future__ import annotations

from collections.abc import Callable

from pyrie_durable.codec import epoch_seconds, render_error
from pyrie_durable.model import ErrorObject, Execution, Json, Operation, OperationUpdate
from pyrie_durable.states import ExecutionStatus, OperationType, Trigger

__all__ = [
    "append",
    "execution_closed",
    "execution_started",
    "invocation_completed",
    "operation_event",
    "without_data",
]


def _payload(value: str | None) -> Json:
    return {} if value is None else {"Payload": value}


def _error(value: ErrorObject | None) -> Json:
    return {} if value is None else {"Payload": render_error(value)}


def _event(kind: str, moment: float, operation: Operation | None, details: Json | None) -> Json:
    event: Json = {"EventType": kind}
    if operation is not None:
        if operation.sub_type is not None:
            event["SubType"] = operation.sub_type
        event["Id"] = operation.id
        if operation.name is not None:
            event["Name"] = operation.name
    event["EventTimestamp"] = epoch_seconds(moment)
    if operation is not None and operation.parent_id is not None:
        event["ParentId"] = operation.parent_id
    if details is not None:
        event[f"{kind}Details"] = details
    return event


def append(execution: Execution, event: Json) -> None:
    """Add an event to the execution's history with the next event id."""
    event["EventId"] = len(execution.events) + 1
    execution.events.append(event)


def execution_started(execution: Execution, operation: Operation) -> Json:
    return _event(
        "ExecutionStarted",
        operation.start,
        operation,
        {"Input": _payload(operation.input_payload), "ExecutionTimeout": execution.execution_timeout},
    )


_CLOSED_EVENT = {
    ExecutionStatus.SUCCEEDED: "ExecutionSucceeded",
    ExecutionStatus.FAILED: "ExecutionFailed",
    ExecutionStatus.TIMED_OUT: "ExecutionTimedOut",
    ExecutionStatus.STOPPED: "ExecutionStopped",
}


def execution_closed(execution: Execution, operation: Operation, moment: float) -> Json:
    kind = _CLOSED_EVENT[execution.status]
    if execution.status is ExecutionStatus.SUCCEEDED:
        details: Json = {"Result": _payload(execution.result)}
    else:
        details = {"Error": _error(execution.error)}
    return _event(kind, moment, operation, details)


def invocation_completed(
    execution: Execution, started: float, ended: float, request_id: str, error: ErrorObject | None
) -> Json:
    details: Json = {
        "StartTimestamp": epoch_seconds(started),
        "EndTimestamp": epoch_seconds(ended),
        "RequestId": request_id,
    }
    if error is not None:
        details["Error"] = _error(error)
    return _event("InvocationCompleted", ended, None, details)


def _retry_details(operation: Operation, delay: int | None = None) -> Json:
    details: Json = {"CurrentAttempt": operation.attempt}
    if delay is not None:
        details["NextAttemptDelaySeconds"] = delay
    return details


def operation_event(
    operation: Operation, trigger: Trigger, moment: float, update: OperationUpdate | None = None
) -> Json | None:
    """The event for ``operation`` having just moved by ``trigger`` (None: the move is not in the history)."""
    kind, details = _EVENTS[operation.type](operation, trigger, update)
    if kind is None:
        return None
    return _event(kind, moment, operation, details)


_Built = tuple[str | None, Json | None]


def _step(operation: Operation, trigger: Trigger, update: OperationUpdate | None) -> _Built:
    match trigger:
        case Trigger.START:
            return "StepStarted", {}
        case Trigger.SUCCEED:
            return "StepSucceeded", {"Result": _payload(operation.result), "RetryDetails": _retry_details(operation)}
        case Trigger.FAIL:
            return "StepFailed", {"Error": _error(operation.error), "RetryDetails": _retry_details(operation)}
        case Trigger.RETRY:
            delay = update.next_attempt_delay if update is not None else None
            retry = _retry_details(operation, delay)
            if operation.error is not None or operation.result is None:
                return "StepFailed", {"Error": _error(operation.error), "RetryDetails": retry}
            # A wait-for-condition check that will run again: the attempt produced a state, not an error.
            return "StepSucceeded", {"Result": _payload(operation.result), "RetryDetails": retry}
    return None, None


def _context(operation: Operation, trigger: Trigger, update: OperationUpdate | None) -> _Built:
    match trigger:
        case Trigger.START:
            return "ContextStarted", {}
        case Trigger.SUCCEED:
            return "ContextSucceeded", {"Result": _payload(operation.result)}
        case Trigger.FAIL:
            return "ContextFailed", {"Error": _error(operation.error)}
    return None, None


def _wait(operation: Operation, trigger: Trigger, update: OperationUpdate | None) -> _Built:
    duration = round((operation.scheduled_end or operation.start) - operation.start)
    match trigger:
        case Trigger.START:
            return "WaitStarted", {
                "Duration": duration,
                "ScheduledEndTimestamp": epoch_seconds(operation.scheduled_end or operation.start),
            }
        case Trigger.WAIT_ELAPSED:
            return "WaitSucceeded", {"Duration": duration}
        case Trigger.CANCEL:
            return "WaitCancelled", {} if update is None or update.error is None else {"Error": _error(update.error)}
    return None, None


def _callback(operation: Operation, trigger: Trigger, update: OperationUpdate | None) -> _Built:
    match trigger:
        case Trigger.START:
            details: Json = {"CallbackId": operation.callback_id}
            if update is not None and update.callback_heartbeat_timeout:
                details["HeartbeatTimeout"] = update.callback_heartbeat_timeout
            if update is not None and update.callback_timeout:
                details["Timeout"] = update.callback_timeout
            return "CallbackStarted", details
        case Trigger.CALLBACK_SUCCEEDED:
            return "CallbackSucceeded", {"Result": _payload(operation.result)}
        case Trigger.CALLBACK_FAILED:
            return "CallbackFailed", {"Error": _error(operation.error)}
        case Trigger.CALLBACK_TIMED_OUT:
            return "CallbackTimedOut", {"Error": _error(operation.error)}
    return None, None


def _chained_invoke(operation: Operation, trigger: Trigger, update: OperationUpdate | None) -> _Built:
    match trigger:
        case Trigger.START:
            details: Json = {"FunctionName": update.invoke_function_name if update is not None else ""}
            if update is not None and update.invoke_tenant_id is not None:
                details["TenantId"] = update.invoke_tenant_id
            details["Input"] = _payload(update.payload if update is not None else None)
            return "ChainedInvokeStarted", details
        case Trigger.INVOKE_SUCCEEDED:
            return "ChainedInvokeSucceeded", {"Result": _payload(operation.result)}
        case Trigger.INVOKE_FAILED:
            return "ChainedInvokeFailed", {"Error": _error(operation.error)}
    return None, None


def _execution(operation: Operation, trigger: Trigger, update: OperationUpdate | None) -> _Built:
    return None, None  # the execution's own events come from execution_started / execution_closed


_EVENTS: dict[OperationType, Callable[[Operation, Trigger, OperationUpdate | None], _Built]] = {
    OperationType.STEP: _step,
    OperationType.CONTEXT: _context,
    OperationType.WAIT: _wait,
    OperationType.CALLBACK: _callback,
    OperationType.CHAINED_INVOKE: _chained_invoke,
    OperationType.EXECUTION: _execution,
}


def without_data(event: Json) -> Json:
    """The event as ``IncludeExecutionData=false`` shows it: no input, result or error payloads."""
    stripped: Json = {}
    for key, value in event.items():
        if key.endswith("Details") and isinstance(value, dict):
            stripped[key] = {
                name: ({k: v for k, v in member.items() if k != "Payload"} if isinstance(member, dict) else member)
                for name, member in value.items()
            }
        else:
            stripped[key] = value
    return stripped
