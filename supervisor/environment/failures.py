"""What each failure of an environment costs the invokes it holds, in Lambda's words, before the environment is reset.

A failure during init fails the invoke that waited for it (with its own START, END and REPORT) and reports the init
as failed; a failure during an invoke fails that invoke. The error types and messages are Lambda's:
``Runtime.ExitError`` ("Runtime exited with error: exit status 1"), ``Sandbox.Timedout`` ("Task timed out after 3.00
seconds"), ``Runtime.OutOfMemory``, ``Extension.Crash``, ``Runtime.TruncatedResponse``, and the init errors a runtime
or an extension reports itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final, Protocol

from pyrie_core.lambda_errors import FunctionError, exit_description
from runtime_api.host import RuntimeInvocation
from runtime_api.runtime_states import RuntimeState
from supervisor.config import FunctionConfig
from supervisor.environment.extension_set import Extension, ShutdownReason
from supervisor.environment.init_phase import InitPhase
from supervisor.invocation import Invocation
from supervisor.observe.platform_reporter import PlatformReporter
from supervisor.observe.telemetry_events import Status
from supervisor.timers import Timer

__all__ = ["BROKEN_STREAM_GRACE_S", "FailingEnvironment", "Failures", "runtime_exit_message"]

log = logging.getLogger(__name__)

# A streamed response cut short by a runtime that then exits within this time is reported as its exit; one whose
# runtime neither exits nor comes back to /next by then is reported truncated.
BROKEN_STREAM_GRACE_S: Final = 0.2


class HeldInvokes(Protocol):
    """The invokes an environment holds, as its failures see them."""

    def delivered(self) -> list[Invocation]: ...

    def take_waiting(self) -> list[Invocation]: ...


class FailingEnvironment(Protocol):
    """What the failures need of their environment."""

    @property
    def name(self) -> str: ...

    @property
    def initialising(self) -> bool: ...

    @property
    def closing(self) -> bool: ...

    @property
    def runtime_state(self) -> RuntimeState: ...

    def reset(self, reason: str, shutdown_reason: ShutdownReason = ShutdownReason.FAILURE) -> None: ...

    def end_report(self, invocation: Invocation) -> None:
        """END and REPORT of ``invocation``."""
        ...

    def invoke_timed_out(self, invocation: Invocation) -> None:
        """``invocation`` has failed with its timeout: what that does to the environment."""
        ...


class Failures:
    def __init__(
        self,
        env: FailingEnvironment,
        function: FunctionConfig,
        slot: HeldInvokes,
        reporter: PlatformReporter,
        init: InitPhase,
    ) -> None:
        self._env = env
        self._function = function
        self._slot = slot
        self._reporter = reporter
        self._init = init

    # -- init -----------------------------------------------------------------------------------------------------

    def init_failed(self, error_type: str, message: str, status: Status = Status.FAILURE) -> None:
        """Init failed, as pyrie saw it (a crash, a timeout, an extension's error): Lambda's JSON error body."""
        self._end_init(status, error_type, lambda invocation: invocation.fail_platform(error_type, message))

    def init_error(self, error_type: str, body: bytes) -> None:
        """The runtime reported its init error (``/runtime/init/error``): its own body."""
        self._end_init(Status.ERROR, error_type, lambda invocation: invocation.fail(error_type, body))

    def init_timed_out(self) -> None:
        if self._env.initialising:
            message = f"Init timed out after {self._init.timeout_s:.2f} seconds"
            self.init_failed(FunctionError.TIMEOUT, message, Status.TIMEOUT)

    def _end_init(self, status: Status, error_type: str, fail: Callable[[Invocation], None]) -> None:
        """Report the failed init, fail the invoke that waited for it (with its START, END and REPORT), reset."""
        runtime_unreported = self._env.runtime_state in (RuntimeState.STARTED, RuntimeState.INIT_ERROR)
        self._init.failed(status, error_type, runtime_unreported)
        for invocation in self._slot.take_waiting():
            fail(invocation)
            self._reporter.start(invocation)
            self._env.end_report(invocation)
        self._env.reset(f"init failed: {error_type}", ShutdownReason.SPINDOWN)

    # -- processes ------------------------------------------------------------------------------------------------

    def runtime_exited(self, returncode: int) -> None:
        description = exit_description(returncode)
        log.info("%s: runtime exited (%s)", self._env.name, description)
        self._process_died(FunctionError.EXIT, runtime_exit_message(returncode), description)

    def extension_exited(self, extension: Extension, returncode: int) -> None:
        description = exit_description(returncode)
        log.info("%s: extension %s exited (%s)", self._env.name, extension.name, description)
        if returncode == 0:
            message = f"Extension {extension.name} exited without providing a reason"
        else:
            message = f"Extension {extension.name} exited with error: {description}"
        self._process_died(extension.fatal or "Extension.Crash", message, message)

    def extension_reported(self, extension: Extension, fatal_type: str, error_type: str) -> None:
        """An extension called ``/extension/init/error`` or ``/extension/exit/error``: the first error counts, and
        during init it fails the init."""
        if extension.fatal is not None:
            return
        extension.fatal = fatal_type
        log.info("%s: extension %s reported %s (%s)", self._env.name, extension.name, fatal_type, error_type)
        if self._env.initialising:
            self.init_failed(fatal_type, f"Extension {extension.name} reported {fatal_type}: {error_type}")

    def _process_died(self, error_type: str, message: str, reason: str) -> None:
        if self._env.initialising:
            self.init_failed(error_type, message)
            return
        for invocation in self._slot.delivered():
            invocation.fail_platform(error_type, message)
        self._env.reset(reason)

    def out_of_memory(self, used_mb: int) -> None:
        """The tree went past the function's memory size: Lambda kills the environment (its cgroup limit)."""
        log.info("%s: %d MB used of %d MB: killed (out of memory)", self._env.name, used_mb, self._function.memory_mb)
        message = "Runtime exited with error: signal: killed"
        if self._env.initialising:  # the invokes that waited for the init fail with it
            self.init_failed(FunctionError.OUT_OF_MEMORY, message)
            return
        # Only what the runtime was running fails: an invoke still waiting for it goes back to the pool with the
        # environment's end, like every invoke an environment took and never delivered.
        for invocation in self._slot.delivered():
            invocation.fail_platform(FunctionError.OUT_OF_MEMORY, message)
        self._env.reset("out of memory")

    # -- the invoke -----------------------------------------------------------------------------------------------

    def timed_out(self, invocation: Invocation) -> None:
        message = f"Task timed out after {self._function.timeout_s:.2f} seconds"
        invocation.fail_platform(FunctionError.TIMEOUT, message)
        self._reporter.timed_out(invocation, message)
        self._env.invoke_timed_out(invocation)

    def stream_broken(self, invocation: RuntimeInvocation) -> None:
        """The runtime's streamed response ended without its end. If the runtime exited, that is reported as its
        exit (``runtime_exited``); a runtime that lives on merely cut its response short (``truncated``, at the
        latest after ``BROKEN_STREAM_GRACE_S``)."""
        Timer(BROKEN_STREAM_GRACE_S, self.truncated, invocation)

    @staticmethod
    def truncated(invocation: RuntimeInvocation) -> None:
        """``invocation``'s response was cut short (nothing if it has ended otherwise meanwhile): as soon as the
        runtime shows it lives on (it is done with the invoke), so that its END and REPORT say so."""
        invocation.fail_platform(FunctionError.TRUNCATED_RESPONSE, "Runtime closed the response stream before its end")


def runtime_exit_message(returncode: int) -> str:
    """Lambda's words for a runtime (or one of its workers) that exited with ``returncode`` (minus the signal)."""
    if returncode == 0:
        return "Runtime exited without providing a reason"
    return f"Runtime exited with error: {exit_description(returncode)}"
