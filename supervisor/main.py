"""The root process: owns the sockets, the front end, the environments, and the order of shutdown.

Start-up: bind the invoke listener and the private pipe socket (so a busy port stops pyrie at once), start gunicorn
as a child, serve the pipe. Environments start lazily, on the first invoke, like the Go emulator's runtime.

Shutdown (SIGTERM/SIGINT, or the front end dying): refuse new invokes, let gunicorn finish its in-flight requests
while running invokes get a grace period, end every environment (SIGTERM, then SIGKILL to each process group), stop
gunicorn, remove the socket directory. Signal handlers only set an event; the main greenlet does the work.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import tempfile
from typing import Final

import gevent
import gevent.event
import gevent.socket

from supervisor.config import Address, Config
from supervisor.dispatcher import Dispatcher
from supervisor.frontend import FrontEnd
from supervisor.logs import FunctionLog
from supervisor.pipe_server import PipeServer

__all__ = ["StartupError", "Supervisor"]

log = logging.getLogger(__name__)

# In-flight invokes get this long to finish when pyrie is asked to stop.
SHUTDOWN_GRACE_S: Final = 2.0
# Then gunicorn gets this long to write the last bytes it was given, and this long to exit.
FLUSH_S: Final = 0.05
FRONTEND_EXIT_S: Final = 2.0


class StartupError(Exception):
    """pyrie cannot start; the message is the one line shown to the user."""


class Supervisor:
    def __init__(self, config: Config) -> None:
        self.config = config
        self._stop_requested = gevent.event.Event()
        self._stopping = False
        self._exit_code = 0
        self._invoke_listener = _listen_tcp(config.invoke_address, "the Invoke API")
        try:
            _check_free(config.runtime_api_address)
        except StartupError:
            self._invoke_listener.close()
            raise
        self._socket_dir = tempfile.mkdtemp(prefix="pyrie-")  # mode 0700: only pyrie's user can reach the pipe
        pipe_path = os.path.join(self._socket_dir, "supervisor.sock")
        self._pipe_listener = _listen_unix(pipe_path)
        self.dispatcher = Dispatcher(config, FunctionLog())
        self._pipe_server = PipeServer(self._pipe_listener, self.dispatcher)
        self._frontend = FrontEnd(config, self._invoke_listener, pipe_path, self._frontend_exited)

    def run(self) -> int:
        """Serve until asked to stop; returns the process exit status."""
        self._pipe_server.start()
        self._frontend.start()
        for signum in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(signum, self._request_stop, signum)
        log.info(
            "pyrie listening on %s (Invoke API), runtime API at %s, function %s: %s",
            self.config.invoke_address,
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
        self.dispatcher.shutdown(SHUTDOWN_GRACE_S)
        gevent.sleep(FLUSH_S)
        self._frontend.stop(FRONTEND_EXIT_S)
        self._pipe_server.stop()
        for sock in (self._invoke_listener, self._pipe_listener):
            sock.close()
        shutil.rmtree(self._socket_dir, ignore_errors=True)


def _listen_tcp(address: Address, what: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address.host, address.port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on {address} for {what}: {exc.strerror}") from None
    return sock


def _check_free(address: Address) -> None:
    """Fail at start-up, not at the first invoke, when the Runtime API address cannot be bound."""
    _listen_tcp(address, "the Runtime API").close()


def _listen_unix(path: str) -> socket.socket:
    sock = gevent.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(1024)
    return sock
