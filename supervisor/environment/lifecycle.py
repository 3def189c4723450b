"""One execution environment: a runtime process, its Runtime API server, and the invokes it runs one at a time.

The environment follows its lifecycle machine (``supervisor.environment.environment_states``), which the pool sees;
the runtime's protocol state is moved by the Runtime API handlers (``supervisor.environment.runtime_host``). The
environment's parts each do one job: ``InvokeSlot`` holds the current and the pending invoke, ``MemoryGuard``
watches memory, ``ExtensionSet`` runs the extensions, ``PlatformReporter`` writes what happens, and the processes
are ``ManagedProcess``.

What happens is recorded where it happens, and the work it implies runs afterwards from the supervisor's loop
(``supervisor.reactor``): the runtime's ``/next`` records that it is back, and ``settle`` then ends init or the
previous invoke (END, REPORT) and delivers the next one or tells the pool the environment is idle. Failures (a crash,
a timeout, running out of memory, an init error) fail what the environment owes at once and ``reset`` it: the
teardown (SHUTDOWN to the extensions, SIGTERM then SIGKILL to the processes) runs in a greenlet of its own, every
wait in it bounded, and the pool hears of the environment's end when it is over.

Extensions hook in at five points: init starts by launching them and waits until they have registered before the
runtime starts; init ends only when the runtime and every extension wait in their ``/next``; each delivery hands
INVOKE to its subscribers; an invoke is over only when the runtime and every INVOKE subscriber are back (its caller
has had its response long before); a reset sends SHUTDOWN and gives them two seconds.
"""

from __future__ import annotations

import logging
import time
from typing import Final, Protocol

import gevent
import gevent.event

from pyrie_core.address import Address
from pyrie_core.lambda_errors import FunctionError
from pyrie_core.machine import Machine
from runtime_api.host import RegisteredExtension, RuntimeInvocation
from runtime_api.runtime_states import RuntimeState
from supervisor.config import Config
from supervisor.environment.environment_states import EnvState, environment_machine
from supervisor.environment.extension_set import (
    SHUTDOWN_DEADLINE_S,
    Extension,
    ExtensionSet,
    LaunchError,
    ShutdownReason,
    extension_paths,
)
from supervisor.environment.failures import Failures
from supervisor.environment.init_phase import InitPhase
from supervisor.environment.invoke_slot import InvokeSlot
from supervisor.environment.runtime_host import RuntimeSide
from supervisor.environment.runtime_process import RuntimeProcess
from supervisor.invocation import Invocation
from supervisor.observe.function_log import FunctionLog
from supervisor.observe.platform_reporter import PlatformReporter
from supervisor.observe.telemetry_hub import TelemetryHub
from supervisor.reactor import Reactor

__all__ = ["Environment", "EnvironmentObserver"]

log = logging.getLogger(__name__)

# When an environment is torn down, its processes get SIGTERM and this long before SIGKILL.
KILL_GRACE_S: Final = 0.3
# A streamed response cut short by a runtime that then exits within this time is reported as its exit.
BROKEN_STREAM_GRACE_S: Final = 0.2
# With extensions, a reset gives the runtime SIGTERM and 30 % of the shutdown budget before SIGKILL
# (rie-behaviour.md §5.3: runtimeDeadlineShare); telemetry subscribers get this long to take what is buffered.
RUNTIME_SHUTDOWN_SHARE: Final = 0.3
TELEMETRY_FLUSH_S: Final = 0.5
# The longest a teardown takes: telemetry, then the extensions' SHUTDOWN budget, then killing what is left.
TEARDOWN_S: Final = TELEMETRY_FLUSH_S + SHUTDOWN_DEADLINE_S + 2 * KILL_GRACE_S + 1.0


class EnvironmentObserver(Protocol):
    """The pool's view of an environment's life; told from the reactor, never from inside the environment."""

    def environment_idle(self, env: Environment) -> None:
        """``env`` finished its invoke (or its init) and has nothing to do."""
        ...

    def environment_gone(self, env: Environment, orphan: Invocation | None) -> None:
        """``env`` is finished; ``orphan`` is an invoke it had accepted but never delivered, to place elsewhere."""
        ...


class Environment:
    def __init__(
        self,
        index: int,
        config: Config,
        function_log: FunctionLog,
        reactor: Reactor,
        observer: EnvironmentObserver,
        *,
        generation: int = 0,
    ) -> None:
        self.index = index
        self.name = f"environment-{index}"
        self.generation = generation  # the pool's code generation when this environment started (--watch)
        self._config = config
        self._reactor = reactor
        self._observer = observer
        self.machine: Machine[EnvState] = environment_machine(self.name)
        self.address: Address | None = None  # its Runtime API, once bound
        self._settling = False  # a settle is asked for and has not run yet
        self.gone = gevent.event.Event()
        self.telemetry = TelemetryHub()
        self._report = PlatformReporter(function_log, config.function, self.telemetry)
        self._init = InitPhase(self.name, config.init_timeout_s, self._report, self._init_timed_out)
        self.extensions = ExtensionSet(
            index=index,
            function=config.function,
            paths=extension_paths(config.extensions_dir),
            on_output=lambda line: self._report.extension_output(line, self.slot.current),
            on_exit=self._extension_exited,
            on_ready=self._settle_soon,
            wait_for_room=function_log.wait_for_room,
        )
        self.slot = InvokeSlot(config.function, self._report, self.extensions, self._timed_out)
        self.runtime_side = RuntimeSide(config.function, config.limits, self.extensions, self.telemetry, self)
        self._failures = Failures(self, config.function, self.slot, self._report, self._init)
        self._runtime = RuntimeProcess(
            index,
            config.function,
            on_output=lambda line: self._report.function_output(line, self.slot.current),
            on_exit=self._runtime_exited,
            wait_for_room=function_log.wait_for_room,
            working=lambda: self.machine.state is not EnvState.IDLE,
            on_out_of_memory=self._out_of_memory,
        )

    # -- what the pool sees ---------------------------------------------------------------------------------------

    @property
    def state(self) -> EnvState:
        return self.machine.state

    @property
    def runtime_state(self) -> RuntimeState:
        return self.runtime_side.runtime.state

    @property
    def current(self) -> Invocation | None:
        return self.slot.current

    @property
    def pending(self) -> Invocation | None:
        return self.slot.pending

    @property
    def initialising(self) -> bool:
        return self.machine.state is EnvState.STARTING

    @property
    def closing(self) -> bool:
        return self.machine.state in (EnvState.RESETTING, EnvState.GONE)

    @property
    def started(self) -> bool:
        return self._init.started

    @property
    def accepting(self) -> bool:
        """Whether ``assign`` may be called: the environment is free, or about to be (its invoke is answered)."""
        if self.slot.pending is not None:
            return False
        state = self.machine.state
        if state is EnvState.IDLE or state is EnvState.STARTING:
            return True
        current = self.slot.current
        return state is EnvState.INVOKING and current is not None and current.finished.is_set()

    def bind(self, address: Address) -> Address:
        """Listen for the Runtime API on ``address``; ``OSError`` if it is taken. Returns the address bound."""
        self.address = self.runtime_side.serve(address)
        return self.address

    def start(self, eager: bool = False) -> None:
        """Begin init: launch the extensions, and once they have registered, spawn the runtime (init ends when the
        runtime and every extension wait in their ``/next``). ``bind`` first."""
        assert self.address is not None, "bind() before start()"
        self._init.begin(eager)
        try:
            self.extensions.launch(self._config.function.extension_env(self.address))
        except LaunchError as exc:
            self._failures.init_failed("Extension.LaunchError", str(exc))
            return
        if self.extensions.all_registered.is_set():
            self._start_runtime(self.address)
        else:
            gevent.spawn(self._start_runtime_once_registered, self.address)

    def assign(self, invocation: Invocation) -> None:
        """Take ``invocation``; it is delivered when the runtime is (or next gets) to ``/next``."""
        assert self.accepting, f"{self.name} is not accepting invokes"
        self.slot.pending = invocation
        if self.machine.state is EnvState.IDLE:
            self._deliver()
        else:
            log.debug("%s: %s waits for the environment (%s)", self.name, invocation, self.machine.state.value)

    def withdraw(self, invocation: Invocation) -> bool:
        """Give back ``invocation`` if it is still waiting here, not yet delivered; whether it was."""
        if self.slot.pending is not invocation:
            return False
        self.slot.take_pending()
        return True

    def retire(self, reason: str) -> None:
        """End an environment that has nothing to do (idle timeout, changed code, pyrie's shutdown)."""
        self.reset(reason, ShutdownReason.SPINDOWN)

    def reset(self, reason: str, shutdown_reason: ShutdownReason = ShutdownReason.FAILURE) -> None:
        """Tear the environment down: fail what it still owes now, then (in a greenlet of its own) SHUTDOWN to its
        extensions, SIGTERM and SIGKILL to its processes, and tell the pool it is gone."""
        if self.closing:
            return
        log.debug("%s: reset (%s)", self.name, reason)
        self.machine.transition(EnvState.RESETTING)  # any -> RESETTING
        self.runtime_side.close()  # a /next waiting for an invoke gives up
        self.extensions.all_registered.set()  # init waits no more
        self._init.cancel_timer()
        current = self.slot.finish()
        if current is not None:
            current.fail_platform(FunctionError.EXIT, f"Runtime exited with error: {reason}")
            self.end_report(current)
        gevent.spawn(self._teardown, shutdown_reason)

    # -- init -----------------------------------------------------------------------------------------------------

    def _start_runtime_once_registered(self, address: Address) -> None:
        self.extensions.all_registered.wait()
        if self.initialising:
            self._start_runtime(address)

    def _start_runtime(self, address: Address) -> None:
        try:
            self._runtime.start(address)
        except OSError as exc:
            command = self._config.function.command[0]
            self._failures.init_failed(FunctionError.INVALID_ENTRYPOINT, f"fork/exec {command}: {exc.strerror}")

    def _init_timed_out(self) -> None:
        self._failures.init_timed_out()

    # -- facts, as the Runtime API and the processes report them (RuntimeEvents) --------------------------------

    def runtime_ready(self) -> None:
        """The runtime waits in ``/next``: its init or its invoke is done once the extensions are back too."""
        state = self.machine.state
        if state is EnvState.STARTING:
            self._init.runtime_ready(self.extensions)
        elif state is EnvState.INVOKING and self.slot.current is not None:
            self._runtime.flush_output()
            self.extensions.flush_output()  # what it printed comes before its runtimeDone
            self._report.runtime_done(self.slot.current, time.monotonic())
        self._settle_soon()

    def response_started(self, invocation: RuntimeInvocation) -> None:
        if invocation is self.slot.current:
            self.slot.current.response_started = time.monotonic()

    def stream_broken(self, invocation: RuntimeInvocation) -> None:
        self._failures.stream_broken(invocation)

    def init_failed(self, error_type: str, body: bytes) -> None:
        self._failures.init_error(error_type, body)

    def extension_failed(self, registered: RegisteredExtension, fatal_type: str, error_type: str) -> None:
        extension = self.extensions.find(registered.id)
        if extension is not None:
            self._failures.extension_reported(extension, fatal_type, error_type)

    def _runtime_exited(self, returncode: int) -> None:
        if not self.closing:  # else we killed it
            self.runtime_side.drain()
            self._failures.runtime_exited(returncode)

    def _timed_out(self, invocation: Invocation) -> None:
        self._failures.timed_out(invocation)

    def _out_of_memory(self, used_mb: int) -> None:
        self._failures.out_of_memory(used_mb)

    def _extension_exited(self, extension: Extension, returncode: int) -> None:
        if not self.closing:  # else we stopped it
            self._failures.extension_exited(extension, returncode)

    # -- the work the facts imply, run from the reactor -----------------------------------------------------------

    def _settle_soon(self) -> None:
        if not self._settling:
            self._settling = True
            self._reactor.soon(self._settle)

    def _settle(self) -> None:
        """End init or the current invoke once the runtime and the extensions are all back, then go on."""
        self._settling = False
        if self.runtime_state is not RuntimeState.READY:
            return
        state = self.machine.state
        if state is EnvState.STARTING and self.extensions.all_ready():
            self._runtime.sample_memory()  # what init left resident: the floor of every REPORT
            self._init.done(self.extensions, self.telemetry)
            self.machine.transition(EnvState.IDLE)  # STARTING -> IDLE
        elif state is EnvState.INVOKING and self.extensions.invoke_done():
            invocation = self.slot.finish()
            if invocation is not None:
                self.end_report(invocation)
            self.machine.transition(EnvState.IDLE)  # INVOKING -> IDLE
        else:
            return
        if self.slot.pending is not None:
            self._deliver()
        else:
            self._reactor.soon(self._observer.environment_idle, self)

    def _deliver(self) -> None:
        self.machine.transition(EnvState.INVOKING)  # IDLE -> INVOKING
        self.runtime_side.hand_over(self.slot.deliver())

    # -- teardown -------------------------------------------------------------------------------------------------

    def _teardown(self, shutdown_reason: ShutdownReason) -> None:
        if self.extensions.present:
            # The Runtime API stays up meanwhile: extensions take their SHUTDOWN from /event/next.
            self.telemetry.flush(TELEMETRY_FLUSH_S)
            runtime = gevent.spawn(self._runtime.stop, RUNTIME_SHUTDOWN_SHARE * SHUTDOWN_DEADLINE_S)
            self.extensions.shutdown(shutdown_reason)
            runtime.join()
        else:
            self._runtime.stop(KILL_GRACE_S)
        self.runtime_side.stop_serving()
        self.telemetry.stop()
        self.machine.transition(EnvState.GONE)  # RESETTING -> GONE
        self.gone.set()
        self._reactor.soon(self._observer.environment_gone, self, self.slot.take_pending())

    # -- helpers --------------------------------------------------------------------------------------------------

    def end_report(self, invocation: Invocation) -> None:
        """END and REPORT of ``invocation``, after the lines its runtime and extensions printed."""
        if invocation.runtime_done is None or self.extensions.present:
            self._runtime.flush_output()
            self.extensions.flush_output()
        self._report.end_report(invocation, self._runtime.peak_mb, self._init.take_duration(), time.monotonic())

    def __repr__(self) -> str:
        return f"<Environment {self.name} {self.machine.state.name} runtime={self.runtime_state.name}>"
