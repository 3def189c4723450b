"""What pyrie's own front end does when the supervisor that started it dies: end everything of that pyrie run.

Under pyrie (``PYRIE_SUPERVISOR_PID`` and ``PYRIE_OWNER`` set, and the supervisor the master's parent), the gunicorn
master asks the kernel for ``SUPERVISOR_DIED`` when its parent dies (``PR_SET_PDEATHSIG``): no thread, no polling.
On it, the master kills every process of the run (its cgroups, then each process with its mark: runtimes,
extensions, whatever they left running, gunicorn's own workers), removes the socket directory and exits, so a pyrie
started again binds its ports at once. Each worker asks for SIGKILL when the master dies, so a master that is killed
leaves no worker behind (pyrie starts a new front end).

A front end deployed on its own (neither variable) does nothing of this, and neither does a gunicorn master that
is not the supervisor's child (one that gunicorn itself re-executed).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, NoReturn

from pyrie_core.frontend_contract import SUPERVISOR_PID_ENV, SUPERVISOR_SOCKET_ENV
from pyrie_core.linux_prctl import set_parent_death_signal
from pyrie_core.process_ownership import INSTANCE_PREFIX, OWNER_ENV, end_instance

__all__ = ["SUPERVISOR_DIED", "watch_supervisor", "worker_started"]

# A signal gunicorn does not handle and nobody else sends: the kernel sends it to the master when the supervisor dies.
SUPERVISOR_DIED: Final = signal.SIGPWR


@dataclass(frozen=True)
class _Run:
    supervisor: int
    instance: str
    socket_dir: str | None  # removed at the end; only a directory named after the instance


def _run(environ: Mapping[str, str]) -> _Run | None:
    """The pyrie run this front end belongs to, when pyrie started it."""
    pid, mark = environ.get(SUPERVISOR_PID_ENV), environ.get(OWNER_ENV)
    if not pid or not pid.isdigit() or not mark or "/" not in mark:
        return None
    instance = mark.split("/", 1)[0]
    socket_dir = os.path.dirname(environ.get(SUPERVISOR_SOCKET_ENV, ""))
    if os.path.basename(socket_dir) != INSTANCE_PREFIX + instance:
        socket_dir = ""
    return _Run(int(pid), instance, socket_dir or None)


def watch_supervisor(environ: Mapping[str, str] = os.environ) -> bool:
    """In the gunicorn master, when it reads its configuration: end the run when the supervisor dies. ``False``
    where there is nothing to watch (not under pyrie, or not the supervisor's child)."""
    run = _run(environ)
    if run is None or not hasattr(signal, "SIGPWR"):
        return False
    if os.getppid() != run.supervisor:
        if _alive(run.supervisor):
            return False
        _end(run)  # it died while this gunicorn was starting
    signal.signal(SUPERVISOR_DIED, lambda signum, frame: _end(run))
    if not set_parent_death_signal(SUPERVISOR_DIED):
        return False
    if os.getppid() != run.supervisor:
        _end(run)  # it died before the kernel knew to tell
    return True


def worker_started(master: int, environ: Mapping[str, str] = os.environ) -> None:
    """In each gunicorn worker, right after the fork from ``master``: die with the master."""
    if _run(environ) is None:
        return
    signal.signal(SUPERVISOR_DIED, signal.SIG_DFL)
    set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != master:
        os._exit(0)


def _end(run: _Run) -> NoReturn:
    end_instance(run.instance, socket_dir=run.socket_dir, exclude={os.getpid()})
    with contextlib.suppress(OSError):
        os.write(
            2, f"pyrie: the supervisor (pid {run.supervisor}) died; its front end killed what it had started\n".encode()
        )
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
