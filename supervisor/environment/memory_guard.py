"""An environment's memory: REPORT's Max Memory Used, and Lambda's limit (a tree that outgrows the function's memory
size is killed, ``Runtime.OutOfMemory``).

Both need the peak of the tree's resident memory while it works: the tree is sampled every ``SAMPLE_S`` while the
environment initialises, restores or runs an invoke (``watch``), and not at all while it is idle (``rest``: its
greenlet then waits, nothing wakes it). The runtime's own high-water mark, read at each sample, catches a peak
between two samples. An invoke shorter than ``SAMPLE_S`` between two idle spells may see no sample of its own; the
environment's peak is also sampled at the end of its init. docs/architecture.md ("Memory sampling") says what this
costs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

import gevent
import gevent.event

from supervisor.processes.process_tree import Membership, ProcessTreeMemory

__all__ = ["SAMPLE_S", "MemoryGuard"]

log = logging.getLogger(__name__)

SAMPLE_S: Final = 0.1


class MemoryGuard:
    def __init__(self, pid: int, limit_mb: int, on_exceeded: Callable[[int], None], members: Membership) -> None:
        """Watch the environment's processes (``members``; ``pid`` is its runtime), from now until ``rest``;
        ``on_exceeded(peak_mb)`` once they pass ``limit_mb``."""
        self.tree = ProcessTreeMemory(pid, members)
        self._limit_mb = limit_mb
        self._on_exceeded = on_exceeded
        self._watching = gevent.event.Event()
        self._watching.set()
        self._greenlet: gevent.Greenlet[Any] = gevent.spawn(self._watch)

    @property
    def peak_mb(self) -> int:
        return self.tree.peak_mb

    def sample(self) -> None:
        self.tree.sample()

    def watch(self) -> None:
        """The environment works: sample until ``rest``."""
        self._watching.set()

    def rest(self) -> None:
        """The environment is idle: no samples until ``watch``."""
        self._watching.clear()

    def stop(self) -> None:
        if self._greenlet is not gevent.getcurrent():
            self._greenlet.kill(block=False)

    def _watch(self) -> None:
        while True:
            self._watching.wait()
            gevent.sleep(SAMPLE_S)  # so an environment that works a moment, as most invokes take, costs no sample
            if not self._watching.is_set():
                continue
            self.tree.sample()
            if self.tree.peak_mb > self._limit_mb:
                self._on_exceeded(self.tree.peak_mb)
                return
