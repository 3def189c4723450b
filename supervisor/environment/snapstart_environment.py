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

The runtime's restore calls are facts of the environment's: ``/restore/next`` moves the runtime's machine (Started ->
RestoreReady) and waits until the environment restores it (RestoreReady -> Restoring, ``_deliver``); ``/restore/error``
(Restoring -> RestoreError), or an ``/init/error`` during the restore as the Go emulator takes it, fails the restore.
The environment also answers the container credentials endpoint, where the runtime finds its credentials
(``AWS_CONTAINER_CREDENTIALS_FULL_URI``, ``runtime_api.credentials_routes``).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

import gevent.event

from pyrie_core.lambda_errors import SNAPSTART_MESSAGE, SNAPSTART_TIMEOUT_MESSAGE, FunctionError, ServiceError
from pyrie_core.machine import InvalidTransition
from runtime_api.host import ContainerCredentials, ReportedError, RuntimeRefusal
from runtime_api.http_connection import ConnectionClosed
from runtime_api.runtime_states import RuntimeState
from supervisor.config import SnapStartConfig
from supervisor.environment.environment_states import EnvState
from supervisor.environment.extension_set import Extension, ShutdownReason
from supervisor.environment.restore_phase import RestorePhase
from supervisor.environment.serial_environment import SerialEnvironment
from supervisor.observe.telemetry_events import Status

__all__ = ["CREDENTIALS_LIFETIME_S", "SnapStartEnvironment"]

log = logging.getLogger(__name__)

# The credentials endpoint's Expiration is this far ahead of each request: always in the future, never stale, and
# far enough for the SDKs' refresh windows (botocore refreshes 15 minutes before it).
CREDENTIALS_LIFETIME_S: Final = 3600.0


class SnapStartEnvironment(SerialEnvironment):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._restore = RestorePhase(self._report, self._restore_timed_out)
        snapstart = self._config.function.snapstart
        assert snapstart is not None, "SnapStart needs --enable-init-caching"
        self._snapstart: SnapStartConfig = snapstart
        self._released = gevent.event.Event()  # set when the environment restores the runtime, or when it closes

    def start(self, eager: bool = False) -> None:
        """Init as Lambda's at publish: ahead of any invoke as far as REPORT goes (INIT_REPORT shows it)."""
        super().start(eager=True)

    # -- what its Runtime API's handlers read ------------------------------------------------------------------------

    @property
    def init_caching(self) -> bool:
        return True

    def credentials(self, token: str) -> ContainerCredentials | None:
        config = self._snapstart
        import hmac  # noqa: PLC0415 - only init caching needs it, and it loads OpenSSL (3 MiB)

        if not hmac.compare_digest(token.encode(), config.token.encode()):
            return None
        expiration = time.time() + CREDENTIALS_LIFETIME_S
        return ContainerCredentials(config.access_key_id, config.secret_access_key, config.session_token, expiration)

    # -- facts, as the Runtime API and the processes report them ------------------------------------------------

    def restore_next(self) -> None:
        """``/restore/next``: the runtime's init, its before-snapshot hooks included, is done (it is ready for its
        snapshot); it waits until the environment restores it. Refused, it names its target Ready, as the Go
        emulator's does (internal/lambda/rapi/handler/restorenext.go)."""
        try:
            self.runtime.transition(RuntimeState.RESTORE_READY)
        except InvalidTransition as refused:
            named = InvalidTransition(refused.machine, refused.current, RuntimeState.READY)
            raise RuntimeRefusal.refused_transition(named) from None
        if self.initialising:
            self._init.runtime_ready(self.extensions)
        self._settle_soon()
        parking = self._parking
        while self.runtime.state is RuntimeState.RESTORE_READY:
            if self.closing:
                raise ConnectionClosed("the environment was reset")
            parking.park()
            try:
                self._released.wait()
            finally:
                parking.unpark()
        if self.closing:
            raise ConnectionClosed("the environment was reset")

    def restore_failed(self, error: ReportedError) -> None:
        """``/restore/error``: the after-restore hooks failed."""
        try:
            self.runtime.transition(RuntimeState.RESTORE_ERROR)
        except InvalidTransition as refused:
            raise RuntimeRefusal.refused_transition(refused) from None
        self._fail_restore(Status.ERROR, error.restore_type)

    def init_failed(self, error: ReportedError) -> None:
        """During the restore, the Go emulator takes an ``/init/error`` as the restore's error (initerror.go: "remove
        once Languages team change the endpoint to /restore/error")."""
        if self.runtime.state is RuntimeState.RESTORING:
            self.restore_failed(error)
            return
        super().init_failed(error)

    def _runtime_ready(self) -> None:
        if self.machine.state is EnvState.RESTORING:  # the after-restore hooks are done
            self._restore.runtime_done()
            self._settle_soon()
            return
        super()._runtime_ready()

    def _close(self) -> None:
        super()._close()
        self._released.set()  # a /restore/next waiting wakes to give up

    def _runtime_exited(self, returncode: int) -> None:
        if self.machine.state is EnvState.RESTORING:
            self._drain()  # a /restore/error it sent before exiting is read first
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
            self._move(EnvState.IDLE)  # RESTORING -> IDLE: restored; its first invoke goes next
        super()._settle_invokes()

    def _deliver(self) -> None:
        if self._restore.restored:
            super()._deliver()
            return
        self._move(EnvState.RESTORING)  # IDLE -> RESTORING
        self._restore.begin()
        if self.runtime_state is RuntimeState.RESTORE_READY:
            self.runtime.transition(
                RuntimeState.RESTORING
            )  # its /restore/next returns: it runs its after-restore hooks
            self._released.set()
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
