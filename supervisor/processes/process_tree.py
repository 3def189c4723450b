"""Memory of an environment's process tree, through psutil.

Listing a process's descendants means scanning every process on the machine (about 1.5 ms), so the tree's
membership is refreshed at most once per ``REFRESH_S``; each sample then reads each member's resident size. The
runtime's own high-water mark (the kernel's ``VmHWM``) catches a peak that falls between two samples.
"""

from __future__ import annotations

import time
from typing import Final

import psutil

__all__ = ["ProcessTreeMemory"]

REFRESH_S: Final = 1.0
MB: Final = 1024 * 1024


class ProcessTreeMemory:
    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._processes: list[psutil.Process] = []
        self._refreshed = float("-inf")
        self.peak_mb = 0  # the largest resident size seen so far, in MB (rounded up)

    def sample(self) -> int:
        """The tree's resident memory now, in MB (rounded up); also raises ``peak_mb``."""
        now = time.monotonic()
        if now - self._refreshed >= REFRESH_S:
            self._refresh()
            self._refreshed = now
        total = 0
        for process in self._processes:
            try:
                total += process.memory_info().rss
            except psutil.Error:
                continue
        current = _mb(total)
        self.peak_mb = max(self.peak_mb, current, _mb(_high_water_mark(self._pid)))
        return current

    def processes(self) -> list[psutil.Process]:
        """Every process of the tree now (the runtime and its descendants, however they detached)."""
        self._refresh()
        self._refreshed = time.monotonic()
        return list(self._processes)

    def _refresh(self) -> None:
        try:
            root = psutil.Process(self._pid)
            found = [root, *root.children(recursive=True)]
        except psutil.Error:
            found = []
        # Keep members seen before: a child that left its parent (setsid, a double fork) still belongs here.
        known = {process.pid: process for process in self._processes if process.is_running()}
        known.update((process.pid, process) for process in found)
        self._processes = list(known.values())


def _mb(size: int) -> int:
    return -(-size // MB)


def _high_water_mark(pid: int) -> int:
    """The peak resident size of one process since it started (Linux ``VmHWM``; psutil does not expose it)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
