"""Every lifecycle of the durable execution service, each as one explicit table.

Three tables:

``EXECUTION_TRANSITIONS``: an execution is RUNNING until it closes, once, as SUCCEEDED, FAILED, TIMED_OUT or
STOPPED (the API's ``ExecutionStatus``; DELETING, PAUSING and PAUSED are not modelled).

``DRIVER_TRANSITIONS``: what the engine is doing about one running execution.

    SCHEDULED -> INVOKING    an invocation of the handler is dispatched
    INVOKING  -> SUSPENDED   it answered PENDING with nothing new to see, or it failed and waits for its retry
    INVOKING  -> SCHEDULED   it answered PENDING but something changed meanwhile that it has not seen
    SUSPENDED -> SCHEDULED   a wait elapsed, a retry came due, a callback was answered or timed out, a backoff ended
    any       -> CLOSED      the execution closed (its result, a stop, the execution timeout)

``OPERATION_TRANSITIONS``: the status of one operation, keyed by (type, current status or None for an operation not
yet known, trigger). A trigger is an action the handler checkpoints (START, SUCCEED, FAIL, RETRY, CANCEL) or
something the service does (a wait elapsing, a retry coming due, a callback answered or timed out). The table is
what the service accepts; ``operation_transition`` is the one function that reads it.
"""

from __future__ import annotations

import enum
from typing import Final

from pyrie_core.machine import Machine

__all__ = [
    "DRIVER_TRANSITIONS",
    "EXECUTION_TRANSITIONS",
    "OPERATION_TRANSITIONS",
    "TERMINAL_OPERATION_STATUSES",
    "DriverState",
    "ExecutionStatus",
    "InvalidOperationTransition",
    "OperationAction",
    "OperationStatus",
    "OperationType",
    "Trigger",
    "driver_machine",
    "execution_machine",
    "operation_transition",
]


class ExecutionStatus(enum.StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    STOPPED = "STOPPED"


EXECUTION_TRANSITIONS: Final = {
    ExecutionStatus.RUNNING: frozenset(
        {ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.STOPPED}
    ),
    ExecutionStatus.SUCCEEDED: frozenset(),
    ExecutionStatus.FAILED: frozenset(),
    ExecutionStatus.TIMED_OUT: frozenset(),
    ExecutionStatus.STOPPED: frozenset(),
}


def execution_machine(arn: str, status: ExecutionStatus = ExecutionStatus.RUNNING) -> Machine[ExecutionStatus]:
    return Machine(f"durable execution {arn}", EXECUTION_TRANSITIONS, status)


class DriverState(enum.Enum):
    SCHEDULED = "scheduled"
    INVOKING = "invoking"
    SUSPENDED = "suspended"
    CLOSED = "closed"


DRIVER_TRANSITIONS: Final = {
    DriverState.SCHEDULED: frozenset({DriverState.INVOKING, DriverState.CLOSED}),
    DriverState.INVOKING: frozenset({DriverState.SUSPENDED, DriverState.SCHEDULED, DriverState.CLOSED}),
    DriverState.SUSPENDED: frozenset({DriverState.SCHEDULED, DriverState.CLOSED}),
    DriverState.CLOSED: frozenset(),
}


def driver_machine(arn: str, initial: DriverState) -> Machine[DriverState]:
    return Machine(f"driver of {arn}", DRIVER_TRANSITIONS, initial)


class OperationType(enum.StrEnum):
    EXECUTION = "EXECUTION"
    CONTEXT = "CONTEXT"
    STEP = "STEP"
    WAIT = "WAIT"
    CALLBACK = "CALLBACK"
    CHAINED_INVOKE = "CHAINED_INVOKE"


class OperationAction(enum.StrEnum):
    START = "START"
    SUCCEED = "SUCCEED"
    FAIL = "FAIL"
    RETRY = "RETRY"
    CANCEL = "CANCEL"


class OperationStatus(enum.StrEnum):
    STARTED = "STARTED"
    PENDING = "PENDING"
    READY = "READY"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"
    STOPPED = "STOPPED"


TERMINAL_OPERATION_STATUSES: Final = frozenset(
    {
        OperationStatus.SUCCEEDED,
        OperationStatus.FAILED,
        OperationStatus.CANCELLED,
        OperationStatus.TIMED_OUT,
        OperationStatus.STOPPED,
    }
)


class Trigger(enum.Enum):
    # Checkpointed by the handler: the values are the API's OperationAction.
    START = "START"
    SUCCEED = "SUCCEED"
    FAIL = "FAIL"
    RETRY = "RETRY"
    CANCEL = "CANCEL"
    # Done by the service.
    WAIT_ELAPSED = "wait elapsed"
    RETRY_DUE = "retry due"
    CALLBACK_SUCCEEDED = "callback succeeded"
    CALLBACK_FAILED = "callback failed"
    CALLBACK_TIMED_OUT = "callback timed out"
    INVOKE_SUCCEEDED = "chained invoke succeeded"
    INVOKE_FAILED = "chained invoke failed"

    @classmethod
    def of(cls, action: OperationAction) -> Trigger:
        return cls(action.value)


_T = OperationType
_S = OperationStatus
_G = Trigger
_NEW = None  # an operation the service does not know yet


def _rows(
    kind: OperationType, sources: tuple[OperationStatus | None, ...], trigger: Trigger, target: OperationStatus
) -> dict[tuple[OperationType, OperationStatus | None, Trigger], OperationStatus]:
    return {(kind, source, trigger): target for source in sources}


OPERATION_TRANSITIONS: Final[dict[tuple[OperationType, OperationStatus | None, Trigger], OperationStatus]] = {
    # A step starts, or starts again once its retry is due (READY); it may be checkpointed done without a START
    # (the SDK sends START asynchronously, or not at all, for at-least-once steps).
    **_rows(_T.STEP, (_NEW, _S.READY), _G.START, _S.STARTED),
    **_rows(_T.STEP, (_NEW, _S.STARTED, _S.READY), _G.SUCCEED, _S.SUCCEEDED),
    **_rows(_T.STEP, (_NEW, _S.STARTED, _S.READY), _G.FAIL, _S.FAILED),
    **_rows(_T.STEP, (_NEW, _S.STARTED, _S.READY), _G.RETRY, _S.PENDING),
    **_rows(_T.STEP, (_S.PENDING,), _G.RETRY_DUE, _S.READY),
    **_rows(_T.CONTEXT, (_NEW,), _G.START, _S.STARTED),
    **_rows(_T.CONTEXT, (_NEW, _S.STARTED), _G.SUCCEED, _S.SUCCEEDED),
    **_rows(_T.CONTEXT, (_NEW, _S.STARTED), _G.FAIL, _S.FAILED),
    **_rows(_T.WAIT, (_NEW,), _G.START, _S.STARTED),
    **_rows(_T.WAIT, (_S.STARTED,), _G.CANCEL, _S.CANCELLED),
    **_rows(_T.WAIT, (_S.STARTED,), _G.WAIT_ELAPSED, _S.SUCCEEDED),
    **_rows(_T.CALLBACK, (_NEW,), _G.START, _S.STARTED),
    **_rows(_T.CALLBACK, (_S.STARTED,), _G.CALLBACK_SUCCEEDED, _S.SUCCEEDED),
    **_rows(_T.CALLBACK, (_S.STARTED,), _G.CALLBACK_FAILED, _S.FAILED),
    **_rows(_T.CALLBACK, (_S.STARTED,), _G.CALLBACK_TIMED_OUT, _S.TIMED_OUT),
    **_rows(_T.CHAINED_INVOKE, (_NEW,), _G.START, _S.STARTED),
    **_rows(_T.CHAINED_INVOKE, (_S.STARTED,), _G.INVOKE_SUCCEEDED, _S.SUCCEEDED),
    **_rows(_T.CHAINED_INVOKE, (_S.STARTED,), _G.INVOKE_FAILED, _S.FAILED),
}


class InvalidOperationTransition(Exception):
    def __init__(self, kind: OperationType, current: OperationStatus | None, trigger: Trigger) -> None:
        where = "a new operation" if current is None else f"an operation in status {current.value}"
        super().__init__(f"Invalid {trigger.value} for {kind.value}: not allowed on {where}.")


def operation_transition(kind: OperationType, current: OperationStatus | None, trigger: Trigger) -> OperationStatus:
    """The status ``trigger`` moves an operation of ``kind`` to; ``InvalidOperationTransition`` if not allowed."""
    target = OPERATION_TRANSITIONS.get((kind, current, trigger))
    if target is None:
        raise InvalidOperationTransition(kind, current, trigger)
    return target
