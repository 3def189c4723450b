"""What an environment's INIT and RESTORE phases share: a clock, a deadline, and a duration the next REPORT shows."""

from __future__ import annotations

import time
from collections.abc import Callable

from supervisor.observe.platform_reporter import PlatformReporter
from supervisor.timers import Timer

__all__ = ["TimedPhase"]


class TimedPhase:
    def __init__(self, timeout_s: float, reporter: PlatformReporter, on_timeout: Callable[[], None]) -> None:
        self.timeout_s = timeout_s
        self._reporter = reporter
        self._on_timeout = on_timeout
        self._started = 0.0
        self._timer: Timer | None = None
        self._duration_ms: float | None = None  # for the next REPORT, once

    def _start_clock(self) -> None:
        self._started = time.monotonic()
        self._timer = Timer(self.timeout_s, self._deadline_passed)

    def _stop_clock(self) -> float:
        """The phase's duration so far, in milliseconds; its deadline no longer runs."""
        self.cancel_timer()
        return (time.monotonic() - self._started) * 1000

    def take_duration(self) -> float | None:
        """The phase's duration for the first REPORT after it only."""
        duration, self._duration_ms = self._duration_ms, None
        return duration

    def cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _deadline_passed(self) -> None:
        self._timer = None
        self._on_timeout()
