"""The state machines: pyrie_core.machine, the environment lifecycle and the Runtime API's runtime states.

The legal transitions are written out here from the specifications (DESIGN §6, rie-behaviour.md §6.1), not read
from the tables under test, so a changed table fails a test.
"""

from __future__ import annotations

import enum
import itertools
import json
from types import SimpleNamespace
from typing import Any

import gevent
import pytest

from pyrie_core.address import Address
from pyrie_core.machine import InvalidTransition, Machine
from pyrie_core.pipe.messages import Invoke
from runtime_api.http_connection import Request, json_body
from runtime_api.runtime_routes import (
    init_error,
    invocation_error,
    invocation_response,
    next_invocation,
    restore_error,
    restore_next,
)
from runtime_api.runtime_states import RUNTIME_TRANSITIONS, RuntimeState, runtime_machine
from supervisor.config import Config, FunctionConfig, SnapStartConfig
from supervisor.environment.environment_states import ENVIRONMENT_TRANSITIONS, EnvState, environment_machine
from supervisor.environment.execution_environment import Environment
from supervisor.environment.serial_environment import SerialEnvironment
from supervisor.environment.snapstart_environment import SnapStartEnvironment
from supervisor.invocation import Invocation
from supervisor.observe.function_log import FunctionLog
from supervisor.processes.containment import Containment
from supervisor.reactor import Reactor

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


def function(**overrides: Any) -> FunctionConfig:
    return FunctionConfig("f", "$LATEST", 128, 3, ("bootstrap",), "/", None, {}, **overrides)


SNAPSTART = SnapStartConfig(token="good", access_key_id="AKID", secret_access_key="secret", session_token="session")


class Observer:
    """Stands in for the pool: notes what an environment tells it."""

    def __init__(self) -> None:
        self.idle: list[Environment] = []

    def environment_idle(self, env: Environment) -> None:
        self.idle.append(env)

    def environment_gone(self, env: Environment, orphans: list[Invocation]) -> None:
        return None


def environment(kind: type[Environment] = SerialEnvironment, *, bound: bool = False, **overrides: Any) -> Environment:
    """A real environment of ``kind`` that starts no process: its facts are called as its Runtime API would."""
    config = Config(
        function=function(**overrides),
        invoke_address=Address("127.0.0.1", 0),
        runtime_api_address=Address("127.0.0.1", 0),
        log_level="INFO",
        workers=None,
        init_timeout_s=10.0,
        extensions_dir="/nonexistent",
    )
    processes = Containment("states-test", cgroups=False).environment("environment-1")
    env = kind(1, config, FunctionLog(), Reactor(), Observer(), processes=processes)
    if bound:
        env.bind(Address("127.0.0.1", 0))
    return env


class RecordingSink:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    def send(self, *messages: Any) -> None:
        self.messages.extend(messages)

    def wait_for_room(self, abort: Any) -> None:
        return None


def invocation(request_id: str = "req-1") -> Invocation:
    return Invocation(Invoke(function="function", payload=b"{}"), RecordingSink(), "$LATEST", request_id)


def walk(machine: Machine[RuntimeState], state: RuntimeState) -> None:
    for step in PATHS[state]:  # along the table's own edges
        machine.transition(step)


class RecordingConnection:
    """Stands in for runtime_api.http_connection.HttpConnection: records the one response a handler sends."""

    def __init__(self, body: bytes = b"") -> None:
        self.responses: list[tuple[int, list[tuple[str, str]], bytes]] = []
        self.peer = ("127.0.0.1", 40000)
        self._body = body

    def read_body(self, limit: int) -> tuple[bytes, int]:
        return self._body[:limit], len(self._body)

    def respond(self, status, headers=(), body=b""):
        self.responses.append((status, list(headers), body))


def refusal(message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    body = {"errorMessage": f"{message} Error: State transition is not allowed", "errorType": "InvalidStateTransition"}
    return 403, [("Content-Type", "application/json")], json.dumps(body, separators=(",", ":")).encode() + b"\n"


@pytest.mark.parametrize(
    ("handler", "state", "message"),
    [
        (
            invocation_response,
            R.RESPONSE_SENT,
            "State transition from RuntimeResponseSentState to InvocationResponse failed for runtime.",
        ),
        (
            invocation_error,
            R.RESPONSE_SENT,
            "State transition from RuntimeResponseSentState to InvocationErrorResponse failed for runtime.",
        ),
        (init_error, R.READY, "State transition from Ready to InitError failed for runtime."),
        (next_invocation, R.INIT_ERROR, "State transition from InitError to Ready failed for runtime."),
    ],
    ids=["response-twice", "error-after-response", "init-error-after-next", "next-after-init-error"],
)
def test_the_environment_refuses_a_transition_and_the_runtime_api_answers_403_with_the_exact_body(
    handler, state, message
):
    env = environment()
    env.slot.current = invocation()
    walk(env.runtime, state)
    conn = RecordingConnection()
    request = Request("POST", "/2018-06-01/runtime/invocation/req-1/response", {}, chunked=False)
    handler(env, request, conn, {"request_id": "req-1"})
    assert conn.responses == [refusal(message)]
    assert env.runtime.state is state
    assert env.state is E.STARTING  # refused, nothing else happened


def test_an_answer_for_another_invoke_is_400_invalid_request_id():
    env = environment()
    env.slot.current = invocation()
    walk(env.runtime, R.RUNNING)
    conn = RecordingConnection()
    invocation_response(env, Request("POST", "/", {}, chunked=False), conn, {"request_id": "other"})
    body = {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}
    assert conn.responses == [(400, [("Content-Type", "application/json")], json_body(body))]
    assert env.runtime.state is R.RUNNING


def test_error_text_uses_state_values_of_any_enum():
    class Light(enum.Enum):
        RED = "Red"
        GREEN = "Green"

    machine = Machine("light", {Light.RED: frozenset({Light.GREEN}), Light.GREEN: frozenset()}, Light.RED)
    machine.transition(Light.GREEN)
    with pytest.raises(InvalidTransition, match=r"^State transition from Green to Red failed for light\. "):
        machine.transition(Light.RED)


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
    env = environment()
    waiting = invocation()
    env.slot.pending = waiting  # the invoke that waited for the init fails with it
    headers = {"lambda-runtime-function-error-type": header} if header else {}
    conn = RecordingConnection(body)
    init_error(env, Request("POST", "/2018-06-01/runtime/init/error", headers, chunked=False), conn, {})
    assert conn.responses == [(202, [("Content-Type", "application/json")], b'{"status":"OK"}\n')]
    assert waiting.outcome is not None
    assert (waiting.outcome.error_type, waiting.outcome.body) == (reported, body)  # the body as posted
    assert env.runtime.state is R.INIT_ERROR and env.closing


# --- the restore calls of init caching (SnapStart) --------------------------------------------------------------


def snapstart_environment(state: RuntimeState, **kwargs: Any) -> Environment:
    env = environment(SnapStartEnvironment, snapstart=SNAPSTART, **kwargs)
    walk(env.runtime, state)
    return env


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
    env = snapstart_environment(state)
    conn = RecordingConnection()
    handler(env, Request("POST", "/", {}, chunked=False), conn, {})
    assert conn.responses == [refusal(message)]
    assert env.runtime.state is state
    assert env.state is E.STARTING  # nothing failed


def test_restore_next_moves_to_restore_ready_waits_until_restored_and_answers_200_empty():
    env = snapstart_environment(R.STARTED, bound=True)
    conn = RecordingConnection()
    waiting = gevent.spawn(
        restore_next, env, Request("GET", "/2018-06-01/runtime/restore/next", {}, chunked=False), conn, {}
    )
    gevent.sleep(0.05)  # the handler moved the machine and waits; the init is over
    assert env.runtime.state is R.RESTORE_READY and not waiting.dead and conn.responses == []
    assert env.state is E.IDLE
    first = invocation()
    env.assign(first)  # the first invoke restores the environment: the runtime's /restore/next returns
    waiting.join(5)
    assert conn.responses == [(200, [], b"")]
    assert env.runtime.state is R.RESTORING and env.state is E.RESTORING
    env.reset("test over")


def restoring_environment() -> tuple[Environment, Invocation]:
    """A SnapStart environment restoring for its first invoke, its runtime running its after-restore hooks."""
    env = snapstart_environment(R.RESTORING, bound=True)
    env.machine.transition(E.IDLE)
    first = invocation()
    env.slot.pending = first
    env.machine.transition(E.RESTORING)
    return env, first


@pytest.mark.parametrize(
    ("handler", "header", "reported"),
    [
        (restore_error, "Runtime.AfterRestoreError", "Runtime.AfterRestoreError"),
        (restore_error, None, "Runtime.Unknown"),
        (restore_error, "NotLambdas", "Runtime.Unknown"),
        (restore_error, "Function.Broken", "Function.Broken"),
        # the Go emulator takes an /init/error during the restore as the restore's error
        (init_error, "Runtime.AfterRestoreError", "Runtime.AfterRestoreError"),
    ],
)
def test_a_restore_error_is_accepted_and_fails_the_restore_with_its_normalised_type(handler, header, reported, caplog):
    env, first = restoring_environment()
    headers = {"lambda-runtime-function-error-type": header} if header else {}
    conn = RecordingConnection(b'{"errorType":"Other"}')
    with caplog.at_level("INFO"):
        handler(env, Request("POST", "/2018-06-01/runtime/restore/error", headers, chunked=False), conn, {})
    assert conn.responses == [(202, [("Content-Type", "application/json")], b'{"status":"OK"}\n')]
    assert env.runtime.state is R.RESTORE_ERROR and env.closing
    assert f"environment-1: restore failed (error, {reported})" in caplog.text
    assert first.outcome is not None and first.outcome.status == 400  # the Invoke API's SnapStartException
