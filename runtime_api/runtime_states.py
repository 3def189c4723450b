"""The runtime's side of the Runtime API as a state machine (rie-behaviour.md §6.1), as one table.

State values are the Go emulator's names, because they appear in the 403 bodies runtimes receive:
"State transition from RuntimeResponseSentState to InvocationResponse failed for runtime. ...".

    Started                  -> Ready                    first /next: init is done
    Started                  -> InitError                /init/error
    Ready                    -> Running                  an invoke is handed to the waiting /next
    Running                  -> InvocationResponse       /response begins
    Running                  -> InvocationErrorResponse  /error
    InvocationResponse       -> RuntimeResponseSentState the response body is complete (or refused)
    InvocationErrorResponse  -> RuntimeResponseSentState the error body is read
    RuntimeResponseSentState -> Ready                    /next after answering
"""

from __future__ import annotations

import enum
from typing import Final

from pyrie_core.machine import Machine

__all__ = ["RUNTIME_TRANSITIONS", "RuntimeState", "runtime_machine"]


class RuntimeState(enum.Enum):
    STARTED = "Started"
    READY = "Ready"
    RUNNING = "Running"
    INVOCATION_RESPONSE = "InvocationResponse"
    INVOCATION_ERROR_RESPONSE = "InvocationErrorResponse"
    RESPONSE_SENT = "RuntimeResponseSentState"
    INIT_ERROR = "InitError"


RUNTIME_TRANSITIONS: Final = {
    RuntimeState.STARTED: frozenset({RuntimeState.READY, RuntimeState.INIT_ERROR}),
    RuntimeState.READY: frozenset({RuntimeState.RUNNING}),
    RuntimeState.RUNNING: frozenset({RuntimeState.INVOCATION_RESPONSE, RuntimeState.INVOCATION_ERROR_RESPONSE}),
    RuntimeState.INVOCATION_RESPONSE: frozenset({RuntimeState.RESPONSE_SENT}),
    RuntimeState.INVOCATION_ERROR_RESPONSE: frozenset({RuntimeState.RESPONSE_SENT}),
    RuntimeState.RESPONSE_SENT: frozenset({RuntimeState.READY}),
    RuntimeState.INIT_ERROR: frozenset(),
}


def runtime_machine() -> Machine[RuntimeState]:
    return Machine("runtime", RUNTIME_TRANSITIONS, RuntimeState.STARTED)
