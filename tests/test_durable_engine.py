"""``DurableEngine`` driving executions, with scripted invocations instead of a real handler: retries, the PENDING
rule, throttling, stops and timeouts during an invocation, callbacks answered meanwhile, restarts, retention."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import pytest

from pyrie_durable import (
    DurableEngine,
    DurableFunction,
    DurableInvocation,
    DurableServiceError,
    EngineConfig,
    ErrorCode,
    Execution,
    InvocationOutcome,
    OutcomeKind,
    SqliteStore,
)
from pyrie_durable.codec import parse_updates
from pyrie_durable.model import ErrorObject
from pyrie_durable.states import ExecutionStatus

FUNCTION = DurableFunction("fn", "arn:aws:lambda:us-east-1:012345678912:function:fn", execution_timeout=30)
FAST = EngineConfig(retry_backoff=0.01, max_retry_backoff=0.05, throttle_backoff=0.01, max_invocation_attempts=3)

Step = Callable[[DurableEngine, dict[str, Any]], InvocationOutcome]


def respond(status: str, **members: Any) -> InvocationOutcome:
    return InvocationOutcome(OutcomeKind.RESPONSE, json.dumps({"Status": status, **members}).encode(), "req")


def crash(message: str = "boom") -> InvocationOutcome:
    body = json.dumps({"errorType": "Runtime.ExitError", "errorMessage": message}).encode()
    return InvocationOutcome(OutcomeKind.FUNCTION_ERROR, body, "req", "Runtime.ExitError")


def checkpoint(engine: DurableEngine, payload: dict[str, Any], *updates: dict[str, Any]) -> dict[str, Any]:
    arn, token = payload["DurableExecutionArn"], payload["CheckpointToken"]
    return engine.checkpoint(arn, token, parse_updates(list(updates)), None)


class Scripted:
    """An Invoker playing one scripted step per invocation (the last one repeats)."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.payloads: list[dict[str, Any]] = []
        self.tenants: list[str | None] = []
        self.engine: DurableEngine | None = None

    def invoke(self, invocation: DurableInvocation) -> InvocationOutcome:
        payload = json.loads(invocation.payload)
        self.payloads.append(payload)
        self.tenants.append(invocation.tenant_id)
        step = self.steps[min(len(self.payloads), len(self.steps)) - 1]
        assert self.engine is not None
        return step(self.engine, payload)


@pytest.fixture
def engines() -> Iterator[Callable[..., DurableEngine]]:
    made: list[DurableEngine] = []

    def make(invoker: Scripted, **kwargs: Any) -> DurableEngine:
        engine = DurableEngine(invoker, config=kwargs.pop("config", FAST), **kwargs)
        engine.register(FUNCTION)
        invoker.engine = engine
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.close()


def run(engine: DurableEngine, payload: bytes = b"{}", timeout: float = 5) -> Execution:
    execution, _ = engine.start("fn", payload)
    done = engine.wait(execution.arn, timeout)
    assert done is not None, f"still {execution.status}"
    return done


def test_a_failed_invocation_is_retried_and_the_count_starts_again(engines: Callable[..., DurableEngine]) -> None:
    invoker = Scripted(lambda e, p: crash(), lambda e, p: crash(), lambda e, p: respond("SUCCEEDED", Result='"ok"'))
    done = run(engines(invoker))
    assert done.status is ExecutionStatus.SUCCEEDED and done.result == '"ok"'
    assert len(invoker.payloads) == 3
    completed = [event for event in done.events if event["EventType"] == "InvocationCompleted"]
    assert [event["InvocationCompletedDetails"].get("Error") for event in completed] == [
        {"Payload": {"ErrorMessage": "boom", "ErrorType": "Runtime.ExitError"}},
        {"Payload": {"ErrorMessage": "boom", "ErrorType": "Runtime.ExitError"}},
        None,
    ]
    assert done.failed_invocations == 0


def test_invocations_failing_in_a_row_fail_the_execution(engines: Callable[..., DurableEngine]) -> None:
    invoker = Scripted(lambda e, p: crash("still broken"))
    done = run(engines(invoker))
    assert done.status is ExecutionStatus.FAILED
    assert done.error == ErrorObject(message="still broken", type="Runtime.ExitError")
    assert len(invoker.payloads) == FAST.max_invocation_attempts


def test_pending_with_nothing_pending_is_refused(engines: Callable[..., DurableEngine]) -> None:
    invoker = Scripted(lambda e, p: respond("PENDING"))
    done = run(engines(invoker))
    assert done.status is ExecutionStatus.FAILED
    assert done.error is not None and done.error.message == "Cannot return PENDING status with no pending operations."


THROTTLED = InvocationOutcome(OutcomeKind.THROTTLED, b"", "", "TooManyRequestsException")


def test_a_throttled_invocation_is_retried_without_counting(engines: Callable[..., DurableEngine]) -> None:
    invoker = Scripted(*[lambda e, p: THROTTLED] * 6, lambda e, p: respond("SUCCEEDED"))
    done = run(engines(invoker))
    assert done.status is ExecutionStatus.SUCCEEDED and len(invoker.payloads) == 7
    # The handler ran once: one invocation in the count and in the history.
    assert done.invocations == 1
    assert [event["EventType"] for event in done.events].count("InvocationCompleted") == 1


def _start_callbacks(engine: DurableEngine, payload: dict[str, Any], *operation_ids: str) -> list[str]:
    """Start callbacks in one checkpoint; their ids."""
    updates = [{"Id": operation_id, "Type": "CALLBACK", "Action": "START"} for operation_id in operation_ids]
    operations = checkpoint(engine, payload, *updates)["NewExecutionState"]["Operations"]
    return [str(op["CallbackDetails"]["CallbackId"]) for op in operations if op["Type"] == "CALLBACK"]


def test_updated_operation_ids_are_given_again_until_an_invocation_answers(
    engines: Callable[..., DurableEngine],
) -> None:
    def first(engine: DurableEngine, payload: dict[str, Any]) -> InvocationOutcome:
        (callback_id,) = _start_callbacks(engine, payload, "cb")
        engine.callback_succeeded(callback_id, b'"yes"')
        return respond("PENDING")

    def fourth(engine: DurableEngine, payload: dict[str, Any]) -> InvocationOutcome:
        (callback_id,) = _start_callbacks(engine, payload, "cb2")
        engine.callback_succeeded(callback_id, b'"again"')
        return respond("PENDING")

    invoker = Scripted(first, lambda e, p: THROTTLED, lambda e, p: crash(), fourth, lambda e, p: respond("SUCCEEDED"))
    done = run(engines(invoker))
    assert done.status is ExecutionStatus.SUCCEEDED
    # Neither the throttled attempt nor the one that crashed used up "cb"; the fourth answered, so the fifth is given
    # only what moved after the fourth began.
    assert [payload["UpdatedOperationIds"] for payload in invoker.payloads] == [[], ["cb"], ["cb"], ["cb"], ["cb2"]]
    assert done.invocations == 4
    assert [event["EventType"] for event in done.events].count("InvocationCompleted") == 4


def _woken_then_restarted(
    engines: Callable[..., DurableEngine],
    tmp_path: Path,
    second: Callable[..., InvocationOutcome],
    config: EngineConfig,
) -> list[dict[str, Any]]:
    """An execution suspended on two callbacks, one answered: the invocation that wakes gets ``second`` (tried again
    only in a minute, by ``config``), and pyrie stops before that; a restarted engine then runs it to success.
    Returns the payloads the restarted engine's invocations were given."""

    def first(engine: DurableEngine, payload: dict[str, Any]) -> InvocationOutcome:
        callbacks.extend(_start_callbacks(engine, payload, "cb", "open"))
        return respond("PENDING")

    callbacks: list[str] = []
    store_path = tmp_path / "store.sqlite"
    engine = engines(Scripted(first, second), store=SqliteStore(store_path), config=config)
    execution, _ = engine.start("fn", b"{}")
    gevent.sleep(0.05)
    engine.callback_succeeded(callbacks[0], b'"yes"')
    gevent.sleep(0.05)  # the invocation this wakes gets ``second``, and is tried again only in a minute
    engine.close()  # pyrie stops before that; the other callback is still open

    invoker = Scripted(lambda e, p: respond("SUCCEEDED"))
    restarted = engines(invoker, store=SqliteStore(store_path))
    restarted.recover()
    done = restarted.wait(execution.arn, 5)
    assert done is not None and done.status is ExecutionStatus.SUCCEEDED
    return invoker.payloads


def test_what_a_throttled_invocation_was_given_is_still_unseen_after_a_restart(
    engines: Callable[..., DurableEngine], tmp_path: Path
) -> None:
    payloads = _woken_then_restarted(engines, tmp_path, lambda e, p: THROTTLED, EngineConfig(throttle_backoff=60))
    assert [payload["UpdatedOperationIds"] for payload in payloads] == [["cb"]]


def test_a_retry_after_a_failed_invocation_is_not_lost_in_a_restart(
    engines: Callable[..., DurableEngine], tmp_path: Path
) -> None:
    slow_retry = EngineConfig(retry_backoff=60, max_retry_backoff=60)
    payloads = _woken_then_restarted(engines, tmp_path, lambda e, p: crash(), slow_retry)
    assert [payload["UpdatedOperationIds"] for payload in payloads] == [["cb"]]


def test_an_answer_that_is_not_a_durable_output_fails_at_once(engines: Callable[..., DurableEngine]) -> None:
    invoker = Scripted(lambda e, p: InvocationOutcome(OutcomeKind.RESPONSE, b'{"statusCode": 200}', "req"))
    done = run(engines(invoker))
    assert done.status is ExecutionStatus.FAILED and len(invoker.payloads) == 1
    assert done.error is not None and done.error.type == "InvalidParameterValueException"


def _blocked(release: gevent.event.Event, outcome: InvocationOutcome) -> Step:
    def step(engine: DurableEngine, payload: dict[str, Any]) -> InvocationOutcome:
        release.wait(5)
        return outcome

    return step


def test_a_stop_during_an_invocation_wins_over_its_answer(engines: Callable[..., DurableEngine]) -> None:
    release = gevent.event.Event()
    engine = engines(Scripted(_blocked(release, respond("SUCCEEDED", Result="1"))))
    execution, _ = engine.start("fn", b"{}")
    gevent.sleep(0.05)
    stopped_at = engine.stop(execution.arn, None)
    assert engine.wait(execution.arn, 1) is execution and execution.status is ExecutionStatus.STOPPED
    assert engine.stop(execution.arn, None) == stopped_at  # stopping it again answers the same moment
    release.set()
    gevent.sleep(0.05)
    assert execution.status is ExecutionStatus.STOPPED and execution.result is None
    assert execution.error == ErrorObject(message="Execution stopped")
    assert execution.events[-1]["EventType"] == "InvocationCompleted"


def test_an_execution_stopped_and_deleted_during_an_invocation_stays_gone(
    engines: Callable[..., DurableEngine], tmp_path: Path
) -> None:
    release = gevent.event.Event()
    running: list[gevent.Greenlet] = []

    def blocked(engine: DurableEngine, payload: dict[str, Any]) -> InvocationOutcome:
        running.append(gevent.getcurrent())
        release.wait(5)
        return respond("SUCCEEDED", Result="1")

    store = SqliteStore(tmp_path / "store.sqlite")
    engine = engines(Scripted(blocked), store=store)
    execution, _ = engine.start("fn", b"{}")
    gevent.sleep(0.05)
    engine.stop(execution.arn, None)
    engine.delete(execution.arn)
    release.set()
    (invocation,) = running
    invocation.join(1)
    assert invocation.successful(), invocation.exception
    assert store.load() == []
    with pytest.raises(DurableServiceError):
        engine.execution(execution.arn)


def test_the_execution_timeout_closes_it_during_an_invocation(engines: Callable[..., DurableEngine]) -> None:
    release = gevent.event.Event()
    short = DurableFunction("short", FUNCTION.arn.replace(":fn", ":short"), execution_timeout=1)
    engine = engines(Scripted(_blocked(release, respond("SUCCEEDED"))))
    engine.register(short)
    execution, _ = engine.start("short", b"{}")
    assert engine.wait(execution.arn, 3) is execution
    assert execution.status is ExecutionStatus.TIMED_OUT
    with pytest.raises(DurableServiceError) as refused:
        engine.stop(execution.arn, None)
    assert refused.value.code is ErrorCode.INVALID_PARAMETER
    release.set()


def test_a_callback_answered_while_the_handler_runs_invokes_it_again(engines: Callable[..., DurableEngine]) -> None:
    def first(engine: DurableEngine, payload: dict[str, Any]) -> InvocationOutcome:
        response = checkpoint(engine, payload, {"Id": "cb", "Type": "CALLBACK", "Action": "START"})
        callback_id = response["NewExecutionState"]["Operations"][0]["CallbackDetails"]["CallbackId"]
        engine.callback_succeeded(callback_id, b'"yes"')  # answered before the handler suspends
        return respond("PENDING")

    def second(engine: DurableEngine, payload: dict[str, Any]) -> InvocationOutcome:
        (callback,) = [op for op in payload["InitialExecutionState"]["Operations"] if op["Type"] == "CALLBACK"]
        assert payload["UpdatedOperationIds"] == ["cb"]
        return respond("SUCCEEDED", Result=callback["CallbackDetails"]["Result"])

    done = run(engines(Scripted(first, second)))
    assert done.status is ExecutionStatus.SUCCEEDED and done.result == '"yes"'


def test_a_restart_invokes_again_an_execution_whose_invocation_was_lost(
    engines: Callable[..., DurableEngine], tmp_path: Path
) -> None:
    store_path = tmp_path / "store.sqlite"
    release = gevent.event.Event()
    engine = engines(Scripted(_blocked(release, respond("SUCCEEDED"))), store=SqliteStore(store_path))
    execution, _ = engine.start("fn", b'{"n": 1}', name="lost")
    gevent.sleep(0.05)
    engine.close()  # pyrie dies while the invocation runs

    invoker = Scripted(lambda e, p: respond("SUCCEEDED", Result='"second life"'))
    restarted = engines(invoker, store=SqliteStore(store_path))
    assert restarted.recover() == 1
    done = restarted.wait(execution.arn, 5)
    assert done is not None and done.status is ExecutionStatus.SUCCEEDED and done.result == '"second life"'
    assert done.invocations == 2
    # The name still belongs to it after the restart.
    assert restarted.start("fn", b'{"n": 1}', name="lost") == (done, False)
    release.set()


def test_every_invocation_runs_as_the_tenant_that_started_it_even_after_a_restart(
    engines: Callable[..., DurableEngine], tmp_path: Path
) -> None:
    store_path = tmp_path / "store.sqlite"
    release = gevent.event.Event()
    first = Scripted(lambda e, p: crash(), _blocked(release, respond("SUCCEEDED")))
    engine = engines(first, store=SqliteStore(store_path))
    execution, _ = engine.start("fn", b"{}", name="blue-order", tenant_id="blue")
    gevent.sleep(0.1)  # the first invocation crashed; the retry runs, and pyrie dies meanwhile
    engine.close()
    assert first.tenants == ["blue", "blue"]

    invoker = Scripted(lambda e, p: respond("SUCCEEDED"))
    restarted = engines(invoker, store=SqliteStore(store_path))
    restarted.recover()
    done = restarted.wait(execution.arn, 5)
    assert done is not None and done.status is ExecutionStatus.SUCCEEDED and done.tenant_id == "blue"
    assert invoker.tenants == ["blue"]
    # Its name is the tenant's: another tenant (or none) is refused as another payload is.
    assert restarted.start("fn", b"{}", name="blue-order", tenant_id="blue") == (done, False)
    for other in ("green", None):
        with pytest.raises(DurableServiceError) as refused:
            restarted.start("fn", b"{}", name="blue-order", tenant_id=other)
        assert refused.value.code is ErrorCode.ALREADY_STARTED and "different tenant" in refused.value.message
    release.set()


def test_closed_executions_are_kept_for_their_retention_then_dropped(
    engines: Callable[..., DurableEngine], tmp_path: Path
) -> None:
    store_path = tmp_path / "store.sqlite"
    engine = engines(Scripted(lambda e, p: respond("SUCCEEDED")), store=SqliteStore(store_path))
    done = run(engine)
    with pytest.raises(DurableServiceError) as running_conflict:
        engine.delete("arn:nothing")
    assert running_conflict.value.code is ErrorCode.NOT_FOUND
    engine.close()

    later = done.end + 14 * 86400 + 1  # type: ignore[operator]
    restarted = engines(Scripted(), store=SqliteStore(store_path), clock=lambda: later)
    assert restarted.recover() == 1
    with pytest.raises(DurableServiceError) as gone:
        restarted.execution(done.arn)
    assert gone.value.code is ErrorCode.NOT_FOUND
    restarted.close()
    assert SqliteStore(store_path).load() == []


def test_only_a_closed_execution_can_be_deleted(engines: Callable[..., DurableEngine]) -> None:
    release = gevent.event.Event()
    engine = engines(Scripted(_blocked(release, respond("SUCCEEDED"))))
    execution, _ = engine.start("fn", b"{}")
    with pytest.raises(DurableServiceError) as conflict:
        engine.delete(execution.arn)
    assert conflict.value.code is ErrorCode.CONFLICT and conflict.value.status == 409
    release.set()
    assert engine.wait(execution.arn, 2) is execution
    engine.delete(execution.arn)
    with pytest.raises(DurableServiceError):
        engine.execution(execution.arn)
