"""Which processes belong to a pyrie run, and how anyone ends them: the owner mark every process pyrie starts carries,
and the cgroup pyrie puts an environment's processes in where the machine lets it.

The supervisor uses this, also before gevent is imported, and so does the front end's gunicorn master, which ends
everything of its pyrie run when the supervisor dies (``invoke_api.supervisor_death``): standard library only. Linux
only; elsewhere nothing is found and nothing is killed.

The mark is the environment variable ``PYRIE_OWNER=<instance>/<group>``: the instance names one pyrie run (its socket
directory is ``pyrie-<instance>``), the group an execution environment (``environment-3``) or ``frontend``. Children
inherit it however they detach (``setsid``, a double fork), and the kernel shows the environment a process was
started with in ``/proc/PID/environ``. A process that execs with a wiped environment (``env -i``) or overwrites the
memory of its environment (setproctitle) loses it; the cgroup still holds such a process where there is one. The
front end, forked from the supervisor without an exec, writes its mark into that memory itself
(``pyrie_core.process_title``).

The cgroup (v2, with ``cgroup.kill``, Linux 5.14) is ``<the supervisor's cgroup>/pyrie-<instance>/<group>``. A
process cannot leave it without write access to other cgroups, and ``cgroup.kill`` ends a whole subtree at once.

The functions that wait (``end_instance``) block: they are for processes without an event loop to keep going (the
front end's master after the supervisor died, pyrie's start-up).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Collection
from typing import Final

__all__ = [
    "FRONTEND_GROUP",
    "INSTANCE_PREFIX",
    "OWNER_ENV",
    "cgroup_kill",
    "cgroup_pids",
    "end_instance",
    "instance_cgroup",
    "own_cgroup",
    "owned_pids",
    "owner",
    "read_owner",
    "remove_cgroup",
    "signal_owned",
]

OWNER_ENV: Final = "PYRIE_OWNER"
# The socket directory of a pyrie run and its cgroup are both called this, followed by the instance.
INSTANCE_PREFIX: Final = "pyrie-"
FRONTEND_GROUP: Final = "frontend"

_KEY: Final = OWNER_ENV.encode() + b"="
_POLL_S: Final = 0.005


def owner(instance: str, group: str) -> str:
    """The mark's value for the processes of ``group`` in pyrie run ``instance``."""
    return f"{instance}/{group}"


def read_owner(pid: int) -> str | None:
    """The mark process ``pid`` was started with; ``None`` without one, or when it is gone (a zombie has none) or
    belongs to another user."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            data = environ.read()
    except OSError:
        return None
    if data.startswith(_KEY):
        start = len(_KEY)
    else:
        start = data.find(b"\0" + _KEY)
        if start == -1:
            return None
        start += 1 + len(_KEY)
    end = data.find(b"\0", start)
    return data[start : end if end != -1 else len(data)].decode(errors="replace")


def owned_pids(instance: str, group: str | None = None, exclude: Collection[int] = ()) -> list[int]:
    """Every live process on the machine that carries the mark of ``instance`` (of its ``group`` only, when given),
    found by reading each process's environment."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    wanted = owner(instance, group) if group is not None else None
    prefix = instance + "/"
    found = []
    for name in names:
        if not name.isdigit():
            continue
        pid = int(name)
        if pid in exclude:
            continue
        value = read_owner(pid)
        if value is None:
            continue
        if (value == wanted) if wanted is not None else value.startswith(prefix):
            found.append(pid)
    return found


def signal_owned(pid: int, instance: str, signum: int) -> bool:
    """Send ``signum`` to ``pid`` if it still carries the mark of ``instance``. Through a pidfd where the kernel has
    them, so that a process that took over the pid of one that exited is never hit."""
    prefix = instance + "/"
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    except (AttributeError, OSError):
        pidfd = -1  # no pidfds: the check and the kill are a moment apart
    try:
        value = read_owner(pid)
        if value is None or not value.startswith(prefix):
            return False
        if pidfd >= 0:
            signal.pidfd_send_signal(pidfd, signum)
        else:
            os.kill(pid, signum)
        return True
    except (ProcessLookupError, PermissionError):
        return False
    finally:
        if pidfd >= 0:
            os.close(pidfd)


# -- cgroup v2 ------------------------------------------------------------------------------------------------------


def own_cgroup() -> str | None:
    """The directory of this process's cgroup v2, or ``None`` when there is none to see (no cgroup v2 mounted, or
    the process's cgroup lies outside what is mounted here)."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as cgroups:
            path = next((line[3:].strip() for line in cgroups if line.startswith("0::")), None)
        with open("/proc/self/mountinfo", encoding="utf-8") as mounts:
            mount_lines = mounts.readlines()
    except OSError:
        return None
    if path is None or not path.startswith("/") or "/.." in path:
        return None
    for line in mount_lines:
        before, _, after = line.partition(" - ")
        fields = before.split()
        if not after.startswith("cgroup2 ") or len(fields) < 5:
            continue
        root, mount_point = fields[3], fields[4]
        if root == "/":
            relative = path
        elif path == root or path.startswith(root + "/"):
            relative = path[len(root) :]
        else:
            continue
        return os.path.normpath(mount_point + "/" + relative.lstrip("/"))
    return None


def instance_cgroup(instance: str) -> str | None:
    """Where pyrie run ``instance`` keeps its cgroups, if it runs in this process's cgroup (the supervisor and its
    front end do); whether it exists is for the caller to see."""
    base = own_cgroup()
    return None if base is None else os.path.join(base, INSTANCE_PREFIX + instance)


def cgroup_pids(path: str) -> list[int]:
    """The processes in cgroup ``path`` and the cgroups below it."""
    pids: list[int] = []
    for directory, _, _ in os.walk(path):
        try:
            with open(os.path.join(directory, "cgroup.procs"), "rb") as procs:
                pids.extend(int(pid) for pid in procs.read().split())
        except (OSError, ValueError):
            continue
    return pids


def cgroup_kill(path: str) -> bool:
    """SIGKILL to every process in cgroup ``path`` and below, at once; ``False`` if that could not be done."""
    try:
        with open(os.path.join(path, "cgroup.kill"), "wb", buffering=0) as kill:
            kill.write(b"1")
    except OSError:
        return False
    return True


def remove_cgroup(path: str) -> bool:
    """Remove cgroup ``path`` and those below it, the deepest first; ``False`` when one still has processes (or
    could not be removed). A cgroup empties once its killed processes have finished exiting."""
    if not os.path.isdir(path):
        return True
    removed = True
    for directory, _, _ in os.walk(path, topdown=False):
        try:
            os.rmdir(directory)
        except FileNotFoundError:
            continue
        except OSError:
            removed = False
    return removed


# -- ending a whole run -----------------------------------------------------------------------------------------


def end_instance(
    instance: str, *, socket_dir: str | None = None, exclude: Collection[int] = (), deadline_s: float = 0.5
) -> int:
    """SIGKILL every process of pyrie run ``instance``: its cgroup at once, then every process with its mark, again
    and again until none is left or ``deadline_s`` has passed; then remove its cgroups and ``socket_dir``. Blocks
    (for the front end's master and for start-up, never the supervisor's loop). Returns how many marked processes
    were killed."""
    deadline = time.monotonic() + deadline_s
    cgroup = instance_cgroup(instance)
    if cgroup is not None and os.path.isdir(cgroup):
        cgroup_kill(cgroup)
    killed: set[int] = set()
    while True:
        found = owned_pids(instance, exclude=exclude)
        killed.update(pid for pid in found if signal_owned(pid, instance, signal.SIGKILL))
        if not found or time.monotonic() >= deadline:
            break
        time.sleep(_POLL_S)  # killed processes lose their mark as they exit
    if cgroup is not None:
        while not remove_cgroup(cgroup) and time.monotonic() < deadline:
            time.sleep(_POLL_S)
    if socket_dir is not None:
        with contextlib.suppress(OSError):
            shutil.rmtree(socket_dir)
    return len(killed)
