"""An environment's RESTORE phase (SnapStart): its clock, its deadline, and what Lambda reports of it.

With init caching, an environment's init ends when its runtime waits in ``/restore/next``, the point where Lambda
takes its snapshot. The environment is "restored" for its first invoke: the ``/restore/next`` returns, the runtime
runs its after-restore hooks and comes to ``/next``. That span is the restore: ``platform.restoreStart``,
``platform.restoreRuntimeDone`` and ``platform.restoreReport`` (with Lambda's RESTORE_REPORT line) report it, and
the first REPORT shows it as ``Restore Duration`` (docs.aws.amazon.com/lambda/latest/dg/snapstart-monitoring.html).
As in Lambda, the after-restore hooks have ten seconds (snapstart-troubleshooting.html: SnapStartTimeoutException).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from supervisor.environment.timed_phase import TimedPhase
from supervisor.observe.platform_reporter import PlatformReporter
from supervisor.observe.telemetry_events import Status

__all__ = ["RESTORE_TIMEOUT_S", "RestorePhase"]

RESTORE_TIMEOUT_S: Final = 10.0


class RestorePhase(TimedPhase):
    def __init__(
        self, reporter: PlatformReporter, on_timeout: Callable[[], None], timeout_s: float = RESTORE_TIMEOUT_S
    ) -> None:
        super().__init__(timeout_s, reporter, on_timeout)
        self._runtime_reported = False
        self.restored = False  # the environment has been restored (once, for its first invoke)

    def begin(self) -> None:
        """The environment is being restored (its runtime's ``/restore/next`` is about to return)."""
        self._start_clock()
        self._runtime_reported = False
        self._reporter.restore_start()

    def runtime_done(self) -> None:
        """The runtime came to ``/next``: its after-restore hooks are done."""
        self._runtime_reported = True
        self._reporter.restore_runtime_done(Status.SUCCESS)

    def done(self) -> None:
        """The environment is restored: its first invoke may be delivered."""
        duration_ms = self._stop_clock()
        self._reporter.restore_report(duration_ms, Status.SUCCESS)
        self.restored = True
        self._duration_ms = duration_ms

    def failed(self, status: Status, error_type: str) -> None:
        duration_ms = self._stop_clock()
        if not self._runtime_reported:
            self._runtime_reported = True
            self._reporter.restore_runtime_done(status, error_type)
        self._reporter.restore_report(duration_ms, status, error_type)
