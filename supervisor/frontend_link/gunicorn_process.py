"""The invoke front end as the supervisor's child: gunicorn with gevent workers serving ``invoke_api.app``.

The supervisor binds the invoke listener itself and hands gunicorn the file descriptor (``--bind fd://N``), so
connections wait in the listener's backlog while gunicorn boots, or boots again after it died. gunicorn is forked
by ``supervisor.frontend_link.gunicorn_fork`` (the first time early, before the supervisor's event loop exists);
this module watches one gunicorn with gevent's child watcher, passes SIGHUP on to it, ends what is left of it when
it died, and stops it when pyrie shuts down.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Final

import gevent
import gevent.event

__all__ = ["FrontEnd"]

log = logging.getLogger(__name__)

# After SIGKILL, ``stop`` waits this long for gunicorn's exit to be seen.
KILLED_EXIT_S: Final = 1.0


class FrontEnd:
    def __init__(self, pid: int, on_exit: Callable[[int, float], None]) -> None:
        """The gunicorn master ``pid``, a child of this process; ``on_exit(returncode, uptime_s)`` is called once,
        when it exits, whatever the cause."""
        self.pid = pid
        self._on_exit = on_exit
        self._started = time.monotonic()
        self.returncode: int | None = None
        self._exited = gevent.event.Event()
        self._watcher = gevent.get_hub().loop.child(self.pid, False)
        self._watcher.start(self._child_changed)
        # gunicorn may have exited before the watcher existed: ask the kernel once.
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid == self.pid:
            gevent.spawn(self._exit, status)

    def reload(self) -> None:
        """SIGHUP to the gunicorn master: it rereads its configuration, starts new workers and lets the old ones
        finish their requests (within ``graceful_timeout``)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGHUP)

    def kill_leftovers(self) -> None:
        """After the master died: end its workers now. They die with it already (each asks for SIGKILL when its
        master dies, ``invoke_api.supervisor_death``); this is the second net, for a worker that would otherwise
        accept connections the next gunicorn should get."""
        self._signal(signal.SIGKILL)

    def stop_accepting(self) -> None:
        """SIGTERM: gunicorn closes its listener and lets the requests it has finish."""
        self._signal(signal.SIGTERM)

    def stop(self, grace_s: float) -> None:
        """End gunicorn now that the supervisor has answered every request it had: SIGQUIT (gunicorn's quick
        stop, which does not wait for idle keep-alive connections), then SIGKILL to the group after ``grace_s``."""
        self._signal(signal.SIGQUIT)
        self._exited.wait(timeout=grace_s)
        self._signal(signal.SIGKILL)
        if not self._exited.wait(timeout=KILLED_EXIT_S):
            log.warning("the front end (gunicorn, pid %d) has not exited %.1f s after SIGKILL", self.pid, KILLED_EXIT_S)

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)

    def _child_changed(self) -> None:
        # Runs in the hub: hand the work to a greenlet.
        gevent.spawn(self._exit, self._watcher.rstatus)

    def _exit(self, status: int) -> None:
        if self._exited.is_set():
            return
        self._watcher.stop()
        self.returncode = os.waitstatus_to_exitcode(status)
        log.debug("front end (gunicorn, pid %d) exited: %s", self.pid, self.returncode)
        self._exited.set()
        self._on_exit(self.returncode, time.monotonic() - self._started)
