"""The durable service's lifecycles are tables: what they allow, and that everything else is refused."""

from __future__ import annotations

import pytest

from pyrie_core.machine import InvalidTransition
from pyrie_durable.states import (
    DRIVER_TRANSITIONS,
    OPERATION_TRANSITIONS,
    TERMINAL_OPERATION_STATUSES,
    DriverState,
    ExecutionStatus,
    InvalidOperationTransition,
    OperationAction,
    OperationStatus,
    OperationType,
    Trigger,
    driver_machine,
    execution_machine,
    operation_transition,
)


def test_an_execution_closes_once() -> None:
    machine = execution_machine("arn")
    assert machine.transition(ExecutionStatus.SUCCEEDED) is ExecutionStatus.RUNNING
    with pytest.raises(InvalidTransition, match="from SUCCEEDED to FAILED failed for durable execution arn"):
        machine.transition(ExecutionStatus.FAILED)
    assert machine.state is ExecutionStatus.SUCCEEDED


def test_a_closed_driver_goes_nowhere() -> None:
    assert DRIVER_TRANSITIONS[DriverState.CLOSED] == frozenset()
    machine = driver_machine("arn", DriverState.SUSPENDED)
    with pytest.raises(InvalidTransition):
        machine.transition(DriverState.INVOKING)  # only a scheduled invocation is dispatched
    assert machine.state is DriverState.SUSPENDED


def test_terminal_operations_never_move() -> None:
    for kind, source, _ in OPERATION_TRANSITIONS:
        assert source not in TERMINAL_OPERATION_STATUSES, (kind, source)


# What the handler may checkpoint, per type (CheckpointDurableExecution accepts no other combination).
HANDLER_ACTIONS = {
    OperationType.STEP: {OperationAction.START, OperationAction.SUCCEED, OperationAction.FAIL, OperationAction.RETRY},
    OperationType.CONTEXT: {OperationAction.START, OperationAction.SUCCEED, OperationAction.FAIL},
    OperationType.WAIT: {OperationAction.START, OperationAction.CANCEL},
    OperationType.CALLBACK: {OperationAction.START},
    OperationType.CHAINED_INVOKE: {OperationAction.START},
    OperationType.EXECUTION: set(),  # closes the execution; never an operation move
}


@pytest.mark.parametrize("kind", list(OperationType))
def test_the_handler_moves_each_type_only_by_its_actions(kind: OperationType) -> None:
    for action in OperationAction:
        for source in [None, *OperationStatus]:
            allowed = (kind, source, Trigger.of(action)) in OPERATION_TRANSITIONS
            if action not in HANDLER_ACTIONS[kind]:
                assert not allowed, (kind, source, action)
    for action in HANDLER_ACTIONS[kind]:
        assert any((kind, source, Trigger.of(action)) in OPERATION_TRANSITIONS for source in [None, *OperationStatus])


def test_refused_moves_say_what_was_refused() -> None:
    with pytest.raises(InvalidOperationTransition, match="Invalid START for WAIT: not allowed on an operation in"):
        operation_transition(OperationType.WAIT, OperationStatus.STARTED, Trigger.START)
    assert operation_transition(OperationType.STEP, OperationStatus.READY, Trigger.START) is OperationStatus.STARTED
    assert operation_transition(OperationType.STEP, OperationStatus.PENDING, Trigger.RETRY_DUE) is OperationStatus.READY
