"""What pyrie's own front end does when the supervisor that forked it dies: end everything of that pyrie run.

Under pyrie (the settings handed over name the run, ``pyrie_core.frontend_contract.SupervisorRun``, and the supervisor
is the master's parent), the gunicorn master asks the kernel for ``SUPERVISOR_DIED`` when its parent dies
(``PR_SET_PDEATHSIG``): no thread, no polling. On it, the master kills every process of the run (its cgroups, then
each process with its mark: runtimes, extensions, whatever they left running, gunicorn's own workers), removes the
socket directory and exits, so a pyrie started again binds its ports at once. Each worker asks for SIGKILL when the
master dies, so a master that is killed leaves no worker behind (pyrie starts a new front end).

A front end deployed on its own (no run) does nothing of this, and neither does a gunicorn master that is not the
supervisor's child.
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Final, NoReturn

from pyrie_core.frontend_contract import SupervisorRun
from pyrie_core.linux_prctl import set_parent_death_signal
from pyrie_core.process_ownership import end_instance

__all__ = ["SUPERVISOR_DIED", "watch_supervisor", "worker_started"]

# A signal gunicorn does not handle and nobody else sends: the kernel sends it to the master when the supervisor dies.
SUPERVISOR_DIED: Final = signal.SIGPWR


def watch_supervisor(run: SupervisorRun | None) -> bool:
    """In the gunicorn master, when it reads its configuration: end ``run`` when its supervisor dies. ``False``
    where there is nothing to watch (not under pyrie, or not the supervisor's child)."""
    if run is None or not hasattr(signal, "SIGPWR"):
        return False
    if os.getppid() != run.supervisor_pid:
        if _alive(run.supervisor_pid):
            return False
        _end(run)  # it died while this gunicorn was starting
    signal.signal(SUPERVISOR_DIED, lambda signum, frame: _end(run))
    if not set_parent_death_signal(SUPERVISOR_DIED):
        return False
    if os.getppid() != run.supervisor_pid:
        _end(run)  # it died before the kernel knew to tell
    return True


def worker_started(master: int, run: SupervisorRun | None) -> None:
    """In each gunicorn worker of ``run``'s front end, right after the fork from ``master``: die with the master."""
    if run is None:
        return
    signal.signal(SUPERVISOR_DIED, signal.SIG_DFL)
    set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != master:
        os._exit(0)


def _end(run: SupervisorRun) -> NoReturn:
    end_instance(run.instance, socket_dir=run.socket_dir, exclude={os.getpid()})
    said = f"pyrie: the supervisor (pid {run.supervisor_pid}) died; its front end killed what it had started\n"
    with contextlib.suppress(OSError):
        os.write(2, said.encode())
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
