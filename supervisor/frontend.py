"""The invoke front end as the supervisor's child: gunicorn with gevent workers serving ``invoke_api.app``.

The supervisor binds the invoke listener itself and hands gunicorn the file descriptor (``--bind fd://N``): a busy
port fails pyrie at start-up with one clear line, and connections wait in the listener's backlog while gunicorn
boots. gunicorn runs in its own process group, so a terminal's Ctrl-C reaches only the supervisor, which then shuts
everything down in order.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable

import gevent
import gevent.subprocess

from supervisor.config import Config
from supervisor.messages import SUPERVISOR_SOCKET_ENV

__all__ = ["FrontEnd"]

log = logging.getLogger(__name__)

_GUNICORN_LOG_LEVELS = {"DEBUG": "debug", "INFO": "warning", "WARNING": "warning", "ERROR": "error"}


class FrontEnd:
    def __init__(self, config: Config, listener: socket.socket, pipe_path: str, on_exit: Callable[[int], None]) -> None:
        self._config = config
        self._listener = listener
        self._pipe_path = pipe_path
        self._on_exit = on_exit
        self._popen: gevent.subprocess.Popen | None = None
        self._waiter: gevent.Greenlet | None = None

    def command(self) -> list[str]:
        fd = self._listener.fileno()
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "--worker-class",
            "gevent",
            "--workers",
            str(self._config.workers),
            "--bind",
            f"fd://{fd}",
            "--no-control-socket",
            "--log-level",
            _GUNICORN_LOG_LEVELS.get(self._config.log_level, "error"),
            "--graceful-timeout",
            "5",
            "invoke_api.app:application",
        ]

    def start(self) -> None:
        env = dict(os.environ)
        env[SUPERVISOR_SOCKET_ENV] = self._pipe_path
        self._popen = gevent.subprocess.Popen(
            self.command(),
            env=env,
            pass_fds=(self._listener.fileno(),),
            stdin=gevent.subprocess.DEVNULL,
            process_group=0,
        )
        self._waiter = gevent.spawn(self._wait)
        log.debug("front end started (gunicorn, pid %d)", self._popen.pid)

    def stop_accepting(self) -> None:
        """SIGTERM: gunicorn closes its listener and lets the requests it has finish."""
        self._signal(signal.SIGTERM)

    def stop(self, grace_s: float) -> None:
        """End gunicorn now that the supervisor has answered every request it had: SIGQUIT (gunicorn's quick
        stop, which does not wait for idle keep-alive connections), then SIGKILL to the group after ``grace_s``."""
        if self._waiter is None:
            return
        self._signal(signal.SIGQUIT)
        self._waiter.join(timeout=grace_s)
        self._signal(signal.SIGKILL)
        self._waiter.join()

    def _signal(self, signum: int) -> None:
        if self._popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._popen.pid, signum)

    def _wait(self) -> None:
        assert self._popen is not None
        returncode = self._popen.wait()
        self._on_exit(returncode)
