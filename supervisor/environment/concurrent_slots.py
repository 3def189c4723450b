"""The invokes a Managed Instances environment holds: those waiting for a runtime worker, in order of arrival, and
those delivered, each with a timeout of its own that fails that invoke alone."""

from __future__ import annotations

import collections
from collections.abc import Callable

from runtime_api.runtime_api_server import Parking
from supervisor.config import FunctionConfig
from supervisor.invocation import Invocation
from supervisor.observe.platform_reporter import PlatformReporter
from supervisor.timers import Timer

__all__ = ["ConcurrentSlots"]


class ConcurrentSlots:
    def __init__(
        self, function: FunctionConfig, reporter: PlatformReporter, on_timeout: Callable[[Invocation], None]
    ) -> None:
        self._function = function
        self._reporter = reporter
        self._on_timeout = on_timeout
        self._waiting: collections.deque[Invocation] = collections.deque()
        self._running: dict[str, Invocation] = {}
        self._timers: dict[str, Timer] = {}

    @property
    def waiting_count(self) -> int:
        return len(self._waiting)

    def add(self, invocation: Invocation) -> None:
        self._waiting.append(invocation)

    def is_waiting(self, invocation: Invocation) -> bool:
        return invocation in self._waiting

    def remove_waiting(self, invocation: Invocation) -> bool:
        if invocation not in self._waiting:
            return False
        self._waiting.remove(invocation)
        return True

    def deliver(self, parking: Parking) -> Invocation:
        """The invoke that has waited longest goes to a runtime worker now, from the Runtime API server ``parking``:
        its clock and its timeout start."""
        invocation = self._waiting.popleft()
        timeout_s = self._function.timeout_s
        invocation.deliver(timeout_s, parking)
        self._running[invocation.request_id] = invocation
        self._reporter.start(invocation)
        self._timers[invocation.request_id] = Timer(timeout_s, self._deadline_passed, invocation)
        return invocation

    def end(self, invocation: Invocation) -> bool:
        """``invocation`` is over (answered, timed out, its worker gone); whether it was still running."""
        timer = self._timers.pop(invocation.request_id, None)
        if timer is not None:
            timer.cancel()
        return self._running.pop(invocation.request_id, None) is not None

    def delivered(self) -> list[Invocation]:
        return list(self._running.values())

    def take_waiting(self) -> list[Invocation]:
        waiting = list(self._waiting)
        self._waiting.clear()
        return waiting

    def finish_all(self) -> list[Invocation]:
        running = self.delivered()
        for invocation in running:
            self.end(invocation)
        return running

    def _deadline_passed(self, invocation: Invocation) -> None:
        self._timers.pop(invocation.request_id, None)
        if invocation.request_id in self._running:
            self._on_timeout(invocation)
