"""A finite state machine over an explicit table: every transition goes through ``Machine.transition``.

The table maps each state to the states it may move to; anything not listed is refused (deny by default), and a
refused transition raises ``InvalidTransition`` and leaves the state unchanged. A transition only records the new
state: it calls nobody back, so whoever makes it decides what follows, after it has returned. This module must not
depend on any other module of pyrie.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from typing import Generic, TypeVar

__all__ = ["InvalidTransition", "Machine"]

S = TypeVar("S", bound=enum.Enum)


class InvalidTransition(Exception):
    def __init__(self, machine: str, current: enum.Enum, target: enum.Enum) -> None:
        self.machine = machine
        self.current = current
        self.target = target
        super().__init__(
            f"State transition from {current.value} to {target.value} failed for {machine}. "
            "Error: State transition is not allowed"
        )


class Machine(Generic[S]):
    """The current state of one thing, moved only along the edges of ``table``."""

    def __init__(
        self,
        name: str,
        table: Mapping[S, frozenset[S]],
        initial: S,
    ) -> None:
        self.name = name  # used in error messages: "... failed for <name>"
        self._table = table
        self._state = initial
        self.changed_at = time.monotonic()  # when the current state was entered

    @property
    def state(self) -> S:
        return self._state

    def can(self, target: S) -> bool:
        return target in self._table[self._state]

    def transition(self, target: S) -> S:
        """Move to ``target`` and return the state left; ``InvalidTransition`` if the table forbids it."""
        previous = self._state
        if target not in self._table[previous]:
            raise InvalidTransition(self.name, previous, target)
        self._state = target
        self.changed_at = time.monotonic()
        return previous

    def __repr__(self) -> str:
        return f"<Machine {self.name} {self._state.name}>"
