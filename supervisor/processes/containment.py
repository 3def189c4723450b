"""Which processes belong to each execution environment, and ending them all, however they detached.

One ``Containment`` per pyrie run hands each environment an ``EnvironmentProcesses``. The environment starts its
runtime and extension processes through it (``ManagedProcess(..., members=...)``), asks it for its members (memory,
kills) and ends them all when it is torn down; at shutdown ``Containment.end_all`` ends whatever is left. What makes
sure no process escapes:

- **cgroup v2**, where the machine lets pyrie make cgroups (``cgroup.kill`` needs Linux 5.14; a container often has
  ``/sys/fs/cgroup`` read-only): one cgroup per environment. Nothing leaves a cgroup without write access to another,
  and ``cgroup.kill`` ends the environment at once. Moving a process into a cgroup waits for an RCU grace period in
  the kernel (about 10 ms, at times 25 ms and more, measured on Linux 6.18), so it is done after the exec by a
  short-lived thread, off the event loop and off the spawn's path: the process, and whatever it started in the
  meantime, joins within those milliseconds; anything started before that carries the mark.
- **the owner mark**, always (``pyrie_core.process_ownership``): ``PYRIE_OWNER=<instance>/<environment>`` in each
  process's environment, inherited through ``setsid`` and double forks. Without cgroups, members are found by the
  census of the supervisor's subtree (``process_census``: as child subreaper the supervisor keeps every orphan
  below it); a process that wiped its environment still counts as its parent's, unless it was first seen only
  after its parents had gone: such a process belongs to no environment, and pyrie's shutdown, which ends every
  process below the supervisor, ends it.
- **the supervisor's death**: the front end's gunicorn master, which the kernel tells of it (``PR_SET_PDEATHSIG``),
  kills the run's cgroups and every process with this run's mark (``invoke_api.supervisor_death``). The processes
  the supervisor starts run no code of its own between fork and exec (``ManagedProcess``), so they cannot ask the
  kernel for a signal themselves.

What that guarantees:

- An environment that ends (timeout, crash, out of memory, idle, pyrie's shutdown) ends every process it started,
  however it detached (``setsid``, a double fork, a process group of its own), also one it was still starting.
- pyrie's shutdown then ends every process still below the supervisor, whatever its mark, and every process
  carrying the run's mark wherever it is.
- kill -9 of the supervisor: the front end's master kills the whole run (runtimes, extensions, what they left
  running), removes the socket directory and exits, its workers with it; the ports are free within milliseconds.
- A pyrie whose supervisor and front end died together (kill -9 of both, the OOM killer) is cleaned up by the next
  pyrie its user starts (``supervisor.frontend_link.socket_directory``): until then its runtimes run on.

What escapes: without cgroups, a process that execs with a wiped environment (``env -i``) or overwrites the memory
of its environment (setproctitle) and whose parents have exited before pyrie's census saw it belongs to no
environment: pyrie's shutdown ends it (it is still below the supervisor), its environment's end does not, and a
kill -9 of the supervisor leaves it running. With cgroups, only such a process started within those milliseconds
after the runtime's exec, before it joined. And a process privileged enough to move itself to another cgroup.

Everything here that waits does so cooperatively (gevent), with a deadline.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Mapping
from typing import Final

import gevent

from pyrie_core.process_ownership import (
    OWNER_ENV,
    cgroup_kill,
    cgroup_pids,
    instance_cgroup,
    own_cgroup,
    owned_pids,
    owner,
    remove_cgroup,
    signal_owned,
)
from supervisor.processes.process_census import ProcessCensus

__all__ = ["KILL_WAIT_S", "Containment", "EnvironmentProcesses"]

log = logging.getLogger(__name__)

# After SIGKILL, processes get this long to be gone before ``end`` gives up on them (one in uninterruptible sleep).
KILL_WAIT_S: Final = 1.0
POLL_S: Final = 0.01


class EnvironmentProcesses:
    """The processes of one execution environment: those it starts, and everything they start."""

    def __init__(self, instance: str, name: str, census: ProcessCensus, cgroup: str | None) -> None:
        self.name = name
        self.owner = owner(instance, name)
        self.cgroup = cgroup  # its cgroup directory; None where the machine offers none
        self._census = census
        self._ended = False

    @property
    def ended(self) -> bool:
        """``end`` was called: a process started from now on is killed as soon as it exists."""
        return self._ended

    def environ(self, env: Mapping[str, str]) -> dict[str, str]:
        """``env`` with this environment's mark."""
        return {**env, OWNER_ENV: self.owner}

    def started(self, pid: int) -> None:
        """Process ``pid`` of this environment has exec'd: it joins the cgroup, with what it started meanwhile (in a
        thread of its own, which exits once that is done)."""
        if self.cgroup is not None:
            procs = os.path.join(self.cgroup, "cgroup.procs")
            threading.Thread(target=_join_cgroup, args=(procs, pid), name=f"cgroup {self.name}", daemon=True).start()

    def pids(self, fresh: bool = False) -> list[int]:
        """Its live processes: those with its mark or a parent of it, from a census of the supervisor's subtree
        that may be up to ``CENSUS_TTL_S`` old (unless ``fresh``), and those in its cgroup."""
        pids = self._census.members(self.name, fresh)
        if self.cgroup is not None:
            pids.extend(pid for pid in cgroup_pids(self.cgroup) if pid not in pids)
        return pids

    def signal(self, signum: int) -> list[int]:
        """Send ``signum`` to each of its processes; returns those it was sent to."""
        pids = self.pids(fresh=True)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)
        return pids

    def end(self, grace_s: float = 0.0) -> bool:
        """End every process of the environment: SIGTERM and up to ``grace_s`` for them to exit, then SIGKILL and up
        to ``KILL_WAIT_S`` for them to be gone; one started later is killed as soon as it exists. Waits
        cooperatively. Returns whether none is left (else they are logged; pyrie's shutdown tries again)."""
        self._ended = True
        if grace_s > 0:
            deadline = time.monotonic() + grace_s
            left = self.signal(signal.SIGTERM)
            while left and time.monotonic() < deadline:
                gevent.sleep(POLL_S)
                left = self.pids(fresh=True)
        deadline = time.monotonic() + KILL_WAIT_S
        while True:
            if self.cgroup is not None:
                cgroup_kill(self.cgroup)
            left = self.signal(signal.SIGKILL)
            if not left:
                break
            if time.monotonic() >= deadline:
                log.warning("%s: processes still there %.1f s after SIGKILL: %s", self.name, KILL_WAIT_S, left)
                return False
            gevent.sleep(POLL_S)
        if self.cgroup is not None:
            remove_cgroup(self.cgroup)  # emptied: only what is still exiting keeps it (Containment.close retries)
        return True

    def __repr__(self) -> str:
        where = f"cgroup {self.cgroup}" if self.cgroup is not None else "mark"
        return f"<EnvironmentProcesses {self.owner} by {where}>"


class Containment:
    """Every process of this pyrie run: the environments', and anything left below the supervisor."""

    def __init__(self, instance: str, *, cgroups: bool = True) -> None:
        """For pyrie run ``instance``; ``cgroups=False`` keeps to the mark even where cgroups could be made."""
        self.instance = instance
        self.census = ProcessCensus(instance)
        self.cgroup = _make_instance_cgroup(instance) if cgroups else None

    def environment(self, name: str) -> EnvironmentProcesses:
        """The processes of the environment called ``name`` (unique in this run), with a cgroup of its own where
        the machine offers one."""
        cgroup = None
        if self.cgroup is not None:
            cgroup = os.path.join(self.cgroup, name)
            try:
                os.mkdir(cgroup)
            except FileExistsError:
                pass
            except OSError as exc:
                log.warning("%s: no cgroup (%s: %s); its processes are found by their mark", name, cgroup, exc)
                cgroup = None
        return EnvironmentProcesses(self.instance, name, self.census, cgroup)

    def end_all(self, grace_s: float = 0.0) -> int:
        """Shutdown's last sweep: every process below the supervisor whatever its mark, every process with this
        run's mark wherever it is, everything in this run's cgroups. SIGTERM and up to ``grace_s`` to exit, then
        SIGKILL and up to ``KILL_WAIT_S``. Waits cooperatively. Returns how many there were."""
        found = self._everything()
        if found:
            log.info("ending %d processes left behind: %s", len(found), sorted(found))
        if grace_s > 0 and found:
            self._signal(found, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while self._everything() and time.monotonic() < deadline:
                gevent.sleep(POLL_S)
        deadline = time.monotonic() + KILL_WAIT_S
        while True:
            if self.cgroup is not None:
                cgroup_kill(self.cgroup)
            left = self._everything()
            self._signal(left, signal.SIGKILL)
            if not left:
                break
            if time.monotonic() >= deadline:
                log.warning("processes still there %.1f s after SIGKILL: %s", KILL_WAIT_S, sorted(left))
                break
            gevent.sleep(POLL_S)
        return len(found)

    def close(self) -> None:
        """Remove this run's cgroups (``end_all`` first)."""
        if self.cgroup is not None and not remove_cgroup(self.cgroup):
            log.warning("could not remove cgroup %s", self.cgroup)

    def _everything(self) -> dict[int, bool]:
        """Every process of this run now, each with whether it carries the run's mark."""
        found = {pid: False for pid in self.census.descendants(fresh=True)}
        if self.cgroup is not None:
            found.update((pid, False) for pid in cgroup_pids(self.cgroup) if pid not in found)
        found.update((pid, True) for pid in owned_pids(self.instance, exclude={os.getpid()}))
        return found

    def _signal(self, processes: dict[int, bool], signum: int) -> None:
        for pid, marked in processes.items():
            if marked:
                signal_owned(pid, self.instance, signum)  # found anywhere on the machine: checked again
            else:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signum)


def _join_cgroup(procs: str, pid: int) -> None:
    """Move ``pid`` and its descendants into the cgroup whose ``cgroup.procs`` is ``procs`` (in a thread: each move
    may wait for the kernel; after the first, the rest are quick). System calls only: the supervisor may fork
    meanwhile."""
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, str(current).encode())
            finally:
                os.close(fd)
        except OSError:
            continue  # gone already, or the cgroup is (its environment has ended)
        try:
            threads = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in threads:
            try:
                fd = os.open(f"/proc/{current}/task/{tid}/children", os.O_RDONLY)
                try:
                    pending.extend(int(child) for child in os.read(fd, 65536).split())
                finally:
                    os.close(fd)
            except (OSError, ValueError):
                continue


def _make_instance_cgroup(instance: str) -> str | None:
    """This run's cgroup, made below the supervisor's own; ``None`` where the machine does not let pyrie make one
    that it can move processes into and kill at once."""
    path = instance_cgroup(instance)
    if path is None:
        log.debug("no cgroup v2 here: processes are found by their mark")
        return None
    try:
        os.mkdir(path)
    except OSError as exc:
        log.debug("cannot make cgroup %s (%s): processes are found by their mark", path, exc.strerror)
        return None
    own = own_cgroup()
    usable = (
        os.path.exists(os.path.join(path, "cgroup.kill"))
        and os.access(os.path.join(path, "cgroup.procs"), os.W_OK)
        and own is not None
        and os.access(os.path.join(own, "cgroup.procs"), os.W_OK)
    )
    if not usable:
        log.debug("cgroup %s cannot take and kill processes: processes are found by their mark", path)
        remove_cgroup(path)
        return None
    log.debug("each environment's processes are kept in a cgroup below %s", path)
    return path
