"""The durable execution service at work: starts executions, invokes the handler, wakes them when due.

One ``DurableEngine`` runs inside a gevent process (pyrie's supervisor). Everything it does to an execution happens
between two yields of one greenlet, so no locks are needed; nothing it does blocks on a peer: an invocation runs in
its own greenlet through the injected ``Invoker`` and is bounded by ``EngineConfig.invocation_timeout``; timers are
gevent timers (one per execution, armed for the earliest moment something is due); the store's writes are small
and local. The REST layer (``rest.DurableApi``) and the Invoke front end call its public methods.

How an execution is driven (``states.DRIVER_TRANSITIONS``): it is SCHEDULED when started; an invocation is
dispatched (INVOKING) with a fresh checkpoint token; when the handler answers
- SUCCEEDED / FAILED: the execution closes with its result or error;
- PENDING: it is invoked again at once if something changed that the handler has not seen, otherwise it is
  SUSPENDED until a wait elapses, a retry comes due, a callback is answered or times out;
- a function error (the handler raised outside the SDK, the runtime crashed, the function timed out): the
  invocation is retried after a backoff, and after ``max_invocation_attempts`` failures in a row the execution FAILS
  with the last error; a throttled invocation never ran: it is tried again shortly and counts for nothing (no
  history event, no failure, what it was given stays unseen).
The execution timeout closes it TIMED_OUT whatever it is doing; ``stop`` closes it STOPPED.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

import gevent
import gevent.event
from gevent import Greenlet

from pyrie_core.machine import Machine
from pyrie_durable import checkpoint, history
from pyrie_durable.codec import read_error
from pyrie_durable.durable_errors import DurableServiceError, ErrorCode
from pyrie_durable.model import DurableFunction, ErrorObject, Execution, Json, OperationUpdate
from pyrie_durable.states import DriverState, ExecutionStatus, driver_machine
from pyrie_durable.store import MemoryStore, Store
from pyrie_durable.tokens import decode_callback_id

__all__ = [
    "DurableEngine",
    "DurableInvocation",
    "EngineConfig",
    "InvocationOutcome",
    "Invoker",
    "OutcomeKind",
    "parse_output",
]

log = logging.getLogger("pyrie.durable")

_EXECUTION_NAME: Final = re.compile(r"[a-zA-Z0-9-_]{1,64}")
_DAY: Final = 86400.0


@dataclass(frozen=True)
class DurableInvocation:
    """One invocation of a durable function's handler: an Invoke with this payload, RequestResponse."""

    function_name: str
    execution_arn: str
    payload: bytes  # the durable invocation input, JSON
    trace_id: str | None = None
    tenant_id: str | None = None  # the tenant of the Invoke that started the execution


class OutcomeKind:
    RESPONSE = "response"  # the function answered; body is its response payload
    FUNCTION_ERROR = "function_error"  # it failed (error response, crash, timeout...); body is Lambda's error body
    THROTTLED = "throttled"  # no environment could take it now
    SERVICE_ERROR = "service_error"  # anything else that kept it from running


@dataclass(frozen=True)
class InvocationOutcome:
    kind: str  # an OutcomeKind
    body: bytes = b""
    request_id: str = ""
    error_type: str | None = None  # the function error's type, or the service error's code


class Invoker(Protocol):
    def invoke(self, invocation: DurableInvocation) -> InvocationOutcome:
        """Run the function once with ``invocation.payload`` and return how it ended.

        Called in a greenlet of its own, one at a time per execution; it may yield (wait for an environment, for
        the runtime's answer) but must end within the function's own timeout (answering a FUNCTION_ERROR such as
        ``Sandbox.Timedout``). It is killed with ``GreenletExit`` only when the engine closes.
        """
        ...


@dataclass(frozen=True)
class EngineConfig:
    invocation_timeout: float = 960.0  # the engine's own bound on one Invoker call (Lambda's 900 s maximum + margin)
    max_invocation_attempts: int = 5  # failed invocations in a row before the execution FAILS
    retry_backoff: float = 1.0  # first delay before an invocation is retried; doubles each time
    max_retry_backoff: float = 30.0
    throttle_backoff: float = 1.0


@dataclass(frozen=True)
class _Output:
    status: str
    result: str | None
    error: ErrorObject | None


def parse_output(body: bytes) -> _Output:
    """The handler's answer (``DurableExecutionInvocationOutput``); ValueError if it is not one."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise ValueError("The durable function's response is not JSON.") from None
    if not isinstance(value, dict) or value.get("Status") not in ("SUCCEEDED", "FAILED", "PENDING"):
        raise ValueError(
            "The durable function's response is not a durable execution output (Status SUCCEEDED, FAILED or "
            "PENDING): is the handler wrapped by the durable execution SDK?"
        )
    result = value.get("Result")
    if result is not None and not isinstance(result, str):
        raise ValueError("The durable function's response has a Result that is not a string.")
    error = read_error(value["Error"]) if isinstance(value.get("Error"), dict) else None
    return _Output(value["Status"], result, error)


def _function_error(outcome: InvocationOutcome) -> ErrorObject:
    """Lambda's function error body (``{"errorType", "errorMessage", "stackTrace"}``) as an ErrorObject."""
    try:
        value = json.loads(outcome.body)
    except (ValueError, RecursionError):
        value = None
    if isinstance(value, dict):
        stack = value.get("stackTrace")
        return ErrorObject(
            message=str(value.get("errorMessage", "")),
            type=str(value.get("errorType") or outcome.error_type or "Runtime.Unknown"),
            stack_trace=tuple(str(line) for line in stack) if isinstance(stack, list) else None,
        )
    return ErrorObject(
        message=outcome.body.decode("utf-8", "replace") or None, type=outcome.error_type or "Runtime.Unknown"
    )


class DurableEngine:
    def __init__(
        self,
        invoker: Invoker,
        store: Store | None = None,
        *,
        config: EngineConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._invoker = invoker
        self._store: Store = store if store is not None else MemoryStore()
        self._config = config or EngineConfig()
        self._clock = clock
        self._functions: dict[str, DurableFunction] = {}
        self._executions: dict[str, Execution] = {}
        self._names: dict[tuple[str, str], str] = {}  # (function, execution name) -> ARN
        self._drivers: dict[str, Machine[DriverState]] = {}
        self._timers: dict[str, Greenlet] = {}
        self._retry_at: dict[str, float] = {}
        self._invocations: dict[str, Greenlet] = {}
        self._closed: dict[str, gevent.event.Event] = {}
        self._stopping = False

    # --- Set-up ---

    def register(self, function: DurableFunction) -> None:
        self._functions[function.name] = function

    @property
    def functions(self) -> dict[str, DurableFunction]:
        return dict(self._functions)

    def recover(self) -> int:
        """Load the store's executions and resume the running ones; how many were loaded."""
        now = self._clock()
        loaded = self._store.load()
        for execution in loaded:
            if not execution.running and execution.end is not None and now >= self._expiry(execution):
                self._store.delete(execution.arn)
                continue
            self._adopt(execution)
            if not execution.running:
                self._drivers[execution.arn] = driver_machine(execution.arn, DriverState.CLOSED)
                self._closed[execution.arn].set()
                self._arm_expiry(execution)
                continue
            interrupted = bool(execution.invocation_id)  # an invocation was running when pyrie went away
            retrying = execution.failed_invocations > 0  # the last one failed: its retry was waiting for a backoff
            checkpoint.end_invocation(execution)
            self._drivers[execution.arn] = driver_machine(execution.arn, DriverState.SUSPENDED)
            if (
                interrupted
                or retrying
                or checkpoint.has_unseen_changes(execution)
                or not checkpoint.has_pending_work(execution)
            ):
                self._schedule(execution)
            self._wake(execution.arn)
        return len(loaded)

    def close(self) -> None:
        """Stop driving: timers cancelled, invocations in flight killed, store closed. Executions stay as saved."""
        self._stopping = True
        for greenlet in [*self._timers.values(), *self._invocations.values()]:
            greenlet.kill(block=False)
        gevent.joinall(list(self._invocations.values()), timeout=5)
        self._timers.clear()
        self._store.close()

    # --- Starting and awaiting executions (the Invoke front end) ---

    def start(
        self,
        function_name: str,
        payload: bytes,
        *,
        name: str | None = None,
        trace_id: str | None = None,
        tenant_id: str | None = None,
    ) -> tuple[Execution, bool]:
        """Start an execution of ``function_name`` with ``payload``; the execution, and whether it is new. Every
        invocation of it runs as ``tenant_id``, the tenant of the Invoke that started it.

        A ``name`` already used for this function with the same payload (and tenant) returns that execution
        (Lambda's idempotent start); with another payload, or by another tenant, it is refused with
        ``DurableExecutionAlreadyStartedException``.
        """
        function = self._functions.get(function_name)
        if function is None:
            raise DurableServiceError(ErrorCode.NOT_FOUND, f"Function not found: {function_name}")
        if name is not None and not _EXECUTION_NAME.fullmatch(name):
            raise DurableServiceError(
                ErrorCode.INVALID_PARAMETER,
                f"1 validation error detected: Value '{name}' at 'durableExecutionName' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+",
            )
        text = payload.decode("utf-8", "replace")
        if not text.strip():
            text = "{}"
        if name is not None and (arn := self._names.get((function.name, name))) is not None:
            existing = self._executions[arn]
            if existing.input_payload == text and existing.tenant_id == tenant_id:
                return existing, False
            raise DurableServiceError(
                ErrorCode.ALREADY_STARTED,
                f"Durable execution with name {name} already exists for function {function.name} with a different "
                + ("payload." if existing.tenant_id == tenant_id else "tenant."),
            )
        execution_id = str(uuid.uuid4())
        execution = checkpoint.new_execution(
            function,
            name=name or execution_id,
            execution_id=execution_id,
            input_payload=text,
            now=self._clock(),
            trace_id=trace_id,
            tenant_id=tenant_id,
        )
        self._adopt(execution)
        self._drivers[execution.arn] = driver_machine(execution.arn, DriverState.SUSPENDED)
        self._save(execution)
        self._schedule(execution)
        self._arm(execution.arn)
        return execution, True

    def wait(self, arn: str, timeout: float | None) -> Execution | None:
        """Wait (cooperatively) for the execution to close; it, or None if still running after ``timeout``."""
        event = self._closed.get(arn)
        if event is None:
            raise DurableServiceError(ErrorCode.NOT_FOUND, "Durable execution not found")
        if not event.wait(timeout):
            return None
        return self._executions.get(arn)

    # --- Reading ---

    def execution(self, arn: str) -> Execution:
        execution = self._executions.get(arn)
        if execution is None or self._expired(execution):
            raise DurableServiceError(ErrorCode.NOT_FOUND, f"Durable execution not found: {arn}")
        return execution

    def executions_of(self, function_name: str) -> list[Execution]:
        return [
            execution
            for execution in self._executions.values()
            if execution.function_name == function_name and not self._expired(execution)
        ]

    # --- The APIs the SDK calls ---

    def checkpoint(self, arn: str, token: str, updates: list[OperationUpdate], client_token: str | None) -> Json:
        execution = self._executions.get(arn)
        if execution is None:
            # CheckpointDurableExecution has no ResourceNotFoundException: a token for nothing is an invalid token.
            raise DurableServiceError(ErrorCode.INVALID_PARAMETER, "Invalid checkpoint token")
        result = checkpoint.apply_checkpoint(execution, token, updates, client_token, self._clock())
        for request in result.chained_invokes:
            # Running another function from a durable one is not wired into pyrie's pool yet: say so at once
            # rather than leave the operation open forever.
            checkpoint.fail_chained_invoke(
                execution,
                request.operation_id,
                ErrorObject(
                    message=f"pyrie does not run chained invokes yet (function {request.function_name})",
                    type="ChainedInvoke.NotSupported",
                ),
                self._clock(),
            )
        self._save(execution)
        if not execution.running:
            self._closed_now(execution)
        else:
            self._arm(arn)
        return result.response

    def state(self, arn: str, token: str, marker: str | None, max_items: int | None) -> Json:
        execution = self._executions.get(arn)
        if execution is None:
            raise DurableServiceError(ErrorCode.INVALID_PARAMETER, "Invalid checkpoint token")
        return checkpoint.state_page(execution, token, marker, max_items)

    def _callback_target(self, callback_id: str) -> tuple[Execution, str]:
        ref = decode_callback_id(callback_id)
        if ref is None:
            raise DurableServiceError(ErrorCode.INVALID_PARAMETER, "Invalid callback id")
        execution = self._executions.get(ref.arn)
        if execution is None or self._expired(execution):
            raise DurableServiceError(ErrorCode.NOT_FOUND, "Callback not found")
        return execution, ref.operation_id

    def callback_succeeded(self, callback_id: str, result: bytes) -> None:
        execution, operation_id = self._callback_target(callback_id)
        try:
            text = result.decode("utf-8")
        except UnicodeDecodeError:
            raise DurableServiceError(ErrorCode.INVALID_PARAMETER, "The callback result is not UTF-8.") from None
        checkpoint.answer_callback(execution, operation_id, self._clock(), result=text)
        self._changed(execution)

    def callback_failed(self, callback_id: str, error: ErrorObject | None) -> None:
        execution, operation_id = self._callback_target(callback_id)
        checkpoint.answer_callback(execution, operation_id, self._clock(), error=error or ErrorObject(), failed=True)
        self._changed(execution)

    def callback_heartbeat(self, callback_id: str) -> None:
        execution, operation_id = self._callback_target(callback_id)
        checkpoint.heartbeat_callback(execution, operation_id, self._clock())
        self._save(execution)
        self._arm(execution.arn)

    def stop(self, arn: str, error: ErrorObject | None) -> float:
        """Stop a running execution; when it stopped. Stopping a stopped execution answers the same moment."""
        execution = self.execution(arn)
        if execution.status is ExecutionStatus.STOPPED and execution.end is not None:
            return execution.end
        if not execution.running:
            raise DurableServiceError(
                ErrorCode.INVALID_PARAMETER,
                f"Durable execution {arn} cannot be stopped: it is already {execution.status.value}.",
            )
        now = self._clock()
        checkpoint.close(
            execution, ExecutionStatus.STOPPED, now, error=error or ErrorObject(message="Execution stopped")
        )
        self._save(execution)
        self._closed_now(execution)
        return now

    def delete(self, arn: str) -> float:
        """``DeleteDurableExecution``: only a closed execution; when the deletion was asked."""
        execution = self.execution(arn)
        if execution.running:
            raise DurableServiceError(
                ErrorCode.CONFLICT, f"Durable execution {arn} is RUNNING: only a closed execution can be deleted."
            )
        self._forget(execution)
        return self._clock()

    # --- Driving ---

    def _adopt(self, execution: Execution) -> None:
        self._executions[execution.arn] = execution
        self._names[(execution.function_name, execution.name)] = execution.arn
        self._closed.setdefault(execution.arn, gevent.event.Event())

    def _save(self, execution: Execution) -> None:
        self._store.save(execution)

    def _changed(self, execution: Execution) -> None:
        """Something the service did moved an operation: persist, and invoke a suspended handler."""
        self._save(execution)
        driver = self._drivers[execution.arn]
        if driver.state is DriverState.SUSPENDED and checkpoint.has_unseen_changes(execution):
            self._schedule(execution)
        self._arm(execution.arn)

    def _schedule(self, execution: Execution) -> None:
        if self._stopping:
            return
        self._drivers[execution.arn].transition(DriverState.SCHEDULED)
        self._retry_at.pop(execution.arn, None)
        self._invocations[execution.arn] = gevent.spawn(self._invoke, execution.arn)

    def _invoke(self, arn: str) -> None:
        execution = self._executions.get(arn)
        driver = self._drivers.get(arn)
        try:
            if execution is None or driver is None or driver.state is not DriverState.SCHEDULED:
                return  # closed (stopped, timed out), perhaps deleted, before it could start
            driver.transition(DriverState.INVOKING)
            invocation_id = uuid.uuid4().hex
            seen = execution.seen
            payload = checkpoint.begin_invocation(execution, invocation_id)
            self._save(execution)
            started = self._clock()
            outcome = self._call_invoker(execution, payload)
        finally:
            if self._invocations.get(arn) is gevent.getcurrent():
                del self._invocations[arn]
        if self._executions.get(arn) is not execution:
            return  # stopped and deleted while it ran: nothing of it is kept, nothing is written back
        if outcome.kind == OutcomeKind.THROTTLED:
            self._throttled(execution, seen)
        else:
            self._finish(execution, invocation_id, outcome, started)

    def _call_invoker(self, execution: Execution, payload: Json) -> InvocationOutcome:
        try:
            with gevent.Timeout(self._config.invocation_timeout):
                return self._invoker.invoke(
                    DurableInvocation(
                        function_name=execution.function_name,
                        execution_arn=execution.arn,
                        payload=json.dumps(payload, separators=(",", ":")).encode(),
                        trace_id=execution.trace_id,
                        tenant_id=execution.tenant_id,
                    )
                )
        except gevent.Timeout:
            return InvocationOutcome(
                OutcomeKind.FUNCTION_ERROR,
                json.dumps({"errorType": "Sandbox.Timedout", "errorMessage": "The invocation did not end"}).encode(),
                error_type="Sandbox.Timedout",
            )
        except Exception as error:  # the invoker's own failure must not stop the execution's driver
            log.exception("durable invocation of %s failed", execution.arn)
            return InvocationOutcome(OutcomeKind.SERVICE_ERROR, str(error).encode(), error_type="ServiceException")

    def _throttled(self, execution: Execution, seen: int) -> None:
        """No environment took the invocation: the handler never ran, so nothing is recorded; it is tried again."""
        checkpoint.withdraw_invocation(execution, seen)
        if execution.running:
            self._drivers[execution.arn].transition(DriverState.SUSPENDED)
            self._retry_at[execution.arn] = self._clock() + self._config.throttle_backoff
        self._save(execution)
        if execution.running:
            self._arm(execution.arn)

    def _finish(self, execution: Execution, invocation_id: str, outcome: InvocationOutcome, started: float) -> None:
        now = self._clock()
        if execution.invocation_id == invocation_id:
            checkpoint.end_invocation(execution, answered=outcome.kind == OutcomeKind.RESPONSE)
        driver = self._drivers[execution.arn]
        output: _Output | None = None
        failure: ErrorObject | None = None
        if outcome.kind == OutcomeKind.RESPONSE:
            try:
                output = parse_output(outcome.body)
            except ValueError as invalid:
                failure = ErrorObject(message=str(invalid), type="InvalidParameterValueException")
        else:
            failure = _function_error(outcome)
        history.append(
            execution,
            history.invocation_completed(
                execution, started, now, outcome.request_id or invocation_id, failure if output is None else None
            ),
        )
        if driver.state is DriverState.CLOSED or not execution.running:
            # Stopped or timed out while it ran: what it answered no longer matters.
            self._save(execution)
            return
        if output is not None:
            if output.status == "SUCCEEDED":
                checkpoint.close(execution, ExecutionStatus.SUCCEEDED, now, result=output.result)
            elif output.status == "FAILED":
                checkpoint.close(execution, ExecutionStatus.FAILED, now, error=output.error or ErrorObject())
            elif checkpoint.has_unseen_changes(execution):
                self._schedule(execution)
            elif checkpoint.has_pending_work(execution):
                driver.transition(DriverState.SUSPENDED)
            else:
                failure = ErrorObject(
                    message="Cannot return PENDING status with no pending operations.",
                    type="InvalidParameterValueException",
                )
            if failure is None:
                execution.failed_invocations = 0
        elif failure is not None and outcome.kind == OutcomeKind.RESPONSE:
            # The handler ran but its answer is not a durable output: running it again would answer the same.
            checkpoint.close(execution, ExecutionStatus.FAILED, now, error=failure)
            failure = None
        if failure is not None and execution.running:
            execution.failed_invocations += 1
            if execution.failed_invocations >= self._config.max_invocation_attempts:
                checkpoint.close(execution, ExecutionStatus.FAILED, now, error=failure)
            else:
                driver.transition(DriverState.SUSPENDED)
                backoff = self._config.retry_backoff * 2 ** (execution.failed_invocations - 1)
                self._retry_at[execution.arn] = now + min(backoff, self._config.max_retry_backoff)
        self._save(execution)
        if not execution.running:
            self._closed_now(execution)
        else:
            self._arm(execution.arn)

    def _closed_now(self, execution: Execution) -> None:
        driver = self._drivers[execution.arn]
        if driver.state is not DriverState.CLOSED:
            driver.transition(DriverState.CLOSED)
        self._retry_at.pop(execution.arn, None)
        timer = self._timers.pop(execution.arn, None)
        if timer is not None:
            timer.kill(block=False)
        self._closed[execution.arn].set()
        self._arm_expiry(execution)

    def _arm(self, arn: str) -> None:
        """Arm the execution's one timer for the earliest moment something is due."""
        execution = self._executions[arn]
        if not execution.running:
            return
        due = checkpoint.next_due(execution)
        retry_at = self._retry_at.get(arn)
        if retry_at is not None:
            due = retry_at if due is None else min(due, retry_at)
        previous = self._timers.pop(arn, None)
        if previous is not None:
            previous.kill(block=False)
        if due is None or self._stopping:
            return
        self._timers[arn] = gevent.spawn_later(max(0.0, due - self._clock()), self._wake, arn)

    def _wake(self, arn: str) -> None:
        execution = self._executions.get(arn)
        if execution is None or not execution.running or self._stopping:
            return
        self._timers.pop(arn, None)
        now = self._clock()
        if now >= execution.deadline:
            checkpoint.close(
                execution,
                ExecutionStatus.TIMED_OUT,
                now,
                error=ErrorObject(
                    message=f"Execution timed out after {execution.execution_timeout} seconds.",
                    type="Execution.TimedOut",
                ),
            )
            self._save(execution)
            self._closed_now(execution)
            return
        moved = checkpoint.complete_due(execution, now)
        retry_at = self._retry_at.get(arn)
        retry_due = retry_at is not None and retry_at <= now
        if moved:
            self._save(execution)
        driver = self._drivers[arn]
        if driver.state is DriverState.SUSPENDED and (retry_due or checkpoint.has_unseen_changes(execution)):
            self._schedule(execution)
        self._arm(arn)

    # --- Retention ---

    def _expiry(self, execution: Execution) -> float:
        return (execution.end or execution.start) + execution.retention_days * _DAY

    def _expired(self, execution: Execution) -> bool:
        return not execution.running and self._clock() >= self._expiry(execution)

    def _arm_expiry(self, execution: Execution) -> None:
        if self._stopping:
            return
        delay = max(0.0, self._expiry(execution) - self._clock())
        self._timers[execution.arn] = gevent.spawn_later(delay, self._expire, execution.arn)

    def _expire(self, arn: str) -> None:
        execution = self._executions.get(arn)
        if execution is not None and self._expired(execution):
            self._forget(execution)

    def _forget(self, execution: Execution) -> None:
        self._executions.pop(execution.arn, None)
        if self._names.get((execution.function_name, execution.name)) == execution.arn:
            del self._names[(execution.function_name, execution.name)]
        self._drivers.pop(execution.arn, None)
        self._closed.pop(execution.arn, None)
        timer = self._timers.pop(execution.arn, None)
        if timer is not None:
            timer.kill(block=False)
        self._store.delete(execution.arn)
