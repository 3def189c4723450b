"""An execution environment: a runtime process, its Runtime API server, its extensions, and the invokes it runs.

The environment is the one place that decides what happens to it. Its Runtime API's handlers report what the runtime
and the extensions do (``runtime_api.host.RuntimeHost``: the runtime waits in ``/next``, begins or ends an answer,
posts an init error; an extension waits for its next event or reports an error); its processes report that they
exited or outgrew their memory, its timers that a deadline passed. For each fact the environment moves its machines
(the lifecycle of ``supervisor.environment.environment_states``, which the pool sees, and the runtime's of
``runtime_api.runtime_states``), refuses what the Runtime API refuses, and decides what the fact costs. Its parts
each keep one thing and call nobody back: ``InitPhase`` times and reports init, ``RuntimeProcess`` (with its
``MemoryGuard``) runs the runtime, ``ExtensionSet`` the extensions, ``PlatformReporter`` writes what happens. How it
holds invokes is its subclass's: one at a time, as Lambda's default model
(``supervisor.environment.serial_environment``; with SnapStart's restore before the first,
``supervisor.environment.snapstart_environment``), or several at once, as Lambda Managed Instances
(``supervisor.environment.concurrent_environment``).

What happens is recorded where it happens, and the work it implies runs afterwards from the supervisor's loop
(``supervisor.reactor``): the runtime's ``/next`` records that it is back, and ``settle`` then ends init or an
invoke (END, REPORT) and delivers the next one or tells the pool the environment has room. Failures (a crash, a
timeout, running out of memory, an init error) fail what they cost at once, in Lambda's words (``Runtime.ExitError``
"Runtime exited with error: exit status 1", ``Sandbox.Timedout`` "Task timed out after 3.00 seconds",
``Runtime.OutOfMemory``, ``Extension.Crash``, ``Runtime.TruncatedResponse``, and the init errors a runtime or an
extension reports itself): a failure during init fails the invoke that waited for it (with its own START, END and
REPORT) and reports the init as failed; one during an invoke fails that invoke. Those that end the environment
``reset`` it (in the concurrent model a timeout or a worker's death fails its invoke alone): the teardown (SHUTDOWN
to the extensions, SIGTERM then SIGKILL to the processes) runs in a greenlet of its own, every wait in it bounded,
and the pool hears of the environment's end when it is over.

Init starts by launching the extensions and waits until they have registered before the runtime starts; it ends only
when the runtime and every extension wait in their ``/next``; a reset sends SHUTDOWN and gives them two seconds.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Final, Protocol

import gevent
import gevent.event

from pyrie_core.address import Address
from pyrie_core.lambda_errors import FunctionError, exit_description
from pyrie_core.limits import Limits
from pyrie_core.machine import InvalidTransition, Machine
from runtime_api.extension_states import ExtensionState
from runtime_api.host import ContainerCredentials, RegisteredExtension, ReportedError, RuntimeRefusal
from runtime_api.registration import ExtensionEvent
from runtime_api.runtime_api_server import Parking, RuntimeApiServer
from runtime_api.runtime_states import RuntimeState, runtime_machine
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
from supervisor.environment.init_phase import InitPhase
from supervisor.environment.runtime_process import RuntimeProcess
from supervisor.invocation import Invocation
from supervisor.observe.function_log import FunctionLog
from supervisor.observe.platform_reporter import PlatformReporter
from supervisor.observe.telemetry_events import Status
from supervisor.observe.telemetry_hub import TelemetryHub
from supervisor.processes.containment import EnvironmentProcesses
from supervisor.reactor import Reactor
from supervisor.timers import Timer

__all__ = ["BROKEN_STREAM_GRACE_S", "DRAIN_S", "Environment", "EnvironmentObserver", "runtime_exit_message"]

log = logging.getLogger(__name__)

# When an environment is torn down, its processes get SIGTERM and this long before SIGKILL.
KILL_GRACE_S: Final = 0.3
# With extensions, a reset gives the runtime SIGTERM and 30 % of the shutdown budget before SIGKILL
# (rie-behaviour.md §5.3: runtimeDeadlineShare); telemetry subscribers get this long to take what is buffered.
RUNTIME_SHUTDOWN_SHARE: Final = 0.3
TELEMETRY_FLUSH_S: Final = 0.5
# The longest a teardown takes: telemetry, then the extensions' SHUTDOWN budget, then killing what is left.
TEARDOWN_S: Final = TELEMETRY_FLUSH_S + SHUTDOWN_DEADLINE_S + 2 * KILL_GRACE_S + 1.0
# After a runtime exits, what it sent last is read for at most this long before its exit is judged.
DRAIN_S: Final = 1.0
# A streamed response cut short by a runtime that then exits within this time is reported as its exit; one whose
# runtime neither exits nor comes back to /next by then is reported truncated.
BROKEN_STREAM_GRACE_S: Final = 0.2
# While it is in these states an environment works, and its memory is watched.
_WORKING: Final = frozenset({EnvState.STARTING, EnvState.RESTORING, EnvState.INVOKING})
# A runtime waiting in /next, or (SnapStart) in /restore/next, has finished its init.
_INITIALISED: Final = frozenset({RuntimeState.READY, RuntimeState.RESTORE_READY})
# The state an extension's error report moves it to.
_EXTENSION_ERRORS: Final = {
    "Extension.InitError": ExtensionState.INIT_ERROR,
    "Extension.ExitError": ExtensionState.EXIT_ERROR,
}


class EnvironmentObserver(Protocol):
    """The pool's view of an environment's life; told from the reactor, never from inside the environment."""

    def environment_idle(self, env: Environment) -> None:
        """``env`` finished its invoke (or its init) and has nothing to do."""
        ...

    def environment_gone(self, env: Environment, orphans: list[Invocation]) -> None:
        """``env`` is finished; ``orphans`` are invokes it had accepted but never delivered, to place elsewhere."""
        ...


class Invokes(Protocol):
    """How an environment holds its invokes, as the part common to every model sees it."""

    def delivered(self) -> list[Invocation]:
        """The invokes the runtime has and has not answered yet."""
        ...

    def take_waiting(self) -> list[Invocation]:
        """The invokes not delivered yet, which leave the environment."""
        ...

    def finish_all(self) -> list[Invocation]:
        """Every invoke still delivered (the environment is going): none is running any more."""
        ...


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
        self.runtime: Machine[RuntimeState] = runtime_machine()  # the runtime's, as its Runtime API moves it
        self.address: Address | None = None  # its Runtime API, once bound
        self._server: RuntimeApiServer | None = None
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
            wait_for_room=function_log.wait_for_room,
            invoke_events=config.function.concurrency is None,
            members=processes,
        )
        self.slot = self._make_invokes()
        self._runtime = RuntimeProcess(
            index,
            config.function,
            on_output=lambda line: self._report.function_output(line, self.output_owner),
            on_exit=self._runtime_exited,
            wait_for_room=function_log.wait_for_room,
            on_out_of_memory=self._out_of_memory,
            members=processes,
        )

    # -- what the pool sees ---------------------------------------------------------------------------------------

    @property
    def state(self) -> EnvState:
        return self.machine.state

    @property
    def runtime_state(self) -> RuntimeState:
        return self.runtime.state

    @abstractmethod
    def _make_invokes(self) -> Invokes: ...

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
        server = RuntimeApiServer(address, self)
        self.address = server.start()
        self._server = server
        return self.address

    def start(self, eager: bool = False) -> None:
        """Begin init: launch the extensions, and once they have registered, spawn the runtime (init ends when the
        runtime and every extension wait in their ``/next``). ``bind`` first."""
        assert self.address is not None, "bind() before start()"
        self._init.begin(eager)
        try:
            self.extensions.launch(self._config.function.extension_env(self.address))
        except LaunchError as exc:
            self._fail_init("Extension.LaunchError", str(exc))
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
        self._move(EnvState.RESETTING)  # any -> RESETTING
        self._close()  # a /next waiting for an invoke gives up
        self.extensions.all_registered.set()  # init waits no more
        self._init.cancel_timer()
        for invocation in self.slot.finish_all():
            invocation.fail_platform(FunctionError.EXIT, f"Runtime exited with error: {reason}")
            self.end_report(invocation)
        gevent.spawn(self._teardown, shutdown_reason)

    def _move(self, target: EnvState) -> None:
        """The environment's own transition; its memory is watched while it works, not while it is idle."""
        self.machine.transition(target)
        self._runtime.watch_memory(target in _WORKING)

    @abstractmethod
    def _close(self) -> None:
        """The environment is going: every Runtime API call waiting for it gives up."""

    # -- what its Runtime API's handlers read (RuntimeHost) -------------------------------------------------------

    @property
    def function(self) -> FunctionConfig:
        return self._config.function

    @property
    def limits(self) -> Limits:
        return self._config.limits

    @property
    def init_caching(self) -> bool:
        """Init caching is SnapStart's (``supervisor.environment.snapstart_environment``)."""
        return False

    def credentials(self, token: str) -> ContainerCredentials | None:
        return None

    @property
    def _parking(self) -> Parking:
        """Where a Runtime API call that waits for the environment is parked: its server (``runtime_api_server``)."""
        assert self._server is not None, "the Runtime API is served once bound"
        return self._server

    # -- facts from the Runtime API (RuntimeHost); each model adds /next and how answers find their invokes -------

    @abstractmethod
    def next_invocation(self, peer: tuple[str, int]) -> Invocation:
        """``/next``: wait until an invoke is delivered to this caller."""

    @abstractmethod
    def _answering(self, request_id: str) -> tuple[Invocation, Machine[RuntimeState]]:
        """The invoke ``request_id`` names and the machine its answer moves; ``RuntimeRefusal`` when there is none
        to answer."""

    def answer_begins(self, request_id: str, error: bool) -> Invocation:
        invocation, machine = self._answering(request_id)
        target = RuntimeState.INVOCATION_ERROR_RESPONSE if error else RuntimeState.INVOCATION_RESPONSE
        try:
            machine.transition(target)
        except InvalidTransition as refused:
            raise RuntimeRefusal.refused_transition(refused) from None
        invocation.response_started = time.monotonic()
        return invocation

    @abstractmethod
    def answer_ends(self, request_id: str) -> None:
        """The answer for ``request_id`` is complete (or was refused): its machine is ResponseSent."""

    def stream_broken(self, request_id: str) -> None:
        """If the runtime exits now, that is reported as its exit; a runtime that lives on merely cut its response
        short (reported truncated as soon as it is back at ``/next``, at the latest after BROKEN_STREAM_GRACE_S)."""
        for invocation in self.slot.delivered():
            if invocation.request_id == request_id:
                Timer(BROKEN_STREAM_GRACE_S, self._truncated, invocation)

    def init_failed(self, error: ReportedError) -> None:
        try:
            self.runtime.transition(RuntimeState.INIT_ERROR)
        except InvalidTransition as refused:
            raise RuntimeRefusal.refused_transition(refused) from None
        self._end_init(Status.ERROR, error.init_type, lambda invocation: invocation.fail(error.init_type, error.body))

    def restore_next(self) -> None:
        raise AssertionError("routed only with init caching")

    def restore_failed(self, error: ReportedError) -> None:
        raise AssertionError("routed only with init caching")

    @abstractmethod
    def disconnected(self, peer: tuple[str, int]) -> None:
        """The connection from ``peer`` has closed: what the model ties to connections goes with it."""

    def extension_waits(self, registered: RegisteredExtension) -> ExtensionEvent:
        """``/event/next``: the extension is Ready again; once every one is (and the runtime is back), init or the
        invoke may be over. Its next event is handed to it when there is one."""
        extension = self._extension(registered)
        try:
            extension.machine.transition(ExtensionState.READY)
        except InvalidTransition as refused:
            raise RuntimeRefusal.refused_extension_transition(refused, extension.id) from None
        self._settle_soon()
        return extension.next_event(self._parking)

    def extension_failed(self, registered: RegisteredExtension, fatal_type: str, error_type: str) -> None:
        """The first error an extension reports counts; during init it fails the init."""
        extension = self._extension(registered)
        try:
            extension.machine.transition(_EXTENSION_ERRORS[fatal_type])
        except InvalidTransition as refused:
            raise RuntimeRefusal.refused_extension_transition(refused, extension.id) from None
        if extension.fatal is not None:
            return
        extension.fatal = fatal_type
        log.info("%s: extension %s reported %s (%s)", self.name, extension.name, fatal_type, error_type)
        if self.initialising:
            self._fail_init(fatal_type, f"Extension {extension.name} reported {fatal_type}: {error_type}")

    def _extension(self, registered: RegisteredExtension) -> Extension:
        extension = self.extensions.find(registered.id)
        if extension is None:  # the handler found it in this registry
            raise RuntimeRefusal(403, "Extension.UnknownExtensionIdentifier", f"Unknown extension {registered.id}")
        return extension

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
            self._fail_init(FunctionError.INVALID_ENTRYPOINT, f"fork/exec {command}: {exc.strerror}")

    def _init_timed_out(self) -> None:
        if self.initialising:
            message = f"Init timed out after {self._init.timeout_s:.2f} seconds"
            self._fail_init(FunctionError.TIMEOUT, message, Status.TIMEOUT)

    def _fail_init(self, error_type: str, message: str, status: Status = Status.FAILURE) -> None:
        """Init failed, as pyrie saw it (a crash, a timeout, an extension's error): Lambda's JSON error body."""
        self._end_init(status, error_type, lambda invocation: invocation.fail_platform(error_type, message))

    def _end_init(self, status: Status, error_type: str, fail: Callable[[Invocation], None]) -> None:
        """Report the failed init, fail the invoke that waited for it (with its START, END and REPORT), reset."""
        runtime_unreported = self.runtime.state in (RuntimeState.STARTED, RuntimeState.INIT_ERROR)
        self._init.failed(status, error_type, runtime_unreported)
        for invocation in self.slot.take_waiting():
            fail(invocation)
            self._report.start(invocation)
            self.end_report(invocation)
        self.reset(f"init failed: {error_type}", ShutdownReason.SPINDOWN)

    # -- facts from its processes and timers ----------------------------------------------------------------------

    def _runtime_exited(self, returncode: int) -> None:
        if self.closing:  # we killed it
            return
        self._drain()
        description = exit_description(returncode)
        log.info("%s: runtime exited (%s)", self.name, description)
        self._process_died(FunctionError.EXIT, runtime_exit_message(returncode), description)

    def _drain(self) -> None:
        """What the runtime sent before it exited (a response, its last chunks) may still wait in its sockets: let
        every connection that is not parked (the runtime's in /next, the extensions' in /event/next, a streamed
        response waiting for its client) read to its end, for at most ``DRAIN_S``."""
        if self._server is not None:
            self._server.wait_quiet(DRAIN_S)

    def _extension_exited(self, extension: Extension, returncode: int) -> None:
        if self.closing:  # we stopped it
            return
        description = exit_description(returncode)
        log.info("%s: extension %s exited (%s)", self.name, extension.name, description)
        if returncode == 0:
            message = f"Extension {extension.name} exited without providing a reason"
        else:
            message = f"Extension {extension.name} exited with error: {description}"
        self._process_died(extension.fatal or "Extension.Crash", message, message)

    def _process_died(self, error_type: str, message: str, reason: str) -> None:
        if self.initialising:
            self._fail_init(error_type, message)
            return
        for invocation in self.slot.delivered():
            invocation.fail_platform(error_type, message)
        self.reset(reason)

    def _out_of_memory(self, used_mb: int) -> None:
        """The tree went past the function's memory size: Lambda kills the environment (its cgroup limit)."""
        memory_mb = self._config.function.memory_mb
        log.info("%s: %d MB used of %d MB: killed (out of memory)", self.name, used_mb, memory_mb)
        message = "Runtime exited with error: signal: killed"
        if self.initialising:  # the invokes that waited for the init fail with it
            self._fail_init(FunctionError.OUT_OF_MEMORY, message)
            return
        # Only what the runtime was running fails: an invoke still waiting for it goes back to the pool with the
        # environment's end, like every invoke an environment took and never delivered.
        for invocation in self.slot.delivered():
            invocation.fail_platform(FunctionError.OUT_OF_MEMORY, message)
        self.reset("out of memory")

    def _timed_out(self, invocation: Invocation) -> None:
        message = f"Task timed out after {self._config.function.timeout_s:.2f} seconds"
        invocation.fail_platform(FunctionError.TIMEOUT, message)
        self._report.timed_out(invocation, message)
        self._invoke_timed_out(invocation)

    @abstractmethod
    def _invoke_timed_out(self, invocation: Invocation) -> None:
        """``invocation`` has failed with its timeout: what that does to the environment."""

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
            self._move(EnvState.IDLE)  # STARTING -> IDLE
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
        if self._server is not None:
            self._server.stop()
        self.telemetry.stop()
        self._move(EnvState.GONE)  # RESETTING -> GONE
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

    @staticmethod
    def _truncated(invocation: Invocation) -> None:
        """``invocation``'s response was cut short (nothing if it has ended otherwise meanwhile)."""
        invocation.fail_platform(FunctionError.TRUNCATED_RESPONSE, "Runtime closed the response stream before its end")

    def _take_restore_duration(self) -> float | None:
        """The ``Restore Duration`` of the first REPORT after a restore (SnapStart); none here."""
        return None

    def __repr__(self) -> str:
        return f"<Environment {self.name} {self.machine.state.name} runtime={self.runtime_state.name}>"


def runtime_exit_message(returncode: int) -> str:
    """Lambda's words for a runtime (or one of its workers) that exited with ``returncode`` (minus the signal)."""
    if returncode == 0:
        return "Runtime exited without providing a reason"
    return f"Runtime exited with error: {exit_description(returncode)}"
