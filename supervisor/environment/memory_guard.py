"""An environment's memory: REPORT's Max Memory Used, and Lambda's limit (a tree that outgrows the function's memory
size is killed, ``Runtime.OutOfMemory``).

The process tree is sampled every ``SAMPLE_S`` while the environment works (initialising or invoking), never while
it is idle; the runtime's own high-water mark catches a peak between two samples.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

import gevent

from supervisor.processes.process_tree import Membership, ProcessTreeMemory

__all__ = ["SAMPLE_S", "MemoryGuard"]

log = logging.getLogger(__name__)

SAMPLE_S: Final = 0.1


class MemoryGuard:
    def __init__(
        self,
        pid: int,
        limit_mb: int,
        working: Callable[[], bool],
        on_exceeded: Callable[[int], None],
        members: Membership,
    ) -> None:
        """Watch the environment's processes (``members``; ``pid`` is its runtime) while ``working()``;
        ``on_exceeded(peak_mb)`` once they pass ``limit_mb``."""
        self.tree = ProcessTreeMemory(pid, members)
        self._limit_mb = limit_mb
        self._working = working
        self._on_exceeded = on_exceeded
        self._greenlet: gevent.Greenlet[Any] = gevent.spawn(self._watch)

    @property
    def peak_mb(self) -> int:
        return self.tree.peak_mb

    def sample(self) -> None:
        self.tree.sample()

    def stop(self) -> None:
        if self._greenlet is not gevent.getcurrent():
            self._greenlet.kill(block=False)

    def _watch(self) -> None:
        while True:
            if self._working():
                self.tree.sample()
                if self.tree.peak_mb > self._limit_mb:
                    self._on_exceeded(self.tree.peak_mb)
                    return
            gevent.sleep(SAMPLE_S)
