"""An environment's INIT phase: its clock, its deadline (``--init-timeout``), and what Lambda reports of it.

Init starts when the environment starts (its extensions launch, then its runtime) and ends when the runtime and
every extension wait in their ``/next``. Its duration is the ``Init Duration`` of the first REPORT (a cold start),
unless nobody waited for it (``--init-eagerly``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from supervisor.environment.extension_set import ExtensionSet
from supervisor.environment.timed_phase import TimedPhase
from supervisor.observe.platform_reporter import PlatformReporter
from supervisor.observe.telemetry_events import Status
from supervisor.observe.telemetry_hub import TelemetryHub

__all__ = ["InitPhase"]

log = logging.getLogger(__name__)


class InitPhase(TimedPhase):
    def __init__(self, name: str, timeout_s: float, reporter: PlatformReporter, on_timeout: Callable[[], None]) -> None:
        super().__init__(timeout_s, reporter, on_timeout)
        self._name = name
        self._eager = False  # started ahead of any invoke: its first invoke is no cold start
        self.has_failed = False

    @property
    def started(self) -> bool:
        return self._started > 0

    def begin(self, eager: bool) -> None:
        self._eager = eager
        self._start_clock()
        self._reporter.init_start()

    def runtime_ready(self, extensions: ExtensionSet) -> None:
        """The runtime's first ``/next``: registration closes, and its part of init is done."""
        extensions.close_registration()
        self._reporter.init_runtime_done(Status.SUCCESS)

    def done(self, extensions: ExtensionSet, telemetry: TelemetryHub) -> None:
        """The runtime and every extension wait in their ``/next``: init is over."""
        duration_ms = self._stop_clock()
        for extension in extensions:
            self._reporter.extension_ready(extension.name, sorted(extension.events))
        self._reporter.init_report(duration_ms, Status.SUCCESS)
        telemetry.close_subscriptions()
        if self._eager:  # initialised ahead of demand: no invoke waited for it, so no REPORT shows it
            log.info("%s initialised in %.2f ms", self._name, duration_ms)
        else:
            self._duration_ms = duration_ms

    def failed(self, status: Status, error_type: str, runtime_unreported: bool) -> None:
        """Init failed; ``runtime_unreported``: the runtime's part of it had not been reported yet."""
        self.has_failed = True
        duration_ms = self._stop_clock()
        if runtime_unreported:
            self._reporter.init_runtime_done(status, error_type)
        self._reporter.init_report(duration_ms, status, error_type)
