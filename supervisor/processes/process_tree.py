"""Memory of an environment's processes, through psutil.

The members are what the environment's ``EnvironmentProcesses`` (``supervisor.processes.containment``) says: every
process of the environment however it detached, its extensions included, from a census of the supervisor's subtree
shared by every environment (and its cgroup, where there is one). Each sample reads each member's resident size; the
runtime's own high-water mark (the kernel's ``VmHWM``) catches a peak that falls between two samples.
"""

from __future__ import annotations

from typing import Final, Protocol

import psutil

from supervisor.processes.process_census import descendants

__all__ = ["Membership", "ProcessTreeMemory"]

MB: Final = 1024 * 1024


class Membership(Protocol):
    """What ``EnvironmentProcesses`` offers here."""

    def pids(self, fresh: bool = False) -> list[int]: ...


class ProcessTreeMemory:
    def __init__(self, pid: int, members: Membership) -> None:
        """The memory of ``members``, the processes of an environment whose runtime is process ``pid`` (its
        high-water mark is read)."""
        self._pid = pid
        self._members = members
        self._processes: list[psutil.Process] = []  # what is sampled
        self._tree: list[psutil.Process] = []  # the tree of pid, as processes() finds it
        self.peak_mb = 0  # the largest resident size seen so far, in MB (rounded up)

    def sample(self) -> int:
        """The members' resident memory now, in MB (rounded up); also raises ``peak_mb``."""
        self._processes = _processes(self._members.pids(), self._processes)
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
        """The process ``pid`` and its descendants now (walked down from it, not found by scanning every process),
        and those seen by an earlier call that left it (a ``setsid``, a double fork): not the environment's
        extensions. ``EnvironmentProcesses.end`` ends every process of the environment, whatever it was seen as."""
        # Keep those seen before: a child that left its parent still belongs here.
        seen = [process for process in self._tree if process.is_running()]
        self._tree = _processes([self._pid, *descendants(self._pid)], seen, keep=True)
        return list(self._tree)


def _processes(pids: list[int], known: list[psutil.Process], keep: bool = False) -> list[psutil.Process]:
    """The processes ``pids``, reusing the psutil objects of those ``known`` (psutil checks pid reuse by them);
    with ``keep``, the rest of ``known`` too."""
    by_pid = {process.pid: process for process in known}
    found: list[psutil.Process] = []
    for pid in pids:
        process = by_pid.pop(pid, None)
        if process is None:
            try:
                process = psutil.Process(pid)
            except psutil.Error:
                continue
        found.append(process)
    if keep:
        found.extend(by_pid.values())
    return found


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
