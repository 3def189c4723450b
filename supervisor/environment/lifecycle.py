"""One execution environment: a runtime process, its Runtime API server, and the invokes it runs one at a time.

The environment follows two machines. Its own lifecycle (``supervisor.states``) is what the dispatcher sees; the
runtime's protocol state (``runtime_api.states``) is moved by the Runtime API handlers, and the environment reacts
to it in ``_on_runtime_change``: the runtime's ``/next`` ends init or the previous invoke, and takes the next one.

An environment holds at most two invokes: ``current``, delivered to the runtime, and ``pending``, waiting for the
runtime's next ``/next`` (during init, or while the runtime finishes the previous invoke after answering it).

The environment watches its process tree's memory: REPORT's Max Memory Used is its peak, and a tree that grows past
the function's memory size is killed as Lambda kills it (``Runtime.OutOfMemory``).

Extensions (``supervisor.extensions``) hook in at five points: init starts by launching them and waits until they
have registered before the runtime starts; init ends only when the runtime and every extension wait in their
``/next``; each delivery hands INVOKE to its subscribers; an invoke is over (END, REPORT, the next invoke) only when
the runtime and every INVOKE subscriber are back (its caller has had its response long before); a reset sends
SHUTDOWN and gives them two seconds. What the environment reports goes through one ``PlatformReporter``.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Final, Protocol

import gevent
import gevent.event

from pyrie_core import lambda_errors as errors
from pyrie_core.address import Address
from pyrie_core.lambda_errors import FunctionError
from pyrie_core.limits import Limits
from pyrie_core.machine import Machine
from runtime_api.host import RegisteredExtension, RuntimeInvocation
from runtime_api.http_connection import ConnectionClosed
from runtime_api.runtime_api_server import RuntimeApiServer
from runtime_api.runtime_states import RuntimeState, runtime_machine
from supervisor.config import Config, FunctionConfig
from supervisor.environment.environment_states import EnvState, environment_machine
from supervisor.environment.extension_set import (
    DISABLE_EXTENSIONS_FILE,
    SHUTDOWN_DEADLINE_S,
    Extension,
    ExtensionSet,
    LaunchError,
    ShutdownReason,
    discover,
    invoke_event,
)
from supervisor.invocation import Invocation
from supervisor.observe.function_log import FunctionLog
from supervisor.observe.platform_reporter import PlatformReporter
from supervisor.observe.telemetry_events import Status
from supervisor.observe.telemetry_hub import TelemetryHub
from supervisor.processes.managed_process import ManagedProcess
from supervisor.processes.process_tree import ProcessTreeMemory
from supervisor.timers import Timer

__all__ = ["Environment", "EnvironmentObserver"]

log = logging.getLogger(__name__)

MEMORY_SAMPLE_S: Final = 0.1
# When an environment is torn down, its processes get SIGTERM and this long before SIGKILL.
KILL_GRACE_S: Final = 0.3
# After a runtime exits, what it sent last is read for at most this long before its exit is judged.
RESPONSE_DRAIN_S: Final = 1.0
DRAIN_POLL_S: Final = 0.005
# A streamed response cut short by a runtime that then exits within this time is reported as its exit.
BROKEN_STREAM_GRACE_S: Final = 0.2
# With extensions, a reset gives the runtime SIGTERM and 30 % of the shutdown budget before SIGKILL
# (rie-behaviour.md §5.3: runtimeDeadlineShare); telemetry subscribers get this long to take what is buffered.
RUNTIME_SHUTDOWN_SHARE: Final = 0.3
TELEMETRY_FLUSH_S: Final = 0.5


class EnvironmentObserver(Protocol):
    """The dispatcher's view of an environment's life."""

    def environment_idle(self, env: Environment) -> None:
        """``env`` finished its invoke (or its init) and has nothing to do."""
        ...

    def environment_gone(self, env: Environment, orphan: Invocation | None) -> None:
        """``env`` is finished; ``orphan`` is an invoke it had accepted but never delivered, to place elsewhere."""
        ...


class Environment:
    def __init__(
        self, index: int, config: Config, log_out: FunctionLog, observer: EnvironmentObserver, generation: int = 0
    ) -> None:
        self.index = index
        self.name = f"environment-{index}"
        self.generation = generation  # the dispatcher's code generation when this environment started (--watch)
        self._config = config
        self._observer = observer
        self.address: Address | None = None  # its Runtime API, once bound
        self.machine: Machine[EnvState] = environment_machine(self.name)
        self._runtime: Machine[RuntimeState] = runtime_machine(on_change=self._on_runtime_change)
        self._server: RuntimeApiServer | None = None
        self._process: ManagedProcess | None = None
        self._current: Invocation | None = None
        self.pending: Invocation | None = None
        self._delivered = gevent.event.Event()  # set while the runtime's /next has an invocation to take
        self._parked = 0  # Runtime API connections waiting in /next for an invoke
        self._timer: Timer | None = None  # the init timer, then each invoke's
        self._init_started = 0.0
        self._init_duration_ms: float | None = None  # reported on the first REPORT only (a cold start)
        self._eager = False  # started ahead of any invoke (--init-eagerly): its first invoke is no cold start
        self._memory: ProcessTreeMemory | None = None
        self.gone = gevent.event.Event()
        self.telemetry = TelemetryHub()
        self._report = PlatformReporter(log_out, config.function, self.telemetry)
        self.extensions = ExtensionSet(
            index=index,
            function=config.function,
            paths=_extension_paths(config.extensions_dir),
            on_output=lambda line: self._report.extension_output(line, self._current),
            on_exit=self._on_extension_exit,
            on_ready=self._on_extension_ready,
        )

    # -- RuntimeHost (what the Runtime API handlers use) ----------------------------------------------------------

    @property
    def function(self) -> FunctionConfig:
        return self._config.function

    @property
    def limits(self) -> Limits:
        return self._config.limits

    @property
    def runtime(self) -> Machine[RuntimeState]:
        return self._runtime

    @property
    def current(self) -> Invocation | None:
        return self._current

    def wait_for_invocation(self) -> Invocation:
        while self._runtime.state is not RuntimeState.RUNNING or self._current is None:
            if self.machine.state in (EnvState.RESETTING, EnvState.GONE):
                raise ConnectionClosed(f"{self.name} was reset")
            self._parked += 1
            try:
                self._delivered.wait()
            finally:
                self._parked -= 1
            self._delivered.clear()
        return self._current

    def init_failed(self, error_type: str, body: bytes) -> None:
        self._end_failed_init(Status.ERROR, error_type, lambda invocation: invocation.fail(error_type, body))

    def extension_failed(self, registered: RegisteredExtension, fatal_type: str, error_type: str) -> None:
        """``extension`` called ``/extension/init/error`` or ``/extension/exit/error``: the first error counts."""
        extension = self.extensions.find(registered.id)
        if extension is None:
            return
        if extension.fatal is not None:
            return
        extension.fatal = fatal_type
        log.info("%s: extension %s reported %s (%s)", self.name, extension.name, fatal_type, error_type)
        if self.machine.state is EnvState.STARTING:
            self._fail_init(fatal_type, f"Extension {extension.name} reported {fatal_type}: {error_type}")

    # -- the dispatcher's side ------------------------------------------------------------------------------------

    @property
    def state(self) -> EnvState:
        return self.machine.state

    @property
    def accepting(self) -> bool:
        """Whether ``assign`` may be called: the environment is free, or about to be (its invoke is answered)."""
        if self.pending is not None:
            return False
        state = self.machine.state
        if state is EnvState.IDLE or state is EnvState.STARTING:
            return True
        return state is EnvState.INVOKING and self._current is not None and self._current.finished.is_set()

    @property
    def runtime_state(self) -> RuntimeState:
        return self._runtime.state

    @property
    def started(self) -> bool:
        return self._init_started > 0

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
        self._eager = eager
        self._init_started = time.monotonic()
        self._timer = Timer(self._config.init_timeout_s, self._on_init_timeout)
        self._report.init_start()
        try:
            self.extensions.launch(self._config.function.extension_env(self.address))
        except LaunchError as exc:
            self._fail_init("Extension.LaunchError", str(exc))
            return
        if self.extensions.all_registered.is_set():
            self._start_runtime(self.address)
        else:
            gevent.spawn(self._start_runtime_once_registered, self.address)

    def _start_runtime_once_registered(self, address: Address) -> None:
        self.extensions.all_registered.wait()
        if self.machine.state is EnvState.STARTING:
            self._start_runtime(address)

    def _start_runtime(self, address: Address) -> None:
        function = self._config.function
        try:
            self._process = ManagedProcess(
                name=f"runtime-{self.index}",
                argv=function.command,
                cwd=function.cwd,
                env=function.runtime_env(address),
                on_output=lambda line: self._report.function_output(line, self._current),
                on_exit=self._on_exit,
            )
        except OSError as exc:
            self._fail_init(FunctionError.INVALID_ENTRYPOINT, f"fork/exec {function.command[0]}: {exc.strerror}")
            return
        self._memory = ProcessTreeMemory(self._process.pid)
        gevent.spawn(self._watch_memory, self._memory)

    def assign(self, invocation: Invocation) -> None:
        """Take ``invocation``; it is delivered when the runtime is (or next gets) to ``/next``."""
        assert self.accepting, f"{self.name} is not accepting invokes"
        self.pending = invocation
        if self.machine.state is EnvState.IDLE:
            self._deliver()
        else:
            log.debug("%s: %s waits for the environment (%s)", self.name, invocation, self.machine.state.value)

    def reset(self, reason: str, shutdown_reason: ShutdownReason = ShutdownReason.FAILURE) -> None:
        """Tear the environment down: fail what it still owes, SHUTDOWN to its extensions, end its processes
        (SIGTERM, then SIGKILL to the process groups and every descendant), and report it gone."""
        if self.machine.state in (EnvState.RESETTING, EnvState.GONE):
            return
        log.debug("%s: reset (%s)", self.name, reason)
        self.machine.transition(EnvState.RESETTING)  # any -> RESETTING
        self._delivered.set()  # a /next waiting for an invoke gives up (wait_for_invocation)
        self.extensions.all_registered.set()  # init waits no more
        self._cancel_timer()
        current, self._current = self._current, None
        if current is not None:
            if not current.finished.is_set():
                current.fail_platform(FunctionError.EXIT, f"Runtime exited with error: {reason}")
            self._log_end_report(current, time.monotonic())
        if self.extensions.present:
            # The Runtime API stays up meanwhile: extensions take their SHUTDOWN from /event/next.
            self.telemetry.flush(TELEMETRY_FLUSH_S)
            runtime = gevent.spawn(self._stop_runtime, RUNTIME_SHUTDOWN_SHARE * SHUTDOWN_DEADLINE_S)
            self.extensions.shutdown(shutdown_reason)
            runtime.join()
        else:
            self._stop_runtime(KILL_GRACE_S)
        if self._server is not None:
            self._server.stop()
        self.telemetry.stop()
        self.machine.transition(EnvState.GONE)  # RESETTING -> GONE
        self.gone.set()
        orphan, self.pending = self.pending, None
        self._observer.environment_gone(self, orphan)

    def retire(self, reason: str) -> None:
        """End an environment that has nothing to do (idle timeout, changed code, pyrie's shutdown)."""
        self.reset(reason, shutdown_reason=ShutdownReason.SPINDOWN)

    def _stop_runtime(self, grace_s: float) -> None:
        """SIGTERM, ``grace_s`` to exit, then SIGKILL to its process group and every descendant. A runtime that has
        exited already (``reset`` may run in its exit callback) only has its group killed."""
        process = self._process
        if process is None:
            return
        if not process.running:
            process.signal_group(signal.SIGKILL)
            return
        descendants = self._memory.processes() if self._memory is not None else []
        process.stop(grace_s, also=descendants)

    # -- reactions ----------------------------------------------------------------------------------------------

    def response_started(self) -> None:
        if self._current is not None:
            self._current.response_started = time.monotonic()

    def _on_runtime_change(self, previous: RuntimeState, state: RuntimeState) -> None:
        if state is not RuntimeState.READY:
            return
        if previous is RuntimeState.STARTED:
            self.extensions.close_registration()
            self._report.init_runtime_done(Status.SUCCESS)
            self._finish_init_when_ready()
        else:  # the runtime came back after answering
            if self._current is not None:
                self._flush_output()  # what it printed comes before its runtimeDone
                self._report.runtime_done(self._current, time.monotonic())
            self._finish_invoke_when_ready()

    def _on_extension_ready(self) -> None:
        if self.machine.state is EnvState.STARTING:
            self._finish_init_when_ready()
        else:
            self._finish_invoke_when_ready()

    def _finish_init_when_ready(self) -> None:
        """Init is done once the runtime waits in its first ``/next`` and every extension in ``/event/next``."""
        if self.machine.state is not EnvState.STARTING or self._runtime.state is not RuntimeState.READY:
            return
        if not self.extensions.all_ready():
            return
        self._init_duration_ms = (time.monotonic() - self._init_started) * 1000
        self._cancel_timer()
        if self._memory is not None:
            self._memory.sample()  # what init left resident: the floor of every REPORT
        for extension in self.extensions:
            self._report.extension_ready(extension.name, sorted(extension.events))
        self._report.init_report(self._init_duration_ms, Status.SUCCESS)
        self.telemetry.close_subscriptions()
        if self._eager:  # initialised ahead of demand: no invoke waited for it, so no REPORT shows it
            log.info("%s initialised in %.2f ms", self.name, self._init_duration_ms)
            self._init_duration_ms = None
        self.machine.transition(EnvState.IDLE)  # STARTING -> IDLE
        self._next_or_idle()

    def _finish_invoke_when_ready(self) -> None:
        """The invoke is over once the runtime is back in ``/next`` and every INVOKE subscriber in ``/event/next``."""
        if self.machine.state is not EnvState.INVOKING or self._runtime.state is not RuntimeState.READY:
            return
        if not self.extensions.invoke_done():
            return
        invocation, self._current = self._current, None
        self._cancel_timer()
        if invocation is not None:
            self._log_end_report(invocation, time.monotonic())
        self.machine.transition(EnvState.IDLE)  # INVOKING -> IDLE
        self._next_or_idle()

    def _next_or_idle(self) -> None:
        if self.pending is not None:
            self._deliver()
        else:
            self._observer.environment_idle(self)

    def _deliver(self) -> None:
        invocation, self.pending = self.pending, None
        assert invocation is not None
        timeout = self._config.function.timeout_s
        invocation.deliver(timeout)
        self._current = invocation
        self.machine.transition(EnvState.INVOKING)  # IDLE -> INVOKING
        self._runtime.transition(RuntimeState.RUNNING)
        self._report.start(invocation)
        if self.extensions.present:
            self.extensions.deliver_invoke(
                invoke_event(invocation.deadline_ms, invocation.request_id, self.function.arn, invocation.trace_id)
            )
        self._timer = Timer(timeout, self._on_invoke_timeout, invocation)
        self._delivered.set()

    def _on_invoke_timeout(self, invocation: Invocation) -> None:
        self._timer = None
        if invocation is not self._current:
            return
        timeout = self._config.function.timeout_s
        message = f"Task timed out after {timeout:.2f} seconds"
        invocation.fail_platform(FunctionError.TIMEOUT, message)
        self._report.timed_out(invocation, message)
        self.reset("timeout", shutdown_reason=ShutdownReason.TIMEOUT)

    def _on_init_timeout(self) -> None:
        self._timer = None
        if self.machine.state is not EnvState.STARTING:
            return
        message = f"Init timed out after {self._config.init_timeout_s:.2f} seconds"
        self._fail_init(FunctionError.TIMEOUT, message, Status.TIMEOUT)

    def stream_broken(self, invocation: RuntimeInvocation) -> None:
        """The runtime's streamed response ended without its end. If the runtime exited, that is reported as its
        exit (``_on_exit``); a runtime that lives on merely cut its response short."""
        Timer(BROKEN_STREAM_GRACE_S, self._fail_broken_stream, invocation)

    def _fail_broken_stream(self, invocation: RuntimeInvocation) -> None:
        invocation.fail_platform(FunctionError.TRUNCATED_RESPONSE, "Runtime closed the response stream before its end")

    def _on_exit(self, returncode: int) -> None:
        if self.machine.state in (EnvState.RESETTING, EnvState.GONE):
            return  # we killed it
        self._drain_runtime_api()
        description = errors.exit_description(returncode)
        if returncode == 0:
            message = "Runtime exited without providing a reason"
        else:
            message = f"Runtime exited with error: {description}"
        log.info("%s: runtime exited (%s)", self.name, description)
        if self.machine.state is EnvState.STARTING:
            self._fail_init(FunctionError.EXIT, message)
            return
        current = self._current
        if current is not None and not current.finished.is_set():
            current.fail_platform(FunctionError.EXIT, message)
        self.reset(description)

    def _on_extension_exit(self, extension: Extension, returncode: int) -> None:
        if self.machine.state in (EnvState.RESETTING, EnvState.GONE):
            return  # we stopped it
        description = errors.exit_description(returncode)
        log.info("%s: extension %s exited (%s)", self.name, extension.name, description)
        error_type = extension.fatal or "Extension.Crash"
        if returncode == 0:
            message = f"Extension {extension.name} exited without providing a reason"
        else:
            message = f"Extension {extension.name} exited with error: {description}"
        if self.machine.state is EnvState.STARTING:
            self._fail_init(error_type, message)
            return
        current = self._current
        if current is not None and not current.finished.is_set():
            current.fail_platform(error_type, message)
        self.reset(message)

    def _drain_runtime_api(self) -> None:
        """What the runtime sent before it exited (a response, its last chunks) may still wait in its sockets:
        let every connection that is not parked in /next read to its end before the exit is judged."""
        server = self._server
        if server is None:
            return
        with gevent.Timeout(RESPONSE_DRAIN_S, False):
            while server.connections > self._parked:
                gevent.sleep(DRAIN_POLL_S)

    def _watch_memory(self, memory: ProcessTreeMemory) -> None:
        """Sample the process tree while the environment works: REPORT's Max Memory Used, and the memory limit."""
        limit_mb = self._config.function.memory_mb
        while self.machine.state not in (EnvState.RESETTING, EnvState.GONE):
            if self.machine.state is not EnvState.IDLE:
                memory.sample()
                if memory.peak_mb > limit_mb:
                    self._out_of_memory(memory.peak_mb)
                    return
            gevent.sleep(MEMORY_SAMPLE_S)

    def _out_of_memory(self, used_mb: int) -> None:
        """The tree went past the function's memory size: Lambda kills the environment (its cgroup limit)."""
        log.info("%s: %d MB used of %d MB: killed (out of memory)", self.name, used_mb, self._config.function.memory_mb)
        victim = self._current if self._current is not None else self.pending
        if victim is not None and not victim.finished.is_set():
            victim.fail_platform(FunctionError.OUT_OF_MEMORY, "Runtime exited with error: signal: killed")
            if victim is self.pending:
                self.pending = None
                self._log_start_end_report(victim, time.monotonic())
        self.reset("out of memory")

    def _fail_init(self, error_type: str, message: str, status: Status = Status.FAILURE) -> None:
        self._end_failed_init(status, error_type, lambda invocation: invocation.fail_platform(error_type, message))

    def _end_failed_init(self, status: Status, error_type: str, fail: Callable[[Invocation], None]) -> None:
        """Init failed: report it, fail the invoke that waited for it (with its START, END and REPORT), reset."""
        if self._runtime.state in (RuntimeState.STARTED, RuntimeState.INIT_ERROR):
            self._report.init_runtime_done(status, error_type)
        self._report.init_report((time.monotonic() - self._init_started) * 1000, status, error_type)
        if self.pending is not None:
            invocation, self.pending = self.pending, None
            fail(invocation)
            self._log_start_end_report(invocation, time.monotonic())
        self.reset(f"init failed: {error_type}", shutdown_reason=ShutdownReason.SPINDOWN)

    # -- logging ------------------------------------------------------------------------------------------------

    def _log_start_end_report(self, invocation: Invocation, now: float) -> None:
        """START, END and REPORT of an invoke that never reached the runtime (its init failed)."""
        self._report.start(invocation)
        self._log_end_report(invocation, now)

    def _log_end_report(self, invocation: Invocation, now: float) -> None:
        function = self._config.function
        started = invocation.delivered or invocation.arrived
        duration_ms = min((now - started) * 1000, function.timeout_s * 1000)
        # The function's last lines come before its END. When its runtimeDone was reported, the runtime's output was
        # flushed right then; only extensions can have written since.
        if invocation.runtime_done is None or self.extensions.present:
            self._flush_output()
        peak_mb = self._memory.peak_mb if self._memory is not None else 0
        init_ms, self._init_duration_ms = self._init_duration_ms, None
        self._report.end_report(invocation, duration_ms, peak_mb, init_ms, now)

    def _flush_output(self) -> None:
        """Relay the lines the runtime and the extensions have written so far."""
        if self._process is not None:
            self._process.flush_output()
        for extension in self.extensions:
            if extension.process is not None:
                extension.process.flush_output()

    def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def __repr__(self) -> str:
        return f"<Environment {self.name} {self.machine.state.name} runtime={self._runtime.state.name}>"


def _extension_paths(directory: str) -> list[str] | None:
    """The external extensions to launch; ``None`` when the Go emulator's disable file turns extensions off."""
    if os.path.exists(DISABLE_EXTENSIONS_FILE):
        return None
    paths = discover(directory)
    if paths is None:
        _note_no_extensions_dir(directory)
        return []
    return paths


@functools.lru_cache(maxsize=8)
def _note_no_extensions_dir(directory: str) -> None:
    """Say it once per directory, not at every environment's start (the Go emulator's line)."""
    log.info('The extension\'s directory "%s" does not exist, assuming no extensions to be loaded.', directory)
