"""The state machines: pyrie_core.machine, the environment lifecycle and the Runtime API's runtime states.

The legal transitions are written out here from the specifications (DESIGN §6, rie-behaviour.md §6.1), not read
from the tables under test, so a changed table fails a test.
"""

from __future__ import annotations

import enum
import itertools
import json
from types import SimpleNamespace

import pytest

from pyrie_core.limits import Limits
from pyrie_core.machine import InvalidTransition, Machine
from runtime_api.http_connection import Request
from runtime_api.runtime_routes import (
    init_error,
    invocation_error,
    invocation_response,
    next_invocation,
    restore_error,
    restore_next,
)
from runtime_api.runtime_states import RUNTIME_TRANSITIONS, RuntimeState, runtime_machine
from supervisor.config import FunctionConfig
from supervisor.environment.environment_states import ENVIRONMENT_TRANSITIONS, EnvState, environment_machine
from supervisor.environment.runtime_side import RuntimeSide

E = EnvState
R = RuntimeState

# DESIGN §6: starting -> idle -> invoking -> (idle | resetting -> gone); environment_states.py's docstring.
LEGAL_ENVIRONMENT = {
    (E.STARTING, E.IDLE),
    (E.STARTING, E.RESETTING),
    (E.IDLE, E.INVOKING),
    (E.IDLE, E.RESETTING),
    (E.IDLE, E.RESTORING),  # SnapStart: the first invoke restores the environment (issue 12)
    (E.RESTORING, E.IDLE),
    (E.RESTORING, E.RESETTING),
    (E.INVOKING, E.IDLE),
    (E.INVOKING, E.RESETTING),
    (E.RESETTING, E.GONE),
}

# rie-behaviour.md §6.1, and the init-caching (SnapStart) restore states of the Go emulator's
# internal/lambda/core/states.go: RuntimeStartedState.RestoreReady, RuntimeRestoringState.Ready and .RestoreError.
LEGAL_RUNTIME = {
    (R.STARTED, R.RESTORE_READY),  # /restore/next
    (R.RESTORE_READY, R.RESTORING),  # the environment is restored: /restore/next returns
    (R.RESTORING, R.READY),  # /next after the after-restore hooks
    (R.RESTORING, R.RESTORE_ERROR),  # /restore/error
    (R.STARTED, R.READY),  # first /next
    (R.STARTED, R.INIT_ERROR),  # /init/error before the first /next
    (R.READY, R.RUNNING),  # an invoke is handed to the waiting /next
    (R.RUNNING, R.INVOCATION_RESPONSE),  # /response
    (R.RUNNING, R.INVOCATION_ERROR_RESPONSE),  # /error
    (R.INVOCATION_RESPONSE, R.RESPONSE_SENT),
    (R.INVOCATION_ERROR_RESPONSE, R.RESPONSE_SENT),
    (R.RESPONSE_SENT, R.READY),  # /next after answering
}

MACHINES = [
    SimpleNamespace(name="environment", states=EnvState, table=ENVIRONMENT_TRANSITIONS, legal=LEGAL_ENVIRONMENT),
    SimpleNamespace(name="runtime", states=RuntimeState, table=RUNTIME_TRANSITIONS, legal=LEGAL_RUNTIME),
]
PAIRS = [
    pytest.param(spec, current, target, id=f"{spec.name}:{current.name}->{target.name}")
    for spec in MACHINES
    for current, target in itertools.product(spec.states, spec.states)
]


@pytest.fixture
def clock(monkeypatch):
    """A fake monotonic clock for pyrie_core.machine that advances by one second each time it is read."""
    ticks = itertools.count(1000.0)
    monkeypatch.setattr("pyrie_core.machine.time", SimpleNamespace(monotonic=lambda: float(next(ticks))))
    return ticks


# --- the whole transition matrix -------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "current", "target"), PAIRS)
def test_transition_matrix(clock, spec, current, target):
    name = spec.name
    machine = Machine(name, spec.table, current)
    entered = machine.changed_at
    if (current, target) in spec.legal:
        assert machine.can(target)
        assert machine.transition(target) is current  # the state left
        assert machine.state is target
        assert machine.changed_at > entered
    else:
        assert not machine.can(target)
        with pytest.raises(InvalidTransition) as refused:
            machine.transition(target)
        assert machine.state is current
        assert machine.changed_at == entered
        assert refused.value.machine == name
        assert refused.value.current is current
        assert refused.value.target is target
        assert str(refused.value) == (
            f"State transition from {current.value} to {target.value} failed for {name}. "
            "Error: State transition is not allowed"
        )


@pytest.mark.parametrize("spec", MACHINES, ids=[spec.name for spec in MACHINES])
def test_every_state_has_a_row(spec):
    # A state without a row would make transition() raise KeyError instead of InvalidTransition.
    assert set(spec.table) == set(spec.states)


def test_a_refused_transition_can_be_followed_by_a_legal_one(clock):
    machine = runtime_machine()
    with pytest.raises(InvalidTransition):
        machine.transition(R.RUNNING)
    machine.transition(R.READY)
    assert machine.state is R.READY


def test_changed_at_is_when_the_current_state_was_entered(clock):
    machine = environment_machine("env-1")
    created = machine.changed_at
    machine.transition(E.IDLE)
    idle_at = machine.changed_at
    with pytest.raises(InvalidTransition):
        machine.transition(E.GONE)
    assert machine.changed_at == idle_at > created


def test_machine_repr_names_the_machine_and_state():
    assert repr(environment_machine("env-3")) == "<Machine env-3 STARTING>"


# --- the environment lifecycle ---------------------------------------------------------------------------------


def test_environment_starts_in_starting_and_is_named_in_errors():
    machine = environment_machine("env-7")
    assert machine.state is E.STARTING
    with pytest.raises(InvalidTransition) as refused:
        machine.transition(E.GONE)
    assert str(refused.value) == (
        "State transition from starting to gone failed for env-7. Error: State transition is not allowed"
    )


def test_environment_full_life():
    machine = environment_machine("env-1")
    for state in (E.IDLE, E.INVOKING, E.IDLE, E.INVOKING, E.RESETTING, E.GONE):
        machine.transition(state)
    assert machine.state is E.GONE
    assert not any(machine.can(state) for state in EnvState)  # gone is final


# --- the runtime's states and the Runtime API's 403 text -------------------------------------------------------


def test_runtime_machine_starts_in_started():
    machine = runtime_machine()
    assert machine.state is R.STARTED
    assert machine.name == "runtime"
    assert machine.transition(R.READY) is R.STARTED


def test_state_values_are_the_go_emulators_names():
    assert {state.value for state in RuntimeState} == {
        "Started",
        "Ready",
        "Running",
        "InvocationResponse",
        "InvocationErrorResponse",
        "RuntimeResponseSentState",
        "InitError",
        "RestoreReady",
        "Restoring",
        "RuntimeRestoreErrorState",
    }


def test_posting_a_response_twice_gives_the_go_emulators_exact_text():
    machine = runtime_machine()
    for state in (R.READY, R.RUNNING, R.INVOCATION_RESPONSE, R.RESPONSE_SENT):
        machine.transition(state)
    with pytest.raises(InvalidTransition) as refused:
        machine.transition(R.INVOCATION_RESPONSE)
    assert str(refused.value) == (
        "State transition from RuntimeResponseSentState to InvocationResponse failed for runtime. "
        "Error: State transition is not allowed"
    )
    assert machine.state is R.RESPONSE_SENT


@pytest.mark.parametrize(
    ("current", "target", "text"),
    [
        # every message quoted in rie-behaviour.md §6
        (R.INIT_ERROR, R.READY, "State transition from InitError to Ready failed for runtime."),
        (R.INVOCATION_RESPONSE, R.READY, "State transition from InvocationResponse to Ready failed for runtime."),
        (
            R.RESPONSE_SENT,
            R.INVOCATION_ERROR_RESPONSE,
            "State transition from RuntimeResponseSentState to InvocationErrorResponse failed for runtime.",
        ),
        (R.READY, R.INIT_ERROR, "State transition from Ready to InitError failed for runtime."),
        (R.RUNNING, R.INIT_ERROR, "State transition from Running to InitError failed for runtime."),
    ],
)
def test_runtime_refusals_quoted_in_the_spec(current, target, text):
    machine = Machine("runtime", RUNTIME_TRANSITIONS, current)
    with pytest.raises(InvalidTransition) as refused:
        machine.transition(target)
    assert str(refused.value) == text + " Error: State transition is not allowed"


# How the runtime's machine gets from Started to each state the refusals below start from.
PATHS = {
    R.RESPONSE_SENT: (R.READY, R.RUNNING, R.INVOCATION_RESPONSE, R.RESPONSE_SENT),
    R.READY: (R.READY,),
    R.INIT_ERROR: (R.INIT_ERROR,),
    R.STARTED: (),
    R.RESTORE_READY: (R.RESTORE_READY,),
    R.RESTORING: (R.RESTORE_READY, R.RESTORING),
    R.RESTORE_ERROR: (R.RESTORE_READY, R.RESTORING, R.RESTORE_ERROR),
    R.RUNNING: (R.READY, R.RUNNING),
}


def function() -> FunctionConfig:
    return FunctionConfig("f", "$LATEST", 128, 3, ("bootstrap",), "/", None, {})


class RecordingConnection:
    """Stands in for runtime_api.http_connection.HttpConnection: records the one response a handler sends."""

    def __init__(self) -> None:
        self.responses: list[tuple[int, list[tuple[str, str]], bytes]] = []
        self.peer = ("127.0.0.1", 40000)

    def respond(self, status, headers=(), body=b""):
        self.responses.append((status, list(headers), body))


@pytest.mark.parametrize(
    ("handler", "state", "message"),
    [
        (
            invocation_response,
            R.RESPONSE_SENT,
            "State transition from RuntimeResponseSentState to InvocationResponse failed for runtime. "
            "Error: State transition is not allowed",
        ),
        (
            invocation_error,
            R.RESPONSE_SENT,
            "State transition from RuntimeResponseSentState to InvocationErrorResponse failed for runtime. "
            "Error: State transition is not allowed",
        ),
        (
            init_error,
            R.READY,
            "State transition from Ready to InitError failed for runtime. Error: State transition is not allowed",
        ),
        (
            next_invocation,
            R.INIT_ERROR,
            "State transition from InitError to Ready failed for runtime. Error: State transition is not allowed",
        ),
    ],
    ids=["response-twice", "error-after-response", "init-error-after-next", "next-after-init-error"],
)
def test_runtime_api_answers_a_refused_transition_with_403_and_the_exact_body(handler, state, message):
    events = SimpleNamespace(current=SimpleNamespace(request_id="req-1"), closing=False, runtime_ready=lambda: None)
    host = RuntimeSide(function(), Limits(), extensions=None, telemetry=None, events=events)
    machine = host.runtime
    for step in PATHS[state]:  # along the table's own edges
        machine.transition(step)
    conn = RecordingConnection()
    request = Request("POST", "/2018-06-01/runtime/invocation/req-1/response", {}, chunked=False)
    handler(host, request, conn, {"request_id": "req-1"})
    assert conn.responses == [
        (
            403,
            [("Content-Type", "application/json")],
            json.dumps({"errorMessage": message, "errorType": "InvalidStateTransition"}, separators=(",", ":")).encode()
            + b"\n",
        )
    ]
    assert machine.state is state


def test_error_text_uses_state_values_of_any_enum():
    class Light(enum.Enum):
        RED = "Red"
        GREEN = "Green"

    machine = Machine("light", {Light.RED: frozenset({Light.GREEN}), Light.GREEN: frozenset()}, Light.RED)
    machine.transition(Light.GREEN)
    with pytest.raises(InvalidTransition, match=r"^State transition from Green to Red failed for light\. "):
        machine.transition(Light.RED)


# --- the restore calls of init caching (SnapStart) --------------------------------------------------------------


class RecordingSnapStart:
    """Stands in for an environment's SnapStart side: records what the handlers tell it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def restore_next(self) -> None:
        self.calls.append(("restore_next",))

    def restore_failed(self, error_type: str) -> None:
        self.calls.append(("restore_failed", error_type))

    def credentials(self, token: str) -> None:
        return None


def snapstart_host(state: RuntimeState) -> SimpleNamespace:
    machine = runtime_machine()
    for step in PATHS[state]:  # along the table's own edges
        machine.transition(step)
    return SimpleNamespace(runtime=machine, snapstart=RecordingSnapStart(), limits=Limits())


def refusal(message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    body = {"errorMessage": f"{message} Error: State transition is not allowed", "errorType": "InvalidStateTransition"}
    return 403, [("Content-Type", "application/json")], json.dumps(body, separators=(",", ":")).encode() + b"\n"


@pytest.mark.parametrize(
    ("handler", "state", "message"),
    [
        # restorenext.go names the target Ready whatever the state: rie-behaviour.md §9 observed "from Ready to Ready"
        (restore_next, R.READY, "State transition from Ready to Ready failed for runtime."),
        (restore_next, R.RESTORE_READY, "State transition from RestoreReady to Ready failed for runtime."),
        (restore_next, R.RUNNING, "State transition from Running to Ready failed for runtime."),
        (restore_next, R.INIT_ERROR, "State transition from InitError to Ready failed for runtime."),
        (
            restore_error,
            R.STARTED,
            "State transition from Started to RuntimeRestoreErrorState failed for runtime.",
        ),
        (
            restore_error,
            R.RESTORE_READY,
            "State transition from RestoreReady to RuntimeRestoreErrorState failed for runtime.",
        ),
        (
            restore_error,
            R.RESTORE_ERROR,
            "State transition from RuntimeRestoreErrorState to RuntimeRestoreErrorState failed for runtime.",
        ),
        (restore_error, R.READY, "State transition from Ready to RuntimeRestoreErrorState failed for runtime."),
        (init_error, R.RESTORE_READY, "State transition from RestoreReady to InitError failed for runtime."),
    ],
    ids=lambda value: value.__name__ if callable(value) else getattr(value, "name", None),
)
def test_restore_calls_in_the_wrong_state_get_the_go_emulators_403(handler, state, message):
    host = snapstart_host(state)
    conn = RecordingConnection()
    handler(host, Request("POST", "/", {}, chunked=False), conn, {})
    assert conn.responses == [refusal(message)]
    assert host.runtime.state is state
    assert host.snapstart.calls == []


def test_restore_next_moves_to_restore_ready_waits_and_answers_200_empty():
    host = snapstart_host(R.STARTED)
    waited_in: list[RuntimeState] = []
    host.snapstart.restore_next = lambda: waited_in.append(host.runtime.state)
    conn = RecordingConnection()
    restore_next(host, Request("GET", "/2018-06-01/runtime/restore/next", {}, chunked=False), conn, {})
    assert waited_in == [R.RESTORE_READY]  # the handler moved the machine, then waited for the restore
    assert conn.responses == [(200, [], b"")]


def test_restore_error_while_restoring_is_accepted_and_reported_with_its_error_type():
    host = snapstart_host(R.RESTORING)
    conn = RecordingConnection()
    headers = {"lambda-runtime-function-error-type": "Runtime.AfterRestoreError"}
    restore_error(host, Request("POST", "/2018-06-01/runtime/restore/error", headers, chunked=False), conn, {})
    assert conn.responses == [(202, [("Content-Type", "application/json")], b'{"status":"OK"}\n')]
    assert host.runtime.state is R.RESTORE_ERROR
    assert host.snapstart.calls == [("restore_failed", "Runtime.AfterRestoreError")]


@pytest.mark.parametrize(
    ("header", "reported"),
    [(None, "Runtime.Unknown"), ("NotLambdas", "Runtime.Unknown"), ("Function.Broken", "Function.Broken")],
)
def test_restore_error_type_is_normalised_as_the_go_emulator_does(header, reported):
    host = snapstart_host(R.RESTORING)
    headers = {"lambda-runtime-function-error-type": header} if header else {}
    restore_error(host, Request("POST", "/", headers, chunked=False), RecordingConnection(), {})
    assert host.snapstart.calls == [("restore_failed", reported)]


def test_init_error_while_restoring_is_the_restores_error_as_in_the_go_emulator():
    host = snapstart_host(R.RESTORING)
    conn = RecordingConnection()
    headers = {"lambda-runtime-function-error-type": "Runtime.AfterRestoreError"}
    init_error(host, Request("POST", "/2018-06-01/runtime/init/error", headers, chunked=False), conn, {})
    assert conn.responses == [(202, [("Content-Type", "application/json")], b'{"status":"OK"}\n')]
    assert host.runtime.state is R.RESTORE_ERROR
    assert host.snapstart.calls == [("restore_failed", "Runtime.AfterRestoreError")]


class BodyConnection(RecordingConnection):
    def __init__(self, body: bytes) -> None:
        super().__init__()
        self._body = body

    def read_body(self, limit: int) -> tuple[bytes, int]:
        return self._body[:limit], len(self._body)


@pytest.mark.parametrize(
    ("header", "body", "reported"),
    [
        # awslambdaric's before-snapshot failure: the header names it, the body names the hook's exception
        (
            "Runtime.BeforeSnapshotError",
            b'{"errorType":"RuntimeError","errorMessage":"x"}',
            "Runtime.BeforeSnapshotError",
        ),
        ("Runtime.ImportModuleError", b'{"errorType":"Runtime.ImportModuleError"}', "Runtime.ImportModuleError"),
        # a header that is not one of Lambda's types, or none: the body's errorType
        ("Error", b'{"errorType":"TypeError"}', "TypeError"),
        (None, b'{"errorType":"Custom.InitFailure"}', "Custom.InitFailure"),
        # neither
        ("Error", b"not json", "Runtime.Unknown"),
        (None, b"", "Runtime.Unknown"),
    ],
)
def test_init_error_type_is_the_declared_lambda_type_else_the_bodys(header, body, reported):
    failed: list[tuple[str, bytes]] = []
    host = SimpleNamespace(
        runtime=runtime_machine(), snapstart=None, limits=Limits(), init_failed=lambda *args: failed.append(args)
    )
    headers = {"lambda-runtime-function-error-type": header} if header else {}
    init_error(
        host, Request("POST", "/2018-06-01/runtime/init/error", headers, chunked=False), BodyConnection(body), {}
    )
    assert failed == [(reported, body)]  # the body itself is passed on as posted
