"""An extension's side of the Extensions API as a state machine, as one table.

State values are the Go emulator's names (internal/lambda/core/agent_state_names.go), because they appear in the
403 bodies extensions receive: "State transition from Registered to Registered failed for extension <name>. Error:
State transition is not allowed". The table is the Go emulator's external and internal agent states
(core/externalagent_states.go, core/internalagent_states.go), with one difference in meaning: here Ready is an
extension blocked in ``/event/next``, and Running one that has received its event (Go passes through Ready into
Running inside the same call).

    Started    -> Registered     /extension/register
    Started    -> LaunchError    the extension's executable could not be started
    Registered -> Ready          the first /event/next
    Registered -> InitError      /extension/init/error
    Registered -> ExitError      /extension/exit/error
    Ready      -> Running        an event (INVOKE, SHUTDOWN) is handed to the waiting /event/next
    Ready      -> ExitError      /extension/exit/error
    Running    -> Ready          /event/next after handling the event
    Running    -> ExitError      /extension/exit/error
    Running    -> ShutdownFailed it did not exit by the SHUTDOWN deadline
    Running    -> Exited         it exited after its SHUTDOWN event
    InitError  -> InitError      a second /init/error is accepted and ignored (the first error counts)
    ExitError  -> ExitError      likewise for /exit/error
"""

from __future__ import annotations

import enum
from typing import Final

from pyrie_core.machine import Machine

__all__ = ["EXTENSION_TRANSITIONS", "ExtensionState", "extension_machine"]


class ExtensionState(enum.Enum):
    STARTED = "Started"
    REGISTERED = "Registered"
    READY = "Ready"
    RUNNING = "Running"
    INIT_ERROR = "InitError"
    EXIT_ERROR = "ExitError"
    SHUTDOWN_FAILED = "ShutdownFailed"
    EXITED = "Exited"
    LAUNCH_ERROR = "LaunchError"


_S = ExtensionState
EXTENSION_TRANSITIONS: Final = {
    _S.STARTED: frozenset({_S.REGISTERED, _S.LAUNCH_ERROR}),
    _S.REGISTERED: frozenset({_S.READY, _S.INIT_ERROR, _S.EXIT_ERROR}),
    _S.READY: frozenset({_S.RUNNING, _S.EXIT_ERROR}),
    _S.RUNNING: frozenset({_S.READY, _S.EXIT_ERROR, _S.SHUTDOWN_FAILED, _S.EXITED}),
    _S.INIT_ERROR: frozenset({_S.INIT_ERROR}),
    _S.EXIT_ERROR: frozenset({_S.EXIT_ERROR}),
    _S.SHUTDOWN_FAILED: frozenset(),
    _S.EXITED: frozenset(),
    _S.LAUNCH_ERROR: frozenset(),
}


def extension_machine(name: str) -> Machine[ExtensionState]:
    return Machine(f"extension {name}", EXTENSION_TRANSITIONS, ExtensionState.STARTED)
