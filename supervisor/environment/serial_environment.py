"""An environment that runs one invoke at a time, as Lambda's default model does.

It holds at most two invokes (``InvokeSlot``): ``current``, delivered to the runtime, and ``pending``, waiting for the
runtime's next ``/next``. The runtime's ``/next`` waits until the environment hands it the current invoke (and the
runtime's machine moves Ready -> Running); its answer goes to the current invoke. An invoke is over (END, REPORT, the
next one) once the runtime is back in ``/next`` and every extension that takes INVOKE is back in ``/event/next``; its
caller has had its response long before. A timeout ends the environment: the next invoke gets a new one.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import gevent.event

from pyrie_core.machine import InvalidTransition, Machine
from runtime_api.host import RuntimeRefusal
from runtime_api.http_connection import ConnectionClosed
from runtime_api.runtime_states import RuntimeState
from supervisor.environment.environment_states import EnvState
from supervisor.environment.execution_environment import Environment
from supervisor.environment.extension_set import ShutdownReason
from supervisor.environment.invoke_slot import InvokeSlot
from supervisor.invocation import Invocation

__all__ = ["SerialEnvironment"]

log = logging.getLogger(__name__)


class SerialEnvironment(Environment):
    slot: InvokeSlot

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handed = gevent.event.Event()  # set when an invoke is handed to the runtime, or the environment closes

    def _make_invokes(self) -> InvokeSlot:
        return InvokeSlot(self._config.function, self._report, self.extensions, self._timed_out)

    @property
    def current(self) -> Invocation | None:
        return self.slot.current

    @property
    def accepting(self) -> bool:
        """The environment is free, or about to be (its invoke is answered)."""
        if self.slot.pending is not None:
            return False
        state = self.machine.state
        if state is EnvState.IDLE or state is EnvState.STARTING:
            return True
        current = self.slot.current
        return state is EnvState.INVOKING and current is not None and current.finished.is_set()

    @property
    def has_pending(self) -> bool:
        return self.slot.pending is not None

    @property
    def in_flight(self) -> int:
        return len(self.slot.delivered())

    @property
    def output_owner(self) -> Invocation | None:
        return self.slot.current

    def assign(self, invocation: Invocation) -> None:
        assert self.accepting, f"{self.name} is not accepting invokes"
        self.slot.pending = invocation
        if self.machine.state is EnvState.IDLE:
            self._deliver()
        else:
            log.debug("%s: %s waits for the environment (%s)", self.name, invocation, self.machine.state.value)

    def is_waiting(self, invocation: Invocation) -> bool:
        return self.slot.pending is invocation

    def withdraw(self, invocation: Invocation) -> bool:
        if self.slot.pending is not invocation:
            return False
        self.slot.take_pending()
        return True

    # -- facts from the Runtime API ---------------------------------------------------------------------------------

    def next_invocation(self, peer: tuple[str, int]) -> Invocation:
        """``/next``: the runtime is Ready (its init, or its last invoke, is done); wait until the environment hands
        it an invoke. Asked again before answering, it gets the same event again, as from the Go emulator."""
        current = self.slot.current
        if self.runtime.state is RuntimeState.RUNNING and current is not None:
            return current
        try:
            self.runtime.transition(RuntimeState.READY)
        except InvalidTransition as refused:
            raise RuntimeRefusal.refused_transition(refused) from None
        self._runtime_ready()
        parking = self._parking
        while self.runtime.state is not RuntimeState.RUNNING or self.slot.current is None:
            if self.closing:
                raise ConnectionClosed("the environment was reset")
            parking.park()
            try:
                self._handed.wait()
            finally:
                parking.unpark()
            self._handed.clear()
        return self.slot.current

    def _runtime_ready(self) -> None:
        """The runtime waits in ``/next``: its init or its invoke is done once the extensions are back too."""
        state = self.machine.state
        if state is EnvState.STARTING:
            self._init.runtime_ready(self.extensions)
        elif state is EnvState.INVOKING and (current := self.slot.current) is not None:
            if not current.finished.is_set():  # back at /next after its response stream broke: it did not exit
                self._truncated(current)
            self._runtime.flush_output()
            self.extensions.flush_output()  # what it printed comes before its runtimeDone
            self._report.runtime_done(current, time.monotonic())
        self._settle_soon()

    def _answering(self, request_id: str) -> tuple[Invocation, Machine[RuntimeState]]:
        current = self.slot.current
        if current is None or current.request_id != request_id:
            raise RuntimeRefusal.invalid_request_id()
        return current, self.runtime

    def answer_ends(self, request_id: str) -> None:
        """The answer is complete: the runtime is done with it when it comes back to ``/next``."""
        if self.runtime.can(RuntimeState.RESPONSE_SENT):
            self.runtime.transition(RuntimeState.RESPONSE_SENT)

    def disconnected(self, peer: tuple[str, int]) -> None:
        """Nothing to do: one invoke at a time is not tied to a connection."""

    def _close(self) -> None:
        self._handed.set()  # a /next waiting for an invoke wakes to give up

    # -- facts from its timers ----------------------------------------------------------------------------------------

    def _invoke_timed_out(self, invocation: Invocation) -> None:
        """Lambda ends an environment whose invoke timed out: the next invoke gets a new one."""
        self.reset("timeout", ShutdownReason.TIMEOUT)

    # -- the work the facts imply, run from the reactor ---------------------------------------------------------------

    def _settle_invokes(self) -> None:
        if self.machine.state is EnvState.INVOKING:
            if self.runtime_state is not RuntimeState.READY or not self.extensions.invoke_done():
                return
            invocation = self.slot.finish()
            if invocation is not None:
                self.end_report(invocation)
            self._move(EnvState.IDLE)  # INVOKING -> IDLE
        if self.machine.state is not EnvState.IDLE:
            return
        if self.slot.pending is not None:
            self._deliver()
        else:
            self._reactor.soon(self._observer.environment_idle, self)

    def _deliver(self) -> None:
        """Give the pending invoke to the runtime waiting (or about to wait) in ``/next``."""
        self._move(EnvState.INVOKING)  # IDLE -> INVOKING
        self.slot.deliver(self._parking)
        self.runtime.transition(RuntimeState.RUNNING)  # Ready -> Running
        self._handed.set()
