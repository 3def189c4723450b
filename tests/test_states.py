"""The state machines: supervisor.machine, the environment lifecycle and the Runtime API's runtime states.

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
from runtime_api.runtime_routes import init_error, invocation_error, invocation_response, next_invocation
from runtime_api.runtime_states import RUNTIME_TRANSITIONS, RuntimeState, runtime_machine
from supervisor.config import FunctionConfig
from supervisor.environment.environment_states import ENVIRONMENT_TRANSITIONS, EnvState, environment_machine
from supervisor.environment.runtime_host import RuntimeSide

E = EnvState
R = RuntimeState

# DESIGN §6: starting -> idle -> invoking -> (idle | resetting -> gone); supervisor/states.py's docstring.
LEGAL_ENVIRONMENT = {
    (E.STARTING, E.IDLE),
    (E.STARTING, E.INVOKING),
    (E.STARTING, E.RESETTING),
    (E.IDLE, E.INVOKING),
    (E.IDLE, E.RESETTING),
    (E.INVOKING, E.IDLE),
    (E.INVOKING, E.RESETTING),
    (E.RESETTING, E.GONE),
}

# rie-behaviour.md §6.1 (without the init-caching restore states, which pyrie does not emulate).
LEGAL_RUNTIME = {
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
    """A fake monotonic clock for supervisor.machine that advances by one second each time it is read."""
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
