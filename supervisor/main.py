"""The root process: owns the sockets, the front end, the environments, and the order of shutdown.

Start-up: bind the invoke listener and the private pipe socket (so a busy port stops pyrie at once), start gunicorn
as a child, serve the pipe. Environments start lazily, on the first invoke, like the Go emulator's runtime.

Shutdown (SIGTERM/SIGINT, or the front end dying): refuse new invokes, let gunicorn finish its in-flight requests
while running invokes get a grace period, end every environment (SIGTERM, then SIGKILL to each process group), stop
gunicorn, remove the socket directory. Signal handlers only set an event; the main greenlet does the work.
"""

from __future__ import annotations

import logging
import signal
import subprocess
from typing import Final

import gevent
import gevent.event
import gevent.socket

from supervisor.config import Config
from supervisor.dispatcher import Dispatcher
from supervisor.frontend import FrontEnd
from supervisor.listeners import Listeners
from supervisor.logs import FunctionLog
from supervisor.pipe_server import PipeServer
from supervisor.reaper import become_subreaper
from supervisor.watcher import CodeWatcher

__all__ = ["Supervisor"]

log = logging.getLogger(__name__)

# In-flight invokes get this long to finish when pyrie is asked to stop.
SHUTDOWN_GRACE_S: Final = 2.0
# Then gunicorn gets this long to write the last bytes it was given, and this long to exit.
FLUSH_S: Final = 0.05
FRONTEND_EXIT_S: Final = 2.0


class Supervisor:
    def __init__(self, config: Config, listeners: Listeners, gunicorn: subprocess.Popen[bytes]) -> None:
        """Take over the listeners and the gunicorn child that ``supervisor.__main__`` started."""
        self.config = config
        self._listeners = listeners
        self._stop_requested = gevent.event.Event()
        self._stopping = False
        self._exit_code = 0
        self.dispatcher = Dispatcher(config, FunctionLog())
        pipe = gevent.socket.socket(fileno=listeners.pipe.detach())
        self._pipe_server = PipeServer(pipe, self.dispatcher)
        self._frontend = FrontEnd(gunicorn, self._frontend_exited)
        watch = config.pool.watch_path
        self._watcher = CodeWatcher(watch, self.dispatcher.code_changed) if watch else None

    def run(self) -> int:
        """Serve until asked to stop; returns the process exit status."""
        become_subreaper()
        self._pipe_server.start()
        self.dispatcher.start()
        if self._watcher is not None:
            self._watcher.start()
        for signum in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(signum, self._request_stop, signum)
        urls = f", Function URLs on {self.config.function_url_address}" if self._listeners.url is not None else ""
        log.info(
            "pyrie listening on %s (Invoke API%s), runtime API at %s, function %s: %s",
            self.config.invoke_address,
            urls,
            self.config.runtime_api_address,
            self.config.function.name,
            " ".join(self.config.function.command),
        )
        self._stop_requested.wait()
        self._shutdown()
        return self._exit_code

    def _request_stop(self, signum: int) -> None:
        # A signal handler: only note the request; the main greenlet does the work.
        log.debug("received %s", signal.Signals(signum).name)
        self._stop_requested.set()

    def _frontend_exited(self, returncode: int) -> None:
        if self._stopping:
            return
        log.error("the front end (gunicorn) exited unexpectedly with status %s; shutting down", returncode)
        self._exit_code = 1
        self._stop_requested.set()

    def _shutdown(self) -> None:
        self._stopping = True
        log.info("shutting down")
        self._frontend.stop_accepting()
        if self._watcher is not None:
            self._watcher.stop()
        self.dispatcher.shutdown(SHUTDOWN_GRACE_S)
        gevent.sleep(FLUSH_S)
        self._frontend.stop(FRONTEND_EXIT_S)
        self._pipe_server.stop()
        self._listeners.close()
