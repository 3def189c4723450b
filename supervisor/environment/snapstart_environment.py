"""An environment with init caching (SnapStart, ``--enable-init-caching``): one invoke at a time, as
``SerialEnvironment``, with a restore between its init and its first invoke.

Lambda initialises a SnapStart function once, when a version is published: the runtime's init ends with its
before-snapshot hooks and its ``/restore/next``, where Lambda takes the snapshot; each new environment is then
restored from it, and its runtime's ``/restore/next`` returns, it runs its after-restore hooks and comes to ``/next``
(docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-custom.html). A process cannot be snapshotted, so here
each environment runs that init itself (on demand, or ahead of any invoke with ``--init-eagerly``), waits in
``/restore/next`` as if snapshotted, and is restored for its first invoke: the hooks run once per environment,
before its first handler call, never on a warm invoke.

As Lambda reports it: no Init Duration on the REPORT (the INIT_REPORT line has it), ``Restore Duration`` on the
first REPORT, ``Duration`` the handler's time alone (``supervisor.environment.restore_phase``). A failed restore (an
after-restore hook's ``/restore/error``, a crash, out of memory, an extension's exit) fails the invoke with the
Invoke API's ``SnapStartException`` (400), a restore past its ten seconds with ``SnapStartTimeoutException`` (408);
the environment is reset, so the next invoke gets a new one.
"""

from __future__ import annotations

import logging
from typing import Any

from pyrie_core.lambda_errors import SNAPSTART_MESSAGE, SNAPSTART_TIMEOUT_MESSAGE, FunctionError, ServiceError
from pyrie_core.limits import Limits
from runtime_api.runtime_states import RuntimeState
from supervisor.config import FunctionConfig
from supervisor.environment.environment_states import EnvState
from supervisor.environment.extension_set import Extension, ShutdownReason
from supervisor.environment.restore_phase import RestorePhase
from supervisor.environment.runtime_side import RuntimeSide
from supervisor.environment.serial_environment import SerialEnvironment
from supervisor.environment.snapstart_side import SnapStartSide
from supervisor.observe.telemetry_events import Status

__all__ = ["SnapStartEnvironment"]

log = logging.getLogger(__name__)


class SnapStartEnvironment(SerialEnvironment):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._restore = RestorePhase(self._report, self._restore_timed_out)
        snapstart = self.runtime_side.snapstart
        assert snapstart is not None, "SnapStart needs --enable-init-caching"
        self._snapstart: SnapStartSide = snapstart

    def _make_runtime_side(self, function: FunctionConfig, limits: Limits) -> RuntimeSide:
        return RuntimeSide(function, limits, self.extensions, self.telemetry, self, snapstart_events=self)

    def start(self, eager: bool = False) -> None:
        """Init as Lambda's at publish: ahead of any invoke as far as REPORT goes (INIT_REPORT shows it)."""
        super().start(eager=True)

    # -- facts, as the Runtime API and the processes report them ------------------------------------------------

    def restore_ready(self) -> None:
        """The runtime waits in ``/restore/next``: its init, its before-snapshot hooks included, is done."""
        if self.initialising:
            self._init.runtime_ready(self.extensions)
        self._settle_soon()

    def runtime_ready(self) -> None:
        if self.machine.state is EnvState.RESTORING:  # the after-restore hooks are done
            self._restore.runtime_done()
            self._settle_soon()
            return
        super().runtime_ready()

    def restore_failed(self, error_type: str) -> None:
        self._fail_restore(Status.ERROR, error_type)

    def _runtime_exited(self, returncode: int) -> None:
        if self.machine.state is EnvState.RESTORING:
            self.runtime_side.drain()  # a /restore/error it sent before exiting is read first
            if self.machine.state is EnvState.RESTORING:
                self._fail_restore(Status.ERROR, FunctionError.EXIT)
                return
        super()._runtime_exited(returncode)

    def _out_of_memory(self, used_mb: int) -> None:
        if self.machine.state is EnvState.RESTORING:
            log.info("%s: %d MB used during the restore: killed (out of memory)", self.name, used_mb)
            self._fail_restore(Status.ERROR, FunctionError.OUT_OF_MEMORY)
            return
        super()._out_of_memory(used_mb)

    def _extension_exited(self, extension: Extension, returncode: int) -> None:
        if self.machine.state is EnvState.RESTORING:
            self._fail_restore(Status.ERROR, extension.fatal or "Extension.Crash")
            return
        super()._extension_exited(extension, returncode)

    def _restore_timed_out(self) -> None:
        self._fail_restore(Status.TIMEOUT, FunctionError.TIMEOUT)

    def reset(self, reason: str, shutdown_reason: ShutdownReason = ShutdownReason.FAILURE) -> None:
        self._restore.cancel_timer()
        super().reset(reason, shutdown_reason)

    # -- the work the facts imply, run from the reactor ---------------------------------------------------------

    def _settle_invokes(self) -> None:
        if self.machine.state is EnvState.RESTORING:
            if self.runtime_state is not RuntimeState.READY:
                return
            self._restore.done()
            self.machine.transition(EnvState.IDLE)  # RESTORING -> IDLE: restored; its first invoke goes next
        super()._settle_invokes()

    def _deliver(self) -> None:
        if self._restore.restored:
            super()._deliver()
            return
        self.machine.transition(EnvState.RESTORING)  # IDLE -> RESTORING
        self._restore.begin()
        if self.runtime_state is RuntimeState.RESTORE_READY:
            self._snapstart.release()  # its /restore/next returns: it runs its after-restore hooks
        else:  # it came to /next without /restore/next (no hooks to run, as the Go emulator allows): restored now
            self._restore.runtime_done()
            self._settle_soon()

    def _fail_restore(self, status: Status, error_type: str) -> None:
        """The restore failed: the invoke that waited for it gets the Invoke API's SnapStart error, and the
        environment goes (the next invoke gets a new one)."""
        if self.machine.state is not EnvState.RESTORING:
            return
        log.info("%s: restore failed (%s, %s)", self.name, status.value, error_type)
        self._restore.failed(status, error_type)
        for invocation in self.slot.take_waiting():
            if status is Status.TIMEOUT:
                invocation.reject(408, ServiceError.SNAPSTART_TIMEOUT, SNAPSTART_TIMEOUT_MESSAGE)
            else:
                invocation.reject(400, ServiceError.SNAPSTART, SNAPSTART_MESSAGE)
        self.reset(f"restore failed: {error_type}")

    def _take_restore_duration(self) -> float | None:
        return self._restore.take_duration()
