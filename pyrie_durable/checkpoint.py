"""What the durable execution service does to an execution, pure: no clock, no I/O, no timers.

Every function here takes the execution and the time (``now``, epoch seconds) and changes the execution in memory,
raising ``DurableServiceError`` (and changing nothing) when the request is refused. The engine calls them, persists
the result and arms its timers. The rules follow what the SDKs need and what botocore's model and Lambda's
documentation say:

- A checkpoint token belongs to one invocation and one moment: each accepted checkpoint answers with the next token,
  and only the latest token of the invocation currently running is accepted ("Invalid checkpoint token" otherwise,
  as for any execution that has closed).
- A checkpoint's updates are applied all or none, in order; each must be a move the operation table allows.
- Its response carries every operation that changed since the handler last saw the state (its own updates, with
  what the service added, such as a callback's id, and what the service did meanwhile: a wait elapsed, a retry
  came due, a callback answered), and no token when the batch closed the execution.
- The state given to an invocation (and ``GetDurableExecutionState``) lists operations in the order they started,
  without the children of a context that completed without ``ReplayChildren`` ("Completed operations with children
  don't include child operation details since they don't need to be replayed"), paged by size and count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Final

from pyrie_durable import history
from pyrie_durable.codec import render_operation
from pyrie_durable.durable_errors import DurableServiceError, ErrorCode
from pyrie_durable.model import (
    CallbackDeadlines,
    CheckpointReplay,
    DurableFunction,
    ErrorObject,
    Execution,
    Json,
    Operation,
    OperationUpdate,
)
from pyrie_durable.states import (
    TERMINAL_OPERATION_STATUSES,
    ExecutionStatus,
    InvalidOperationTransition,
    OperationAction,
    OperationStatus,
    OperationType,
    Trigger,
    operation_transition,
)
from pyrie_durable.tokens import (
    CallbackRef,
    CheckpointRef,
    decode_checkpoint_token,
    decode_marker,
    encode_callback_id,
    encode_checkpoint_token,
    encode_marker,
)

__all__ = [
    "CALLBACK_HEARTBEAT_ERROR",
    "CALLBACK_TIMEOUT_ERROR",
    "ChainedInvokeRequest",
    "CheckpointResult",
    "answer_callback",
    "apply_checkpoint",
    "begin_invocation",
    "close",
    "complete_due",
    "end_invocation",
    "execution_arn",
    "fail_chained_invoke",
    "has_pending_work",
    "has_unseen_changes",
    "heartbeat_callback",
    "new_execution",
    "next_due",
    "state_page",
    "withdraw_invocation",
]

# Pages of state stay well under the 6 MB invocation payload and response limits.
PAGE_BYTES: Final = 5 * 1024 * 1024
DEFAULT_PAGE_ITEMS: Final = 100
MAX_PAGE_ITEMS: Final = 1000

CALLBACK_TIMEOUT_ERROR: Final = ErrorObject(message="Callback timed out", type="Callback.Timeout")
CALLBACK_HEARTBEAT_ERROR: Final = ErrorObject(message="Callback timed out on heartbeat", type="Callback.Heartbeat")

_INVALID_TOKEN: Final = "Invalid checkpoint token"


def _refuse(message: str) -> DurableServiceError:
    return DurableServiceError(ErrorCode.INVALID_PARAMETER, message)


def execution_arn(function: DurableFunction, name: str, execution_id: str) -> str:
    return f"{function.qualified_arn}/durable-execution/{name}/{execution_id}"


def new_execution(
    function: DurableFunction,
    *,
    name: str,
    execution_id: str,
    input_payload: str,
    now: float,
    trace_id: str | None = None,
    tenant_id: str | None = None,
) -> Execution:
    """A RUNNING execution with its EXECUTION operation started and its ExecutionStarted event."""
    execution = Execution(
        arn=execution_arn(function, name, execution_id),
        execution_id=execution_id,
        name=name,
        function_name=function.name,
        function_arn=function.qualified_arn,
        version=function.version,
        start=now,
        execution_timeout=function.execution_timeout,
        retention_days=function.retention_days,
        trace_id=trace_id,
        tenant_id=tenant_id,
        initial_status=ExecutionStatus.RUNNING,
    )
    operation = Operation(
        id=execution_id,
        type=OperationType.EXECUTION,
        status=OperationStatus.STARTED,
        start=now,
        name=name,
        input_payload=input_payload,
    )
    execution.put(operation)
    history.append(execution, history.execution_started(execution, operation))
    return execution


# --- Invocations and the state they are given ---


def _replayable(execution: Execution) -> list[Operation]:
    """Operations in start order, without the descendants of contexts completed without ReplayChildren."""
    hidden: set[str] = set()
    listed: list[Operation] = []
    for operation in execution.operations.values():
        if operation.parent_id is not None and operation.parent_id in hidden:
            hidden.add(operation.id)
            continue
        listed.append(operation)
        if (
            operation.type is OperationType.CONTEXT
            and operation.status in TERMINAL_OPERATION_STATUSES
            and not operation.replay_children
        ):
            hidden.add(operation.id)
    return listed


def _page(
    operations: list[Operation], start: int, max_items: int, *, millis: bool, may_be_empty: bool = False
) -> tuple[list[Json], int]:
    """Rendered operations from ``start``, at most ``max_items`` and PAGE_BYTES; and where the page ends.

    A page holds at least one operation, however large, unless ``may_be_empty``: the invocation payload then goes
    without operations rather than over its limit, and the SDK reads them with GetDurableExecutionState.
    """
    page: list[Json] = []
    size = 0
    index = start
    while index < len(operations) and len(page) < max_items:
        rendered = render_operation(operations[index], millis=millis)
        weight = len(json.dumps(rendered, separators=(",", ":")))
        if (page or may_be_empty) and size + weight > PAGE_BYTES:
            break
        page.append(rendered)
        size += weight
        index += 1
    return page, index


def _token(execution: Execution) -> str:
    return encode_checkpoint_token(CheckpointRef(execution.arn, execution.invocation_id, execution.token_seq))


def _state_scope(execution: Execution) -> str:
    return f"state.{execution.invocation_id}.{execution.token_seq}"


def begin_invocation(execution: Execution, invocation_id: str) -> Json:
    """Give the next invocation its own checkpoint token and return its payload (the durable invocation input).

    Its ``UpdatedOperationIds`` are what the service moved since the last invocation that answered began.
    """
    execution.invocation_id = invocation_id
    execution.token_seq = 0
    execution.last_checkpoint = None
    execution.invocations += 1
    operations = _replayable(execution)
    page, end = _page(operations, 0, MAX_PAGE_ITEMS, millis=True, may_be_empty=True)
    given = execution.updates_given
    given.extend([operation_id for operation_id in execution.service_updated if operation_id not in given])
    execution.service_updated.clear()
    execution.seen = execution.seq
    return {
        "DurableExecutionArn": execution.arn,
        "CheckpointToken": _token(execution),
        "InitialExecutionState": {
            "Operations": page,
            "NextMarker": encode_marker(_state_scope(execution), end) if end < len(operations) else "",
        },
        "UpdatedOperationIds": list(given),
    }


def end_invocation(execution: Execution, *, answered: bool = False) -> None:
    """The invocation ended (or is given up): its checkpoint token is no longer accepted. Once a handler ``answered``,
    the ``UpdatedOperationIds`` it was given are delivered; after a failure they are given to the next one again."""
    execution.invocation_id = ""
    if answered:
        execution.updates_given.clear()


def withdraw_invocation(execution: Execution, seen: int) -> None:
    """The invocation ``begin_invocation`` gave never ran (it was throttled): it is not counted, and what it would
    have been shown stays unseen (``seen``: as it was before it began)."""
    execution.invocation_id = ""
    execution.invocations -= 1
    execution.seen = seen


def _check_token(execution: Execution, token: str) -> None:
    ref = decode_checkpoint_token(token)
    if (
        ref is None
        or not execution.running
        or not execution.invocation_id
        or ref.arn != execution.arn
        or ref.invocation_id != execution.invocation_id
        or ref.sequence != execution.token_seq
    ):
        raise _refuse(_INVALID_TOKEN)


def state_page(execution: Execution, token: str, marker: str | None, max_items: int | None) -> Json:
    """``GetDurableExecutionState``: a page of the replayable operations, for the invocation holding ``token``."""
    _check_token(execution, token)
    start = 0
    if marker:
        position = decode_marker(marker, _state_scope(execution))
        if position is None:
            raise _refuse("Invalid marker")
        start = position
    limit = DEFAULT_PAGE_ITEMS if not max_items else min(max_items, MAX_PAGE_ITEMS)
    operations = _replayable(execution)
    page, end = _page(operations, start, limit, millis=False)
    response: Json = {"Operations": page}
    if end < len(operations):
        response["NextMarker"] = encode_marker(_state_scope(execution), end)
    return response


def has_unseen_changes(execution: Execution) -> bool:
    """Whether an operation changed after the running (or last) invocation was last shown the state."""
    return execution.seq > execution.seen


_RETRYING: Final = (OperationStatus.PENDING, OperationStatus.READY)


def has_pending_work(execution: Execution) -> bool:
    """Whether something the handler waits for is still open: a wait, a retry, a callback, a chained invoke."""
    for operation in execution.operations.values():
        if operation.type is OperationType.STEP and operation.status in _RETRYING:
            return True
        if (
            operation.type in (OperationType.WAIT, OperationType.CALLBACK, OperationType.CHAINED_INVOKE)
            and operation.status is OperationStatus.STARTED
        ):
            return True
    return False


# --- Checkpoints ---


@dataclass(frozen=True)
class ChainedInvokeRequest:
    """A CHAINED_INVOKE the handler started: the engine runs it and completes the operation."""

    operation_id: str
    function_name: str
    payload: str | None


@dataclass(frozen=True)
class CheckpointResult:
    response: Json  # CheckpointDurableExecutionResponse
    chained_invokes: tuple[ChainedInvokeRequest, ...] = ()


def _check_consistent(existing: Operation, update: OperationUpdate) -> None:
    if update.type is not existing.type:
        raise _refuse("Inconsistent operation type.")
    if update.sub_type is not None and update.sub_type != existing.sub_type:
        raise _refuse("Inconsistent operation subtype.")
    if update.name is not None and update.name != existing.name:
        raise _refuse("Inconsistent operation name.")
    if update.parent_id is not None and update.parent_id != existing.parent_id:
        raise _refuse("Inconsistent parent operation id.")


def _check_payloads(update: OperationUpdate) -> None:
    if update.action is OperationAction.FAIL and update.payload is not None:
        raise _refuse("Cannot provide a Payload for FAIL action.")
    if update.action is OperationAction.SUCCEED and update.error is not None:
        raise _refuse("Cannot provide an Error for SUCCEED action.")
    if update.action is OperationAction.RETRY:
        if not update.step_options:
            raise _refuse("Invalid StepOptions for the given action.")
        if update.error is not None and update.payload is not None:
            raise _refuse("Cannot provide both error and payload to RETRY a STEP.")
    if (
        update.type is OperationType.CHAINED_INVOKE
        and update.action is OperationAction.START
        and update.invoke_function_name is None
    ):
        raise _refuse("Update for CHAINED_INVOKE operation requires ChainedInvokeOptions.")


def _moved(execution: Execution, existing: Operation | None, update: OperationUpdate, now: float) -> Operation:
    """The operation after ``update`` (already checked against the table)."""
    status = operation_transition(update.type, existing.status if existing else None, Trigger.of(update.action))
    base = existing or Operation(
        id=update.id,
        type=update.type,
        status=status,
        start=now,
        parent_id=update.parent_id,
        name=update.name,
        sub_type=update.sub_type,
    )
    closing = status in TERMINAL_OPERATION_STATUSES
    moved = replace(base, status=status, end=now if closing else base.end)
    match update.type, update.action:
        case OperationType.STEP, OperationAction.START:
            return replace(moved, result=None, error=None, next_attempt=None)
        case OperationType.STEP, OperationAction.RETRY:
            return replace(
                moved,
                attempt=base.attempt + 1,
                next_attempt=now + (update.next_attempt_delay or 0),
                result=update.payload,
                error=update.error,
            )
        case OperationType.STEP, _:
            attempt = base.attempt + 1
            return replace(moved, attempt=attempt, next_attempt=None, result=update.payload, error=update.error)
        case OperationType.CONTEXT, OperationAction.SUCCEED | OperationAction.FAIL:
            return replace(moved, result=update.payload, error=update.error, replay_children=update.replay_children)
        case OperationType.WAIT, OperationAction.START:
            return replace(moved, scheduled_end=now + (update.wait_seconds or 1))
        case OperationType.CALLBACK, OperationAction.START:
            return replace(moved, callback_id=encode_callback_id(CallbackRef(execution.arn, update.id)))
    return moved


def _plan(
    execution: Execution, updates: list[OperationUpdate], now: float
) -> tuple[list[tuple[Operation, OperationUpdate]], OperationUpdate | None]:
    """Check every update against the state as the earlier ones leave it; change nothing."""
    closing = [update for update in updates if update.type is OperationType.EXECUTION]
    if len(closing) > 1:
        raise _refuse("Cannot checkpoint multiple EXECUTION updates.")
    if closing and updates[-1].type is not OperationType.EXECUTION:
        raise _refuse("EXECUTION checkpoint must be the last update.")
    overlay: dict[str, Operation] = {}
    last_in_batch: dict[str, OperationUpdate] = {}
    moves: list[tuple[Operation, OperationUpdate]] = []
    for update in updates:
        if update.type is OperationType.EXECUTION:
            if update.action not in (OperationAction.SUCCEED, OperationAction.FAIL):
                raise _refuse("Invalid EXECUTION action.")
            _check_payloads(update)
            continue
        previous = last_in_batch.get(update.id)
        if previous is not None and not (
            previous.type in (OperationType.STEP, OperationType.CONTEXT)
            and previous.action is OperationAction.START
            and update.action is not OperationAction.START
        ):
            raise _refuse("Cannot checkpoint multiple operations with the same ID.")
        last_in_batch[update.id] = update
        existing = overlay.get(update.id) or execution.operations.get(update.id)
        if existing is not None:
            _check_consistent(existing, update)
        if update.parent_id is not None:
            parent = overlay.get(update.parent_id) or execution.operations.get(update.parent_id)
            if parent is None or parent.type is not OperationType.CONTEXT:
                raise _refuse("Invalid parent operation id.")
        _check_payloads(update)
        try:
            moved = _moved(execution, existing, update, now)
        except InvalidOperationTransition as refused:
            raise _refuse(str(refused)) from None
        overlay[update.id] = moved
        moves.append((moved, update))
    return moves, closing[0] if closing else None


def apply_checkpoint(
    execution: Execution,
    token: str,
    updates: list[OperationUpdate],
    client_token: str | None,
    now: float,
) -> CheckpointResult:
    """``CheckpointDurableExecution``."""
    last = execution.last_checkpoint
    if (
        client_token is not None
        and last is not None
        and (last.client_token, last.checkpoint_token)
        == (
            client_token,
            token,
        )
    ):
        return CheckpointResult(last.response)
    _check_token(execution, token)
    moves, closing = _plan(execution, updates, now)
    chained: list[ChainedInvokeRequest] = []
    for operation, update in moves:
        execution.put(operation)
        event = history.operation_event(operation, Trigger.of(update.action), now, update)
        if event is not None:
            history.append(execution, event)
        if operation.type is OperationType.CALLBACK and update.action is OperationAction.START:
            timeout = update.callback_timeout or None
            heartbeat = update.callback_heartbeat_timeout or None
            execution.callbacks[operation.id] = CallbackDeadlines(
                timeout_at=now + timeout if timeout else None,
                heartbeat_seconds=heartbeat,
                heartbeat_at=now + heartbeat if heartbeat else None,
            )
        if operation.type is OperationType.CHAINED_INVOKE and update.action is OperationAction.START:
            chained.append(ChainedInvokeRequest(operation.id, update.invoke_function_name or "", update.payload))
    complete_due(execution, now)
    if closing is not None:
        if closing.action is OperationAction.SUCCEED:
            close(execution, ExecutionStatus.SUCCEEDED, now, result=closing.payload)
        else:
            close(execution, ExecutionStatus.FAILED, now, error=closing.error)
    delta = [
        render_operation(operation)
        for operation in execution.operations.values()
        if execution.touched.get(operation.id, 0) > execution.seen
    ]
    execution.seen = execution.seq
    response: Json = {}
    if closing is None:
        execution.token_seq += 1
        response["CheckpointToken"] = _token(execution)
    response["NewExecutionState"] = {"Operations": delta}
    if client_token is not None and closing is None:
        execution.last_checkpoint = CheckpointReplay(client_token, token, response)
    return CheckpointResult(response, tuple(chained))


# --- What the service does by itself ---


def _service_move(
    execution: Execution,
    operation: Operation,
    trigger: Trigger,
    now: float,
    *,
    result: str | None = None,
    error: ErrorObject | None = None,
) -> Operation:
    """Move an operation by something the service did; it is reported to the next invocation as updated."""
    status = operation_transition(operation.type, operation.status, trigger)
    moved = replace(operation, status=status)
    if trigger is Trigger.RETRY_DUE:
        moved = replace(moved, next_attempt=None)
    if result is not None:
        moved = replace(moved, result=result)
    if error is not None:
        moved = replace(moved, error=error)
    if status in TERMINAL_OPERATION_STATUSES:
        moved = replace(moved, end=now)
    execution.put(moved)
    if operation.id not in execution.service_updated:
        execution.service_updated.append(operation.id)
    event = history.operation_event(moved, trigger, now)
    if event is not None:
        history.append(execution, event)
    return moved


def complete_due(execution: Execution, now: float) -> bool:
    """Elapse the waits, ready the retries and time out the callbacks that are due; whether anything moved."""
    if not execution.running:
        return False
    moved = False
    for operation in list(execution.operations.values()):
        if (
            operation.type is OperationType.WAIT
            and operation.status is OperationStatus.STARTED
            and operation.scheduled_end is not None
            and operation.scheduled_end <= now
        ):
            _service_move(execution, operation, Trigger.WAIT_ELAPSED, now)
            moved = True
        elif (
            operation.type is OperationType.STEP
            and operation.status is OperationStatus.PENDING
            and (operation.next_attempt or 0) <= now
        ):
            _service_move(execution, operation, Trigger.RETRY_DUE, now)
            moved = True
    for operation_id, deadlines in list(execution.callbacks.items()):
        if deadlines.timeout_at is not None and deadlines.timeout_at <= now:
            error = CALLBACK_TIMEOUT_ERROR
        elif deadlines.heartbeat_at is not None and deadlines.heartbeat_at <= now:
            error = CALLBACK_HEARTBEAT_ERROR
        else:
            continue
        del execution.callbacks[operation_id]
        _service_move(execution, execution.operations[operation_id], Trigger.CALLBACK_TIMED_OUT, now, error=error)
        moved = True
    return moved


def next_due(execution: Execution) -> float | None:
    """When the service next has something to do for this execution (the execution timeout included)."""
    if not execution.running:
        return None
    moments = [execution.deadline]
    for operation in execution.operations.values():
        if operation.type is OperationType.WAIT and operation.status is OperationStatus.STARTED:
            moments.append(operation.scheduled_end or operation.start)
        elif operation.type is OperationType.STEP and operation.status is OperationStatus.PENDING:
            moments.append(operation.next_attempt or operation.start)
    for deadlines in execution.callbacks.values():
        moments.extend(moment for moment in (deadlines.timeout_at, deadlines.heartbeat_at) if moment is not None)
    return min(moments)


def _open_callback(execution: Execution, operation_id: str) -> Operation:
    operation = execution.operations.get(operation_id)
    if operation is None or operation.type is not OperationType.CALLBACK:
        raise DurableServiceError(ErrorCode.NOT_FOUND, "Callback not found")
    if not execution.running or operation.status is not OperationStatus.STARTED:
        raise DurableServiceError(
            ErrorCode.CALLBACK_TIMEOUT,
            "The callback ID token has either expired or the callback associated with the token has already been "
            "closed.",
        )
    return operation


def answer_callback(
    execution: Execution,
    operation_id: str,
    now: float,
    *,
    result: str | None = None,
    error: ErrorObject | None = None,
    failed: bool = False,
) -> None:
    """``SendDurableExecutionCallbackSuccess`` (``failed=False``) or ``...Failure``."""
    operation = _open_callback(execution, operation_id)
    execution.callbacks.pop(operation_id, None)
    if failed:
        _service_move(execution, operation, Trigger.CALLBACK_FAILED, now, error=error)
    else:
        _service_move(execution, operation, Trigger.CALLBACK_SUCCEEDED, now, result=result)


def heartbeat_callback(execution: Execution, operation_id: str, now: float) -> None:
    """``SendDurableExecutionCallbackHeartbeat``: the heartbeat timeout starts again."""
    _open_callback(execution, operation_id)
    deadlines = execution.callbacks.get(operation_id)
    if deadlines is not None and deadlines.heartbeat_seconds:
        execution.callbacks[operation_id] = replace(deadlines, heartbeat_at=now + deadlines.heartbeat_seconds)


def fail_chained_invoke(execution: Execution, operation_id: str, error: ErrorObject, now: float) -> None:
    operation = execution.operations.get(operation_id)
    if operation is not None and execution.running and operation.status is OperationStatus.STARTED:
        _service_move(execution, operation, Trigger.INVOKE_FAILED, now, error=error)


_CLOSED_OPERATION_STATUS: Final = {
    ExecutionStatus.SUCCEEDED: OperationStatus.SUCCEEDED,
    ExecutionStatus.FAILED: OperationStatus.FAILED,
    ExecutionStatus.TIMED_OUT: OperationStatus.TIMED_OUT,
    ExecutionStatus.STOPPED: OperationStatus.STOPPED,
}


def close(
    execution: Execution,
    status: ExecutionStatus,
    now: float,
    *,
    result: str | None = None,
    error: ErrorObject | None = None,
) -> None:
    """Close the execution (``InvalidTransition`` if it already is): no token is accepted after this."""
    execution.status_machine.transition(status)
    execution.end = now
    execution.result = result
    execution.error = error
    execution.callbacks.clear()
    execution.invocation_id = ""
    own = execution.operations[execution.execution_id]
    closed = replace(own, status=_CLOSED_OPERATION_STATUS[status], end=now)
    execution.put(closed)
    history.append(execution, history.execution_closed(execution, closed, now))
