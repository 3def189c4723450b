"""An environment's RESTORE phase (SnapStart): its clock, its deadline, and what Lambda reports of it.

With init caching, an environment's init ends when its runtime waits in ``/restore/next``, the point where Lambda
takes its snapshot. The environment is "restored" for its first invoke: the ``/restore/next`` returns, the runtime
runs its after-restore hooks and comes to ``/next``. That span is the restore: ``platform.restoreStart``,
``platform.restoreRuntimeDone`` and ``platform.restoreReport`` (with Lambda's RESTORE_REPORT line) report it, and
the first REPORT shows it as ``Restore Duration`` (docs.aws.amazon.com/lambda/latest/dg/snapstart-monitoring.html).
As in Lambda, the after-restore hooks have ten seconds (snapstart-troubleshooting.html: SnapStartTimeoutException).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from supervisor.observe.platform_reporter import PlatformReporter
from supervisor.observe.telemetry_events import Status
from supervisor.timers import Timer

__all__ = ["RESTORE_TIMEOUT_S", "RestorePhase"]

RESTORE_TIMEOUT_S: Final = 10.0


class RestorePhase:
    def __init__(
        self, reporter: PlatformReporter, on_timeout: Callable[[], None], timeout_s: float = RESTORE_TIMEOUT_S
    ) -> None:
        self._reporter = reporter
        self._on_timeout = on_timeout
        self.timeout_s = timeout_s
        self._started = 0.0
        self._runtime_reported = False
        self._timer: Timer | None = None
        self.restored = False  # the environment has been restored (once, for its first invoke)
        self._duration_ms: float | None = None

    def begin(self) -> None:
        """The environment is being restored (its runtime's ``/restore/next`` is about to return)."""
        self._started = time.monotonic()
        self._runtime_reported = False
        self._timer = Timer(self.timeout_s, self._deadline_passed)
        self._reporter.restore_start()

    def runtime_done(self) -> None:
        """The runtime came to ``/next``: its after-restore hooks are done."""
        self._runtime_reported = True
        self._reporter.restore_runtime_done(Status.SUCCESS)

    def done(self) -> None:
        """The environment is restored: its first invoke may be delivered."""
        self.cancel_timer()
        duration_ms = (time.monotonic() - self._started) * 1000
        self._reporter.restore_report(duration_ms, Status.SUCCESS)
        self.restored = True
        self._duration_ms = duration_ms

    def failed(self, status: Status, error_type: str) -> None:
        self.cancel_timer()
        if not self._runtime_reported:
            self._runtime_reported = True
            self._reporter.restore_runtime_done(status, error_type)
        self._reporter.restore_report((time.monotonic() - self._started) * 1000, status, error_type)

    def take_duration(self) -> float | None:
        """The ``Restore Duration`` for the first REPORT after the restore only."""
        duration, self._duration_ms = self._duration_ms, None
        return duration

    def cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _deadline_passed(self) -> None:
        self._timer = None
        self._on_timeout()
