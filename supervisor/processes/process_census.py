"""The supervisor's descendants, and the group (execution environment) each belongs to, read from ``/proc``.

The supervisor is the child subreaper, so every process an environment started stays below it however it detached:
a child that called ``setsid`` is still its parent's child, and the orphan of a double fork is handed to the
supervisor. The census walks that subtree from the supervisor down through ``/proc/PID/task/TID/children``, so its
cost follows pyrie's own processes, not the machine's (the front end's subtree is not walked), and gives each
process its group the first time it sees it: its owner mark (``pyrie_core.process_ownership``), else its parent's
group (a child that wiped its environment still belongs where it was started), else none (an orphan without a mark
first seen after its parents were gone: only pyrie's shutdown ends it). Zombies count as gone.

One walk reads two or three small files per process; ``members`` reuses a walk for ``ttl_s`` unless asked for a fresh
one, so every environment's memory sampling shares one.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Final

from pyrie_core.process_ownership import FRONTEND_GROUP, read_owner

__all__ = ["CENSUS_TTL_S", "ProcessCensus", "children", "descendants"]

CENSUS_TTL_S: Final = 0.1


class ProcessCensus:
    def __init__(self, instance: str, root: int | None = None, ttl_s: float = CENSUS_TTL_S) -> None:
        """The census of ``root``'s descendants (the calling process by default) for pyrie run ``instance``."""
        self._root = os.getpid() if root is None else root
        self._prefix = instance + "/"
        self._ttl_s = ttl_s
        self._groups: dict[int, str | None] = {}  # every live descendant at the last walk, with its group
        self._settled: dict[int, str] = {}  # groups given for good (a process's mark cannot change)
        self._taken = float("-inf")
        self._per_thread = os.path.exists(f"/proc/{self._root}/task/{self._root}/children")

    def members(self, group: str, fresh: bool = False) -> list[int]:
        """The live processes of ``group``."""
        self._walk_if_old(fresh)
        return [pid for pid, found in self._groups.items() if found == group]

    def descendants(self, fresh: bool = True) -> dict[int, str | None]:
        """Every live descendant with its group (``None``: unknown)."""
        self._walk_if_old(fresh)
        return dict(self._groups)

    def _walk_if_old(self, fresh: bool) -> None:
        now = time.monotonic()
        if fresh or now - self._taken >= self._ttl_s:
            self._walk()
            self._taken = now

    def _walk(self) -> None:
        groups: dict[int, str | None] = {}
        children_of = _listed_children if self._per_thread else _ParentMap().children
        pending: list[tuple[int, str | None]] = [(self._root, None)]
        while pending:
            parent, parent_group = pending.pop()
            for pid in children_of(parent):
                if pid in groups or _is_zombie(pid):
                    continue
                group = self._group(pid, parent_group)
                groups[pid] = group
                if group != FRONTEND_GROUP:
                    pending.append((pid, group))
        self._groups = groups
        for gone in self._settled.keys() - groups.keys():
            del self._settled[gone]

    def _group(self, pid: int, parent_group: str | None) -> str | None:
        settled = self._settled.get(pid)
        if settled is not None:
            return settled
        mark = read_owner(pid)
        if mark is not None and mark.startswith(self._prefix):
            group: str | None = mark[len(self._prefix) :]
        else:
            # No mark of this run: a child of the supervisor still between fork and exec (to be read again), one
            # that wiped its environment, or a process of another pyrie started by a function (both its parent's).
            group = parent_group
            if parent_group is None:
                return None
        assert group is not None
        self._settled[pid] = group
        return group


def children(pid: int) -> list[int]:
    """The children of ``pid`` (of each of its threads), from ``/proc/PID/task/TID/children``, without a scan of
    every process; on a kernel without those files, from one reading of every process's parent."""
    return _listed_children(pid) if _lists_children() else _ParentMap().children(pid)


@functools.cache
def _lists_children() -> bool:
    """Whether the kernel has ``/proc/PID/task/TID/children`` (looked up for this process: one that is gone has
    none)."""
    pid = os.getpid()
    return os.path.exists(f"/proc/{pid}/task/{pid}/children")


def _listed_children(pid: int) -> list[int]:
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found: list[int] = []
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as listed:
                found.extend(int(child) for child in listed.read().split())
        except (OSError, ValueError):
            continue
    return found


def descendants(root: int) -> list[int]:
    """The descendants of ``root`` now (zombies included), walked down through ``children``; on a kernel without
    ``/proc/PID/task/TID/children``, from one reading of every process's parent."""
    children_of = _listed_children if _lists_children() else _ParentMap().children
    found: list[int] = []
    seen = {root}
    pending = [root]
    while pending:
        for pid in children_of(pending.pop()):
            if pid not in seen:
                seen.add(pid)
                found.append(pid)
                pending.append(pid)
    return found


class _ParentMap:
    """Children by parent from every process's ``stat``, for kernels without ``/proc/PID/task/TID/children``."""

    def __init__(self) -> None:
        self._by_parent: dict[int, list[int]] = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                parent = _parent(int(name))
                if parent is not None:
                    self._by_parent.setdefault(parent, []).append(int(name))

    def children(self, pid: int) -> list[int]:
        return self._by_parent.get(pid, [])


def _stat_fields(pid: int) -> list[bytes]:
    """The fields of ``/proc/PID/stat`` after the command name (state first, then the parent), or none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()
    except OSError:
        return []


def _is_zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return not fields or fields[0] in (b"Z", b"X")


def _parent(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if len(fields) > 1 else None
