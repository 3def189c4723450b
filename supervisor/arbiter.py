"""The root process: owns the sockets, the front end, the environments, and the order of shutdown.

Start-up: bind the invoke listener, the private pipe socket and, for a split deployment, the pipe's TCP listener
(so a busy port stops pyrie at once), fork gunicorn (``supervisor.frontend_link.gunicorn_fork``), serve the pipe.
Environments start lazily, on the first invoke, like the Go emulator's runtime.

While running: if gunicorn dies, its leftover workers are ended and a new gunicorn serves the same listener (the
connections that arrive meanwhile wait in its backlog); one that fails to boot is not restarted in a loop, pyrie
gives up with one line and exits 1 (``supervisor.frontend_link.restart_policy``). SIGHUP is passed to the gunicorn
master, which replaces its workers gracefully: in-flight responses finish on the old ones.

Shutdown (SIGTERM/SIGINT, or giving up on the front end): refuse new invokes, let gunicorn finish its in-flight
requests while running invokes get a grace period, end every environment (SIGTERM, then SIGKILL to each process
group), let the pipe's connections write out what they hold for the front end (with a deadline), stop gunicorn, end
whatever is still left below the supervisor or carries this run's mark
(``supervisor.processes.containment``), remove the socket directory.

If the supervisor itself is killed, what it started dies with it: see ``supervisor.processes.containment``.

Signal handlers and the gunicorn watcher only queue an event; the main greenlet takes them one at a time and does
the work, like gunicorn's arbiter.
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import gevent
import gevent.queue
import gevent.socket

from pyrie_core.lambda_errors import exit_description
from supervisor.config import Config
from supervisor.durable.front_desk import front_desk, open_durable_api
from supervisor.frontend_link.gunicorn_fork import fork_gunicorn
from supervisor.frontend_link.gunicorn_process import FrontEnd
from supervisor.frontend_link.listeners import Listeners
from supervisor.frontend_link.pipe_server import PipeServer
from supervisor.frontend_link.restart_policy import RestartPolicy, Verdict
from supervisor.observe.function_log import FunctionLog
from supervisor.observe.logging_setup import flush_log
from supervisor.pool.code_watcher import CodeWatcher
from supervisor.pool.environment_pool import Pool
from supervisor.processes.containment import Containment
from supervisor.processes.subreaper import become_subreaper
from supervisor.reactor import Reactor

if TYPE_CHECKING:
    from pyrie_durable.store import Store

__all__ = ["Supervisor"]

log = logging.getLogger(__name__)

# In-flight invokes get this long to finish when pyrie is asked to stop.
SHUTDOWN_GRACE_S: Final = 2.0
# Then what the pipe's connections still hold for the front end gets up to this long to be written to it (a connection
# whose worker reads nothing more, its client stalled, holds the rest), and gunicorn this long to exit (its workers'
# greenlets get a tenth of a second to relay what they read).
FLUSH_S: Final = 0.05
FRONTEND_EXIT_S: Final = 2.0
# What is left to write to stdout and stderr gets this long (a reader that stays paused loses it).
OUTPUT_FLUSH_S: Final = 1.0
# What is still left below the supervisor after that gets this long between SIGTERM and SIGKILL.
LEFTOVER_GRACE_S: Final = 0.2


@dataclass(frozen=True, slots=True)
class _Stop:
    signum: int


@dataclass(frozen=True, slots=True)
class _Reload:
    pass


@dataclass(frozen=True, slots=True)
class _FrontEndExited:
    returncode: int
    uptime_s: float


_Event = _Stop | _Reload | _FrontEndExited


class Supervisor:
    def __init__(
        self,
        config: Config,
        listeners: Listeners,
        gunicorn: int,
        durable_store: Store | None = None,
    ) -> None:
        """Take over the listeners, the gunicorn master (its pid) and the durable store that ``supervisor.__main__``
        started (``None``: a durable function's executions are kept in memory)."""
        # A durable function's runtime reaches the durable APIs on a loopback listener of the supervisor's own, bound
        # first: the runtime's environment names it.
        durable_api, config = open_durable_api(config)
        self.config = config
        self._listeners = listeners
        self._events: gevent.queue.Queue[_Event] = gevent.queue.Queue()
        self._exit_code = 0
        self._restarts = RestartPolicy()
        self.containment = Containment(listeners.instance)  # every process this run starts (processes.containment)
        self._function_log = FunctionLog()
        self._reactor = Reactor()
        self.pool = Pool(config, self._function_log, self._reactor, self.containment)
        # Durable invokes and the durable APIs; the rest goes to the pool.
        self.desk = front_desk(self.pool, config, durable_store, durable_api)
        pipe = gevent.socket.socket(fileno=listeners.pipe.detach())
        self._pipe_servers = [PipeServer(pipe, self.desk)]
        if listeners.pipe_tcp is not None:
            pipe_tcp = gevent.socket.socket(fileno=listeners.pipe_tcp.detach())
            self._pipe_servers.append(PipeServer(pipe_tcp, self.desk, token=config.supervisor_token))
        self._frontend = FrontEnd(gunicorn, self._frontend_exited)
        watch = config.pool.watch_path
        self._watcher = CodeWatcher(watch, self.pool.code_changed) if watch else None

    def run(self) -> int:
        """Serve until asked to stop; returns the process exit status. Whatever ends the serving (a signal, giving
        up on the front end, an exception), the shutdown runs in order."""
        # First: they only queue, so a signal that comes while the rest starts is taken once it has started.
        for signum in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(signum, self._events.put, _Stop(signum))
        gevent.signal_handler(signal.SIGHUP, self._events.put, _Reload())
        try:
            self._serve()
        finally:
            self._shutdown()
        return self._exit_code

    def _serve(self) -> None:
        become_subreaper()
        for server in self._pipe_servers:
            server.start()
        self.pool.start()
        self.desk.start()
        if self._watcher is not None:
            self._watcher.start()
        urls = f", Function URLs on {self.config.function_url_address}" if self._listeners.url is not None else ""
        log.info(
            "pyrie listening on %s (Invoke API%s), runtime API at %s, function %s: %s",
            self.config.invoke_address,
            urls,
            self.config.runtime_api_address,
            self.config.function.name,
            " ".join(self.config.function.command),
        )
        if self.config.supervisor_address is not None:
            log.info("front ends may also connect on %s (token required)", self.config.supervisor_address)
        for socket_dir, killed in self._listeners.stale:
            log.info("cleaned up after a pyrie that died: removed %s, killed %d of its processes", socket_dir, killed)
        while True:
            event = self._events.get()
            if isinstance(event, _Stop):
                log.debug("received %s", signal.Signals(event.signum).name)
                break
            if isinstance(event, _Reload):
                log.info("SIGHUP: reloading the front end (gunicorn replaces its workers gracefully)")
                self._frontend.reload()
            elif not self._recover(event):
                break

    def _frontend_exited(self, returncode: int, uptime_s: float) -> None:
        self._events.put(_FrontEndExited(returncode, uptime_s))

    def _recover(self, exited: _FrontEndExited) -> bool:
        """Start a new front end after one died; ``False`` when pyrie gives up (and will exit 1)."""
        how = exit_description(exited.returncode)
        self._frontend.kill_leftovers()
        if self._restarts.after_exit(exited.uptime_s, exited.returncode) is Verdict.GIVE_UP:
            log.error(
                "the front end (gunicorn) failed to start (%s, after %.1f s); giving up: see its messages above "
                "(--gunicorn-config, GUNICORN_CMD_ARGS)",
                how,
                exited.uptime_s,
            )
            self._exit_code = 1
            return False
        log.warning("the front end (gunicorn) exited unexpectedly (%s); starting a new one", how)
        self._frontend = FrontEnd(fork_gunicorn(self.config, self._listeners), self._frontend_exited)
        return True

    def _shutdown(self) -> None:
        log.info("shutting down")
        self._frontend.stop_accepting()
        if self._watcher is not None:
            self._watcher.stop()
        self.desk.close()  # before the pool: no durable invoke starts or is judged while environments go
        self.pool.shutdown(SHUTDOWN_GRACE_S)
        deadline = time.monotonic() + FLUSH_S
        for server in self._pipe_servers:
            if not server.flush(max(0.0, deadline - time.monotonic())):
                log.info("shutting down with bytes for the front end still unwritten after %g s", FLUSH_S)
        self._frontend.stop(FRONTEND_EXIT_S)
        for server in self._pipe_servers:
            server.stop()
        self.containment.end_all(LEFTOVER_GRACE_S)
        self._listeners.close()
        self.containment.close()
        self._reactor.stop()
        self._function_log.flush(OUTPUT_FLUSH_S)
        flush_log(OUTPUT_FLUSH_S)
