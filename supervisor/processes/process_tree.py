"""Memory of an environment's processes, through psutil.

Given the environment's ``EnvironmentProcesses`` (``supervisor.processes.containment``), the members are what it
says: every process of the environment however it detached, its extensions included, from a census of the
supervisor's subtree shared by every environment (and its cgroup, where there is one). Without it, the members are
the descendants of one process, found by scanning every process on the machine (about 1.5 ms) at most once per
``REFRESH_S``, and a child that left its parent is missed unless it was seen before. Each sample then reads each
member's resident size; the runtime's own high-water mark (the kernel's ``VmHWM``) catches a peak that falls between
two samples.
"""

from __future__ import annotations

import time
from typing import Final, Protocol

import psutil

__all__ = ["Membership", "ProcessTreeMemory"]

REFRESH_S: Final = 1.0
MB: Final = 1024 * 1024


class Membership(Protocol):
    """What ``EnvironmentProcesses`` offers here."""

    def pids(self, fresh: bool = False) -> list[int]: ...


class ProcessTreeMemory:
    def __init__(self, pid: int, members: Membership | None = None) -> None:
        """The memory of process ``pid`` and its descendants, or of ``members`` (``pid`` is then the runtime, whose
        high-water mark is read)."""
        self._pid = pid
        self._members = members
        self._processes: list[psutil.Process] = []  # what is sampled
        self._tree: list[psutil.Process] = []  # the tree of pid, as processes() finds it
        self._refreshed = float("-inf")
        self.peak_mb = 0  # the largest resident size seen so far, in MB (rounded up)

    def sample(self) -> int:
        """The tree's resident memory now, in MB (rounded up); also raises ``peak_mb``."""
        if self._members is not None:
            self._take(self._members.pids())
        else:
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
        """The process ``pid`` and its descendants now, and those seen before that left it (a ``setsid``, a double
        fork), whether or not ``members`` are given: not the environment's extensions. ``EnvironmentProcesses.end``
        ends every process of the environment, whatever it was seen as."""
        self._refresh()
        self._refreshed = time.monotonic()
        return list(self._tree)

    def _take(self, pids: list[int]) -> None:
        """Members ``pids``, keeping the psutil object of those already known (psutil checks pid reuse by them)."""
        known = {process.pid: process for process in self._processes}
        processes = []
        for pid in pids:
            process = known.get(pid)
            if process is None:
                try:
                    process = psutil.Process(pid)
                except psutil.Error:
                    continue
            processes.append(process)
        self._processes = processes

    def _refresh(self) -> None:
        try:
            root = psutil.Process(self._pid)
            found = [root, *root.children(recursive=True)]
        except psutil.Error:
            found = []
        # Keep members seen before: a child that left its parent (setsid, a double fork) still belongs here.
        known = {process.pid: process for process in self._tree if process.is_running()}
        known.update((process.pid, process) for process in found)
        self._tree = list(known.values())
        if self._members is None:
            self._processes = self._tree


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
