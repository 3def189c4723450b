"""An execution environment: a runtime process, its Runtime API server, its extensions, and the invokes it runs.

The environment follows its lifecycle machine (``supervisor.environment.environment_states``), which the pool sees.
Its parts each do one job: ``InitPhase`` times and reports init, ``MemoryGuard`` (in ``RuntimeProcess``) watches
memory, ``ExtensionSet`` runs the extensions, ``PlatformReporter`` writes what happens, ``Failures`` decides what a
failure costs. How it holds invokes is its subclass's: one at a time, as Lambda's default model
(``supervisor.environment.serial_environment``; with SnapStart's restore before the first,
``supervisor.environment.snapstart_environment``), or several at once, as Lambda Managed Instances
(``supervisor.environment.concurrent_environment``).

What happens is recorded where it happens, and the work it implies runs afterwards from the supervisor's loop
(``supervisor.reactor``): the runtime's ``/next`` records that it is back, and ``settle`` then ends init or an
invoke (END, REPORT) and delivers the next one or tells the pool the environment has room. Failures (a crash, a
timeout, running out of memory, an init error) fail what they cost at once (``Failures``), and those that end the
environment ``reset`` it (in the concurrent model a timeout or a worker's death fails its invoke alone): the teardown
(SHUTDOWN to the extensions, SIGTERM then SIGKILL to the processes) runs in a greenlet of its own, every wait in it
bounded, and the pool hears of the environment's end when it is over.

Init starts by launching the extensions and waits until they have registered before the runtime starts; it ends only
when the runtime and every extension wait in their ``/next``; a reset sends SHUTDOWN and gives them two seconds.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from typing import Final, Protocol

import gevent
import gevent.event

from pyrie_core.address import Address
from pyrie_core.lambda_errors import FunctionError
from pyrie_core.limits import Limits
from pyrie_core.machine import Machine
from runtime_api.host import RegisteredExtension, RuntimeInvocation
from runtime_api.runtime_states import RuntimeState
from supervisor.config import Config, FunctionConfig
from supervisor.environment.environment_states import EnvState, environment_machine
from supervisor.environment.extension_set import (
    SHUTDOWN_DEADLINE_S,
    Extension,
    ExtensionSet,
    LaunchError,
    ShutdownReason,
    extension_paths,
)
from supervisor.environment.failures import Failures, HeldInvokes
from supervisor.environment.init_phase import InitPhase
from supervisor.environment.runtime_process import RuntimeProcess
from supervisor.invocation import Invocation
from supervisor.observe.function_log import FunctionLog
from supervisor.observe.platform_reporter import PlatformReporter
from supervisor.observe.telemetry_hub import TelemetryHub
from supervisor.processes.containment import EnvironmentProcesses
from supervisor.reactor import Reactor

__all__ = ["Environment", "EnvironmentObserver"]

log = logging.getLogger(__name__)

# When an environment is torn down, its processes get SIGTERM and this long before SIGKILL.
KILL_GRACE_S: Final = 0.3
# With extensions, a reset gives the runtime SIGTERM and 30 % of the shutdown budget before SIGKILL
# (rie-behaviour.md §5.3: runtimeDeadlineShare); telemetry subscribers get this long to take what is buffered.
RUNTIME_SHUTDOWN_SHARE: Final = 0.3
TELEMETRY_FLUSH_S: Final = 0.5
# The longest a teardown takes: telemetry, then the extensions' SHUTDOWN budget, then killing what is left.
TEARDOWN_S: Final = TELEMETRY_FLUSH_S + SHUTDOWN_DEADLINE_S + 2 * KILL_GRACE_S + 1.0
# A runtime waiting in /next, or (SnapStart) in /restore/next, has finished its init.
_INITIALISED: Final = frozenset({RuntimeState.READY, RuntimeState.RESTORE_READY})


class EnvironmentObserver(Protocol):
    """The pool's view of an environment's life; told from the reactor, never from inside the environment."""

    def environment_idle(self, env: Environment) -> None:
        """``env`` finished its invoke (or its init) and has nothing to do."""
        ...

    def environment_gone(self, env: Environment, orphans: list[Invocation]) -> None:
        """``env`` is finished; ``orphans`` are invokes it had accepted but never delivered, to place elsewhere."""
        ...


class Invokes(HeldInvokes, Protocol):
    """How an environment holds its invokes, as the part common to every model sees it."""

    def finish_all(self) -> list[Invocation]:
        """Every invoke still delivered (the environment is going): none is running any more."""
        ...


class RuntimeEndpoint(Protocol):
    """An environment's Runtime API, as the part common to every model uses it."""

    @property
    def runtime(self) -> Machine[RuntimeState]: ...

    def serve(self, address: Address) -> Address: ...

    def stop_serving(self) -> None: ...

    def drain(self) -> None: ...

    def close(self) -> None: ...


class Environment(ABC):
    def __init__(
        self,
        index: int,
        config: Config,
        function_log: FunctionLog,
        reactor: Reactor,
        observer: EnvironmentObserver,
        *,
        processes: EnvironmentProcesses,
        generation: int = 0,
        tenant: str | None = None,
    ) -> None:
        self.index = index
        self.name = f"environment-{index}"
        self.generation = generation  # the pool's code generation when this environment started (--watch)
        self.tenant = tenant  # the only tenant it serves, with tenant isolation
        self._config = config
        self._reactor = reactor
        self._observer = observer
        self._processes = processes  # every process it starts, however they detach (supervisor.processes.containment)
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
            on_output=lambda line: self._report.extension_output(line, self.output_owner),
            on_exit=self._extension_exited,
            on_ready=self._settle_soon,
            wait_for_room=function_log.wait_for_room,
            invoke_events=config.function.concurrency is None,
            members=processes,
        )
        self.slot = self._make_invokes()
        self.runtime_side = self._make_runtime_side(config.function, config.limits)
        self._failures = Failures(self, config.function, self.slot, self._report, self._init)
        self._runtime = RuntimeProcess(
            index,
            config.function,
            on_output=lambda line: self._report.function_output(line, self.output_owner),
            on_exit=self._runtime_exited,
            wait_for_room=function_log.wait_for_room,
            working=lambda: self.machine.state is not EnvState.IDLE,
            on_out_of_memory=self._out_of_memory,
            members=processes,
        )

    # -- what the pool sees ---------------------------------------------------------------------------------------

    @property
    def state(self) -> EnvState:
        return self.machine.state

    @property
    def runtime_state(self) -> RuntimeState:
        return self.runtime_side.runtime.state

    @abstractmethod
    def _make_invokes(self) -> Invokes: ...

    @abstractmethod
    def _make_runtime_side(self, function: FunctionConfig, limits: Limits) -> RuntimeEndpoint: ...

    @property
    @abstractmethod
    def accepting(self) -> bool:
        """Whether ``assign`` may be called: the environment has room for one more invoke."""

    @property
    @abstractmethod
    def has_pending(self) -> bool:
        """Whether an invoke waits here to be delivered."""

    @property
    @abstractmethod
    def in_flight(self) -> int:
        """Invokes delivered to the runtime and not answered yet."""

    @property
    @abstractmethod
    def output_owner(self) -> Invocation | None:
        """The invoke the runtime's output lines belong to (its log tail), if one can tell."""

    @abstractmethod
    def assign(self, invocation: Invocation) -> None:
        """Take ``invocation``; it is delivered as soon as the runtime can take it."""

    @abstractmethod
    def is_waiting(self, invocation: Invocation) -> bool:
        """Whether ``invocation`` waits here to be delivered."""

    @abstractmethod
    def withdraw(self, invocation: Invocation) -> bool:
        """Give back ``invocation`` if it is still waiting here, not yet delivered; whether it was."""

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
    def failed_to_initialise(self) -> bool:
        """Its init failed: it never took an invoke."""
        return self._init.has_failed

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
        for invocation in self.slot.finish_all():
            invocation.fail_platform(FunctionError.EXIT, f"Runtime exited with error: {reason}")
            self.end_report(invocation)
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

    @abstractmethod
    def runtime_ready(self) -> None:
        """The runtime (or one of its workers) waits in ``/next``."""

    def response_started(self, invocation: RuntimeInvocation) -> None:
        if isinstance(invocation, Invocation):
            invocation.response_started = time.monotonic()

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

    @abstractmethod
    def invoke_timed_out(self, invocation: Invocation) -> None:
        """``invocation`` has failed with its timeout: what that does to the environment."""

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
        """End init once the runtime and the extensions are all back; then the model goes on from there."""
        self._settling = False
        if self.closing:
            return
        if self.initialising:
            if self.runtime_state not in _INITIALISED or not self.extensions.all_ready():
                return
            self._runtime.sample_memory()  # what init left resident: the floor of every REPORT
            self._init.done(self.extensions, self.telemetry)
            self.machine.transition(EnvState.IDLE)  # STARTING -> IDLE
        self._settle_invokes()

    @abstractmethod
    def _settle_invokes(self) -> None:
        """Init is over: end what is over, deliver what can be, tell the pool when there is room."""

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
        self._processes.end()  # whatever they started, however it detached
        self.runtime_side.stop_serving()
        self.telemetry.stop()
        self.machine.transition(EnvState.GONE)  # RESETTING -> GONE
        self.gone.set()
        self._reactor.soon(self._observer.environment_gone, self, self.slot.take_waiting())

    # -- helpers --------------------------------------------------------------------------------------------------

    def end_report(self, invocation: Invocation) -> None:
        """END and REPORT of ``invocation``, after the lines its runtime and extensions printed."""
        if invocation.runtime_done is None or self.extensions.present:
            self._runtime.flush_output()
            self.extensions.flush_output()
        self._report.end_report(
            invocation,
            self._runtime.peak_mb,
            self._init.take_duration(),
            time.monotonic(),
            restore_duration_ms=self._take_restore_duration(),
        )

    def _take_restore_duration(self) -> float | None:
        """The ``Restore Duration`` of the first REPORT after a restore (SnapStart); none here."""
        return None

    def __repr__(self) -> str:
        return f"<Environment {self.name} {self.machine.state.name} runtime={self.runtime_state.name}>"
