"""An environment that runs one invoke at a time, as Lambda's default model does.

It holds at most two invokes (``InvokeSlot``): ``current``, delivered to the runtime, and ``pending``, waiting for the
runtime's next ``/next``. An invoke is over (END, REPORT, the next one) once the runtime is back in ``/next`` and every
extension that takes INVOKE is back in ``/event/next``; its caller has had its response long before. A timeout ends
the environment: the next invoke gets a new one.
"""

from __future__ import annotations

import logging
import time

from pyrie_core.limits import Limits
from runtime_api.runtime_states import RuntimeState
from supervisor.config import FunctionConfig
from supervisor.environment.environment_states import EnvState
from supervisor.environment.execution_environment import Environment
from supervisor.environment.extension_set import ShutdownReason
from supervisor.environment.invoke_slot import InvokeSlot
from supervisor.environment.runtime_side import RuntimeSide
from supervisor.invocation import Invocation

__all__ = ["SerialEnvironment"]

log = logging.getLogger(__name__)


class SerialEnvironment(Environment):
    slot: InvokeSlot
    runtime_side: RuntimeSide

    def _make_invokes(self) -> InvokeSlot:
        return InvokeSlot(self._config.function, self._report, self.extensions, self._timed_out)

    def _make_runtime_side(self, function: FunctionConfig, limits: Limits) -> RuntimeSide:
        return RuntimeSide(function, limits, self.extensions, self.telemetry, self)

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

    def runtime_ready(self) -> None:
        """The runtime waits in ``/next``: its init or its invoke is done once the extensions are back too."""
        state = self.machine.state
        if state is EnvState.STARTING:
            self._init.runtime_ready(self.extensions)
        elif state is EnvState.INVOKING and (current := self.slot.current) is not None:
            if not current.finished.is_set():  # back at /next after its response stream broke: it did not exit
                self._failures.truncated(current)
            self._runtime.flush_output()
            self.extensions.flush_output()  # what it printed comes before its runtimeDone
            self._report.runtime_done(current, time.monotonic())
        self._settle_soon()

    def invoke_timed_out(self, invocation: Invocation) -> None:
        """Lambda ends an environment whose invoke timed out: the next invoke gets a new one."""
        self.reset("timeout", ShutdownReason.TIMEOUT)

    def _settle_invokes(self) -> None:
        if self.machine.state is EnvState.INVOKING:
            if self.runtime_state is not RuntimeState.READY or not self.extensions.invoke_done():
                return
            invocation = self.slot.finish()
            if invocation is not None:
                self.end_report(invocation)
            self.machine.transition(EnvState.IDLE)  # INVOKING -> IDLE
        if self.machine.state is not EnvState.IDLE:
            return
        if self.slot.pending is not None:
            self._deliver()
        else:
            self._reactor.soon(self._observer.environment_idle, self)

    def _deliver(self) -> None:
        self.machine.transition(EnvState.INVOKING)  # IDLE -> INVOKING
        self.slot.deliver()
        self.runtime_side.hand_over()
