"""The data of the durable execution service: operation updates, operations, executions, functions.

Plain data with no I/O. Timestamps are seconds since the epoch (floats, UTC) everywhere inside pyrie; ``codec``
renders them as the API wants them (seconds in REST bodies, milliseconds in the invocation payload).
"""

from __future__ import annotations

from dataclasses import InitVar, dataclass, field
from typing import Any, Final

from pyrie_core.machine import Machine
from pyrie_durable.states import ExecutionStatus, OperationAction, OperationStatus, OperationType, execution_machine

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "CallbackDeadlines",
    "CheckpointReplay",
    "DurableFunction",
    "ErrorObject",
    "Execution",
    "Json",
    "Operation",
    "OperationUpdate",
]

Json = dict[str, Any]

# DurableConfig.RetentionPeriodInDays when the function does not set it (SAM and CDK document 14).
DEFAULT_RETENTION_DAYS: Final = 14


@dataclass(frozen=True)
class ErrorObject:
    """The API's ``ErrorObject``; every member optional."""

    message: str | None = None
    type: str | None = None
    data: str | None = None
    stack_trace: tuple[str, ...] | None = None


@dataclass(frozen=True)
class DurableFunction:
    """A function pyrie runs as durable: its identity and its ``DurableConfig``."""

    name: str
    arn: str  # unqualified: arn:aws:lambda:<region>:<account>:function:<name>
    execution_timeout: int  # DurableConfig.ExecutionTimeout, seconds
    retention_days: int = DEFAULT_RETENTION_DAYS
    version: str = "$LATEST"

    @property
    def qualified_arn(self) -> str:
        return f"{self.arn}:{self.version}"


@dataclass(frozen=True)
class OperationUpdate:
    """One member of ``CheckpointDurableExecution``'s ``Updates``; the option structures flattened."""

    id: str
    type: OperationType
    action: OperationAction
    parent_id: str | None = None
    name: str | None = None
    sub_type: str | None = None
    payload: str | None = None
    error: ErrorObject | None = None
    replay_children: bool | None = None  # ContextOptions.ReplayChildren
    step_options: bool = False  # whether StepOptions was given
    next_attempt_delay: int | None = None  # StepOptions.NextAttemptDelaySeconds
    wait_seconds: int | None = None  # WaitOptions.WaitSeconds
    callback_timeout: int | None = None  # CallbackOptions.TimeoutSeconds (0: none)
    callback_heartbeat_timeout: int | None = None  # CallbackOptions.HeartbeatTimeoutSeconds (0: none)
    invoke_function_name: str | None = None  # ChainedInvokeOptions.FunctionName
    invoke_tenant_id: str | None = None  # ChainedInvokeOptions.TenantId


@dataclass(frozen=True)
class Operation:
    """The API's ``Operation``; the members of its per-type details kept flat (``codec`` groups them)."""

    id: str
    type: OperationType
    status: OperationStatus
    start: float
    end: float | None = None
    parent_id: str | None = None
    name: str | None = None
    sub_type: str | None = None
    input_payload: str | None = None  # EXECUTION: ExecutionDetails.InputPayload
    replay_children: bool | None = None  # CONTEXT
    result: str | None = None  # CONTEXT, STEP, CALLBACK, CHAINED_INVOKE
    error: ErrorObject | None = None  # CONTEXT, STEP, CALLBACK, CHAINED_INVOKE
    attempt: int = 0  # STEP: attempts made so far
    next_attempt: float | None = None  # STEP: when a retry is due
    scheduled_end: float | None = None  # WAIT
    callback_id: str | None = None  # CALLBACK


@dataclass(frozen=True)
class CallbackDeadlines:
    """When an open callback times out: overall, and without a heartbeat."""

    timeout_at: float | None
    heartbeat_seconds: int | None
    heartbeat_at: float | None


@dataclass(frozen=True)
class CheckpointReplay:
    """The last accepted checkpoint, answered again to a retry with the same client token and checkpoint token."""

    client_token: str
    checkpoint_token: str
    response: Json


@dataclass(eq=False)
class Execution:
    """One durable execution: what the API shows of it, and the bookkeeping the service keeps to drive it."""

    arn: str
    execution_id: str  # the last segment of the ARN, also the Id of its EXECUTION operation
    name: str
    function_name: str
    function_arn: str  # qualified with the version
    version: str
    start: float
    execution_timeout: int
    retention_days: int
    trace_id: str | None = None
    tenant_id: str | None = None  # the tenant of the Invoke that started it: every invocation runs as that tenant
    end: float | None = None
    result: str | None = None
    error: ErrorObject | None = None
    operations: dict[str, Operation] = field(default_factory=dict)  # in the order they started
    # Change tracking: every change to an operation takes the next `seq`; `seen` is the highest the running
    # handler has been shown (in its input or a checkpoint response).
    touched: dict[str, int] = field(default_factory=dict)
    seq: int = 0
    seen: int = 0
    # The checkpoint token in force: it names the invocation holding it and counts its checkpoints.
    invocation_id: str = ""  # empty while no invocation may checkpoint
    token_seq: int = 0
    # UpdatedOperationIds: the operations the service moved (a wait elapsed, a retry came due, a callback answered or
    # timed out) since the last invocation began, and those given to invocations that did not answer (throttled,
    # failed, lost): they are given again until an invocation answers, as the SDK expects of a retried invocation.
    service_updated: list[str] = field(default_factory=list)
    updates_given: list[str] = field(default_factory=list)
    callbacks: dict[str, CallbackDeadlines] = field(default_factory=dict)  # open callbacks by operation id
    events: list[Json] = field(default_factory=list)  # the history, in the order it happened
    last_checkpoint: CheckpointReplay | None = None
    failed_invocations: int = 0  # consecutive
    invocations: int = 0
    status_machine: Machine[ExecutionStatus] = field(init=False, repr=False)
    # Persistence bookkeeping (not persisted): what changed since the store last wrote this execution.
    dirty_operations: set[str] = field(default_factory=set, repr=False)
    saved_events: int = field(default=0, repr=False)
    # The status it is built in (RUNNING when new, as saved when loaded); from then on status_machine holds it.
    initial_status: InitVar[ExecutionStatus] = field(kw_only=True)

    def __post_init__(self, initial_status: ExecutionStatus) -> None:
        self.status_machine = execution_machine(self.arn, initial_status)

    @property
    def status(self) -> ExecutionStatus:
        return self.status_machine.state

    @property
    def running(self) -> bool:
        return self.status_machine.state is ExecutionStatus.RUNNING

    @property
    def input_payload(self) -> str:
        """The execution's input, kept once: on its EXECUTION operation (``ExecutionDetails.InputPayload``)."""
        return self.operations[self.execution_id].input_payload or ""

    @property
    def deadline(self) -> float:
        """When the execution times out (DurableConfig.ExecutionTimeout after its start)."""
        return self.start + self.execution_timeout

    def put(self, operation: Operation) -> None:
        """Record a change to an operation (new or updated) and give it the next change number."""
        self.operations[operation.id] = operation
        self.seq += 1
        self.touched[operation.id] = self.seq
        self.dirty_operations.add(operation.id)
