"""Wire shapes of the durable APIs, pure: JSON values in, model objects out, and back.

Inputs are checked against the constraints of botocore's Lambda model (``service-2.json``: required members, enums,
lengths, patterns, ranges), so a client that does not validate (curl, a hand-written client) gets the refusal the
service gives. Outputs have exactly the members and types of the model's shapes: REST bodies carry timestamps as
epoch seconds (rest-json's default), the invocation payload as epoch milliseconds (what both SDKs parse there).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from pyrie_durable.durable_errors import DurableServiceError, ErrorCode
from pyrie_durable.model import (
    CallbackDeadlines,
    CheckpointReplay,
    ErrorObject,
    Execution,
    Json,
    Operation,
    OperationUpdate,
)
from pyrie_durable.states import ExecutionStatus, OperationAction, OperationStatus, OperationType

__all__ = [
    "MAX_PAYLOAD",
    "epoch_millis",
    "epoch_seconds",
    "execution_from_record",
    "execution_record",
    "operation_from_record",
    "operation_record",
    "parse_error_object",
    "parse_updates",
    "read_error",
    "render_error",
    "render_operation",
    "validation_error",
]

# Constraints from the model.
MAX_PAYLOAD: Final = 6291456  # OperationPayload, InputPayload, OutputPayload
MAX_SECONDS: Final = 31622400  # WaitOptions.WaitSeconds, StepOptions.NextAttemptDelaySeconds, ExecutionTimeout
MAX_CALLBACK_SECONDS: Final = 99999999  # CallbackOptions.*
_OPERATION_ID: Final = re.compile(r"[a-zA-Z0-9-_]+")
_OPERATION_NAME: Final = re.compile(r"[\x20-\x7E]+")
_SUB_TYPE: Final = _OPERATION_ID
_CLIENT_TOKEN: Final = re.compile(r"[\x21-\x7E]+")


def epoch_seconds(moment: float) -> float:
    """A timestamp in a REST body: seconds since the epoch, to the millisecond."""
    return round(moment, 3)


def epoch_millis(moment: float) -> int:
    """A timestamp in the invocation payload: milliseconds since the epoch."""
    return round(moment * 1000)


def validation_error(path: str, value: object, constraint: str) -> DurableServiceError:
    shown = value if isinstance(value, (str, int, float, bool)) or value is None else type(value).__name__
    return DurableServiceError(
        ErrorCode.INVALID_PARAMETER,
        f"1 validation error detected: Value '{shown}' at '{path}' failed to satisfy constraint: {constraint}",
    )


def _string(
    value: object,
    path: str,
    *,
    min_len: int = 0,
    max_len: int | None = None,
    pattern: re.Pattern[str] | None = None,
) -> str:
    if not isinstance(value, str):
        raise validation_error(path, value, "Member must be a string")
    if len(value) < min_len:
        raise validation_error(path, value, f"Member must have length greater than or equal to {min_len}")
    if max_len is not None and len(value) > max_len:
        raise validation_error(path, value, f"Member must have length less than or equal to {max_len}")
    if pattern is not None and not pattern.fullmatch(value):
        raise validation_error(path, value, f"Member must satisfy regular expression pattern: {pattern.pattern}")
    return value


def _optional_string(
    value: object,
    path: str,
    *,
    min_len: int = 0,
    max_len: int | None = None,
    pattern: re.Pattern[str] | None = None,
) -> str | None:
    if value is None:
        return None
    return _string(value, path, min_len=min_len, max_len=max_len, pattern=pattern)


def _integer(value: object, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise validation_error(path, value, "Member must be an integer")
    if value < low:
        raise validation_error(path, value, f"Member must have value greater than or equal to {low}")
    if value > high:
        raise validation_error(path, value, f"Member must have value less than or equal to {high}")
    return value


def _structure(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise validation_error(path, value, "Member must be a structure")
    return value


def _enum(value: object, path: str, kind: type[OperationType] | type[OperationAction]) -> Any:
    allowed = [member.value for member in kind]
    if not isinstance(value, str) or value not in allowed:
        raise validation_error(path, value, f"Member must satisfy enum value set: [{', '.join(allowed)}]")
    return kind(value)


def read_error(fields: Mapping[str, Any]) -> ErrorObject:
    """An ``ErrorObject`` from its members as ``render_error`` writes them, unchecked: a member of another type is
    taken as absent (a stack trace's lines as text)."""
    stack = fields.get("StackTrace")
    message, kind, data = (fields.get(member) for member in ("ErrorMessage", "ErrorType", "ErrorData"))
    return ErrorObject(
        message=message if isinstance(message, str) else None,
        type=kind if isinstance(kind, str) else None,
        data=data if isinstance(data, str) else None,
        stack_trace=tuple(str(line) for line in stack) if isinstance(stack, list) else None,
    )


def parse_error_object(value: object, path: str) -> ErrorObject | None:
    """An ``ErrorObject`` member, or None when absent; checked."""
    if value is None:
        return None
    fields = _structure(value, path)
    stack = fields.get("StackTrace")
    if stack is not None and (not isinstance(stack, list) or not all(isinstance(line, str) for line in stack)):
        raise validation_error(f"{path}.stackTrace", stack, "Member must be a list of strings")
    for member in ("ErrorMessage", "ErrorType", "ErrorData"):
        _optional_string(fields.get(member), f"{path}.{member[0].lower()}{member[1:]}")
    return read_error(fields)


def render_error(error: ErrorObject) -> Json:
    rendered: Json = {}
    if error.message is not None:
        rendered["ErrorMessage"] = error.message
    if error.type is not None:
        rendered["ErrorType"] = error.type
    if error.data is not None:
        rendered["ErrorData"] = error.data
    if error.stack_trace is not None:
        rendered["StackTrace"] = list(error.stack_trace)
    return rendered


def _parse_update(value: object, path: str) -> OperationUpdate:
    fields = _structure(value, path)
    for required in ("Id", "Type", "Action"):
        if fields.get(required) is None:
            raise validation_error(f"{path}.{required[0].lower()}{required[1:]}", None, "Member must not be null")
    kind: OperationType = _enum(fields["Type"], f"{path}.type", OperationType)
    action: OperationAction = _enum(fields["Action"], f"{path}.action", OperationAction)
    step_options = fields.get("StepOptions")
    next_attempt_delay = None
    if step_options is not None:
        raw_delay = _structure(step_options, f"{path}.stepOptions").get("NextAttemptDelaySeconds")
        if raw_delay is not None:
            next_attempt_delay = _integer(raw_delay, f"{path}.stepOptions.nextAttemptDelaySeconds", 1, MAX_SECONDS)
    wait_seconds = None
    if (wait_options := fields.get("WaitOptions")) is not None:
        raw_wait = _structure(wait_options, f"{path}.waitOptions").get("WaitSeconds")
        if raw_wait is not None:
            wait_seconds = _integer(raw_wait, f"{path}.waitOptions.waitSeconds", 1, MAX_SECONDS)
    callback_timeout = callback_heartbeat = None
    if (callback_options := fields.get("CallbackOptions")) is not None:
        options = _structure(callback_options, f"{path}.callbackOptions")
        if (raw := options.get("TimeoutSeconds")) is not None:
            callback_timeout = _integer(raw, f"{path}.callbackOptions.timeoutSeconds", 0, MAX_CALLBACK_SECONDS)
        if (raw := options.get("HeartbeatTimeoutSeconds")) is not None:
            callback_heartbeat = _integer(
                raw, f"{path}.callbackOptions.heartbeatTimeoutSeconds", 0, MAX_CALLBACK_SECONDS
            )
    replay_children = None
    if (context_options := fields.get("ContextOptions")) is not None:
        raw_replay = _structure(context_options, f"{path}.contextOptions").get("ReplayChildren")
        if raw_replay is not None and not isinstance(raw_replay, bool):
            raise validation_error(f"{path}.contextOptions.replayChildren", raw_replay, "Member must be a boolean")
        replay_children = raw_replay
    invoke_function = invoke_tenant = None
    if (invoke_options := fields.get("ChainedInvokeOptions")) is not None:
        options = _structure(invoke_options, f"{path}.chainedInvokeOptions")
        invoke_function = _string(
            options.get("FunctionName"), f"{path}.chainedInvokeOptions.functionName", min_len=1, max_len=256
        )
        invoke_tenant = _optional_string(
            options.get("TenantId"), f"{path}.chainedInvokeOptions.tenantId", min_len=1, max_len=256
        )
    return OperationUpdate(
        id=_string(fields["Id"], f"{path}.id", min_len=1, max_len=64, pattern=_OPERATION_ID),
        type=kind,
        action=action,
        parent_id=_optional_string(
            fields.get("ParentId"), f"{path}.parentId", min_len=1, max_len=64, pattern=_OPERATION_ID
        ),
        name=_optional_string(fields.get("Name"), f"{path}.name", min_len=1, max_len=256, pattern=_OPERATION_NAME),
        sub_type=_optional_string(fields.get("SubType"), f"{path}.subType", min_len=1, max_len=32, pattern=_SUB_TYPE),
        payload=_optional_string(fields.get("Payload"), f"{path}.payload", max_len=MAX_PAYLOAD),
        error=parse_error_object(fields.get("Error"), f"{path}.error"),
        replay_children=replay_children,
        step_options=step_options is not None,
        next_attempt_delay=next_attempt_delay,
        wait_seconds=wait_seconds,
        callback_timeout=callback_timeout,
        callback_heartbeat_timeout=callback_heartbeat,
        invoke_function_name=invoke_function,
        invoke_tenant_id=invoke_tenant,
    )


def parse_updates(value: object) -> list[OperationUpdate]:
    """``CheckpointDurableExecutionRequest.Updates`` (absent: no updates)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise validation_error("updates", value, "Member must be a list")
    return [_parse_update(item, f"updates.{index + 1}.member") for index, item in enumerate(value)]


def parse_client_token(value: object) -> str | None:
    return _optional_string(value, "clientToken", min_len=1, max_len=64, pattern=_CLIENT_TOKEN)


def render_operation(operation: Operation, *, millis: bool = False) -> Json:
    """An ``Operation``: REST bodies take ``millis=False``, the invocation payload ``millis=True``."""
    stamp: Any = epoch_millis if millis else epoch_seconds
    rendered: Json = {"Id": operation.id}
    if operation.parent_id is not None:
        rendered["ParentId"] = operation.parent_id
    if operation.name is not None:
        rendered["Name"] = operation.name
    rendered["Type"] = operation.type.value
    if operation.sub_type is not None:
        rendered["SubType"] = operation.sub_type
    rendered["StartTimestamp"] = stamp(operation.start)
    if operation.end is not None:
        rendered["EndTimestamp"] = stamp(operation.end)
    rendered["Status"] = operation.status.value
    outcome: Json = {}
    if operation.result is not None:
        outcome["Result"] = operation.result
    if operation.error is not None:
        outcome["Error"] = render_error(operation.error)
    match operation.type:
        case OperationType.EXECUTION:
            execution_details: Json = {}
            if operation.input_payload is not None:
                execution_details["InputPayload"] = operation.input_payload
            rendered["ExecutionDetails"] = execution_details
        case OperationType.CONTEXT:
            context_details: Json = {}
            if operation.replay_children is not None:
                context_details["ReplayChildren"] = operation.replay_children
            context_details.update(outcome)
            if context_details:
                rendered["ContextDetails"] = context_details
        case OperationType.STEP:
            step_details: Json = {"Attempt": operation.attempt}
            if operation.next_attempt is not None:
                step_details["NextAttemptTimestamp"] = stamp(operation.next_attempt)
            step_details.update(outcome)
            rendered["StepDetails"] = step_details
        case OperationType.WAIT:
            wait_details: Json = {}
            if operation.scheduled_end is not None:
                wait_details["ScheduledEndTimestamp"] = stamp(operation.scheduled_end)
            rendered["WaitDetails"] = wait_details
        case OperationType.CALLBACK:
            callback_details: Json = {}
            if operation.callback_id is not None:
                callback_details["CallbackId"] = operation.callback_id
            callback_details.update(outcome)
            rendered["CallbackDetails"] = callback_details
        case OperationType.CHAINED_INVOKE:
            rendered["ChainedInvokeDetails"] = outcome
    return rendered


# --- Records for the store: every field, timestamps as floats, nothing lost. ---


def _error_record(error: ErrorObject | None) -> Json | None:
    return None if error is None else render_error(error)


def _error_from_record(value: Any) -> ErrorObject | None:
    return None if value is None else read_error(value)


def operation_record(operation: Operation) -> Json:
    return {
        "id": operation.id,
        "type": operation.type.value,
        "status": operation.status.value,
        "start": operation.start,
        "end": operation.end,
        "parent_id": operation.parent_id,
        "name": operation.name,
        "sub_type": operation.sub_type,
        "input_payload": operation.input_payload,
        "replay_children": operation.replay_children,
        "result": operation.result,
        "error": _error_record(operation.error),
        "attempt": operation.attempt,
        "next_attempt": operation.next_attempt,
        "scheduled_end": operation.scheduled_end,
        "callback_id": operation.callback_id,
    }


def operation_from_record(record: Json) -> Operation:
    return Operation(
        id=record["id"],
        type=OperationType(record["type"]),
        status=OperationStatus(record["status"]),
        start=record["start"],
        end=record["end"],
        parent_id=record["parent_id"],
        name=record["name"],
        sub_type=record["sub_type"],
        input_payload=record["input_payload"],
        replay_children=record["replay_children"],
        result=record["result"],
        error=_error_from_record(record["error"]),
        attempt=record["attempt"],
        next_attempt=record["next_attempt"],
        scheduled_end=record["scheduled_end"],
        callback_id=record["callback_id"],
    )


def execution_record(execution: Execution) -> Json:
    """An execution without its operations and events (the store keeps those row by row), so without its input
    payload either (its EXECUTION operation holds it): small, whatever the payloads."""
    last = execution.last_checkpoint
    return {
        "arn": execution.arn,
        "execution_id": execution.execution_id,
        "name": execution.name,
        "function_name": execution.function_name,
        "function_arn": execution.function_arn,
        "version": execution.version,
        "start": execution.start,
        "execution_timeout": execution.execution_timeout,
        "retention_days": execution.retention_days,
        "trace_id": execution.trace_id,
        "tenant_id": execution.tenant_id,
        "status": execution.status.value,
        "end": execution.end,
        "result": execution.result,
        "error": _error_record(execution.error),
        "touched": execution.touched,
        "seq": execution.seq,
        "seen": execution.seen,
        "invocation_id": execution.invocation_id,
        "token_seq": execution.token_seq,
        "service_updated": execution.service_updated,
        "updates_given": execution.updates_given,
        "callbacks": {
            op_id: [deadlines.timeout_at, deadlines.heartbeat_seconds, deadlines.heartbeat_at]
            for op_id, deadlines in execution.callbacks.items()
        },
        "last_checkpoint": None
        if last is None
        else {"client_token": last.client_token, "checkpoint_token": last.checkpoint_token, "response": last.response},
        "failed_invocations": execution.failed_invocations,
        "invocations": execution.invocations,
    }


def execution_from_record(record: Json, operations: list[Operation], events: list[Json]) -> Execution:
    last = record["last_checkpoint"]
    execution = Execution(
        arn=record["arn"],
        execution_id=record["execution_id"],
        name=record["name"],
        function_name=record["function_name"],
        function_arn=record["function_arn"],
        version=record["version"],
        start=record["start"],
        execution_timeout=record["execution_timeout"],
        retention_days=record["retention_days"],
        trace_id=record["trace_id"],
        tenant_id=record.get("tenant_id"),  # not in the records of stores written before tenants were kept
        end=record["end"],
        result=record["result"],
        error=_error_from_record(record["error"]),
        operations={operation.id: operation for operation in operations},
        touched=dict(record["touched"]),
        seq=record["seq"],
        seen=record["seen"],
        invocation_id=record["invocation_id"],
        token_seq=record["token_seq"],
        service_updated=list(record["service_updated"]),
        updates_given=list(record["updates_given"]),
        callbacks={
            op_id: CallbackDeadlines(timeout_at=item[0], heartbeat_seconds=item[1], heartbeat_at=item[2])
            for op_id, item in record["callbacks"].items()
        },
        events=events,
        last_checkpoint=None
        if last is None
        else CheckpointReplay(last["client_token"], last["checkpoint_token"], last["response"]),
        failed_invocations=record["failed_invocations"],
        invocations=record["invocations"],
        initial_status=ExecutionStatus(record["status"]),
    )
    execution.saved_events = len(events)
    return execution
