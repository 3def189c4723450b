"""The lifecycle of an execution environment (DESIGN §6), as one table.

STARTING  -> IDLE        the runtime reached its first /next (init done); an invoke that waited is delivered next
STARTING  -> RESETTING   init failed, timed out, or pyrie is shutting down
IDLE      -> INVOKING    an invoke is delivered
IDLE      -> RESTORING   SnapStart: the first invoke restores the environment before it is delivered
IDLE      -> RESETTING   retired, or pyrie is shutting down
RESTORING -> IDLE        restored: the runtime ran its after-restore hooks and came to /next
RESTORING -> RESETTING   the restore failed (a hook's error, a crash, its timeout), or pyrie is shutting down
INVOKING  -> IDLE        the runtime answered and came back to /next
INVOKING  -> RESETTING   timeout, crash, or pyrie is shutting down
RESETTING -> GONE        every process of the environment has exited
"""

from __future__ import annotations

import enum
from typing import Final

from pyrie_core.machine import Machine

__all__ = ["ENVIRONMENT_TRANSITIONS", "EnvState", "environment_machine"]


class EnvState(enum.Enum):
    STARTING = "starting"
    IDLE = "idle"
    RESTORING = "restoring"
    INVOKING = "invoking"
    RESETTING = "resetting"
    GONE = "gone"


ENVIRONMENT_TRANSITIONS: Final = {
    EnvState.STARTING: frozenset({EnvState.IDLE, EnvState.RESETTING}),
    EnvState.IDLE: frozenset({EnvState.INVOKING, EnvState.RESTORING, EnvState.RESETTING}),
    EnvState.RESTORING: frozenset({EnvState.IDLE, EnvState.RESETTING}),
    EnvState.INVOKING: frozenset({EnvState.IDLE, EnvState.RESETTING}),
    EnvState.RESETTING: frozenset({EnvState.GONE}),
    EnvState.GONE: frozenset(),
}


def environment_machine(name: str) -> Machine[EnvState]:
    return Machine(name, ENVIRONMENT_TRANSITIONS, EnvState.STARTING)
