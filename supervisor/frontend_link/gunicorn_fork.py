"""Starting the front end: gunicorn, forked from the supervisor (no exec), its settings handed over in-process.

The supervisor imports what it shares with the front end before the first fork and freezes it (``gc.freeze``, in
``supervisor.__main__``: neither process's collector then writes to those objects, so their pages stay shared); the
child becomes the gunicorn master, which imports the application and forks its workers from it. One import of the common
modules, and no second interpreter start on the way to the first invoke.

The child runs gunicorn's own command-line application over the arguments below, so gunicorn's precedence holds:
the module ``invoke_api.gunicorn_conf`` (pyrie's defaults, then the user's ``--gunicorn-config``), then
``GUNICORN_CMD_ARGS``, then these arguments, which are only what pyrie must control: the listeners it owns
(``--bind fd://N``), the worker class (streaming needs a gevent worker), ``--no-control-socket`` (the default control
socket path is one per machine, shared by every pyrie on it), and ``--workers`` when pyrie itself was given it. The
rest of what the front end needs (where the supervisor is, the run it belongs to, the timeouts) is a
``pyrie_core.frontend_contract.FrontEndSettings`` handed over before gunicorn reads its configuration.

The first front end is forked at start-up, before the supervisor has a gevent hub or a thread. One that replaces a
front end that died is forked from the running supervisor: its child first leaves the supervisor's state behind
(``_leave_the_supervisor``): the signal handlers and mask go back to their defaults, gevent's hub and its event loop
(libev's default loop, one per process) are dropped for the front end's own, stdout, stderr and logging go back to the
plain streams (the supervisor's writers belong to its threads), every inherited object is kept (frozen, and the hub
held) so that none of the supervisor's finalizers runs in the child, and every file descriptor but stdio and the
listeners is closed.

The front end runs in a process group of its own (a terminal's Ctrl-C reaches only the supervisor, which then stops
everything in order) and shows itself as ``pyrie-frontend`` with the run's mark (``pyrie_core.process_title``). It
exits with gunicorn's status, never returning into the supervisor's code; its workers, forked from it, leave the same
way.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import sys
import traceback
from typing import Final, NoReturn

from pyrie_core.frontend_contract import (
    FRONTEND_APP,
    FRONTEND_CONFIG,
    SUPERVISOR_ADDRESS_ENV,
    SUPERVISOR_TOKEN_ENV,
    WORKER_CLASS,
    FrontEndSettings,
    SupervisorRun,
    hand_over,
)
from pyrie_core.process_ownership import FRONTEND_GROUP, owner
from pyrie_core.process_title import show_as
from supervisor.config import Config
from supervisor.frontend_link.listeners import Listeners

__all__ = ["fork_gunicorn", "frontend_settings", "gunicorn_arguments"]

PROCESS_NAME: Final = "pyrie-frontend"  # what ps and top show for the front end's processes
# gunicorn's own log stays quiet unless pyrie's is turned up: at pyrie's default (info), gunicorn's warnings are
# about the workers pyrie itself stops or replaces.
_GUNICORN_LOG_LEVELS: Final = {"DEBUG": "debug", "INFO": "error", "WARNING": "warning", "ERROR": "error"}
# The signals the supervisor handles on its event loop; a child forked from it starts with the default for each.
_SUPERVISOR_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)
# What the child keeps of the supervisor's state, so that nothing of it is finalized there.
_left_behind: list[object] = []


def gunicorn_arguments(config: Config, listeners: Listeners) -> list[str]:
    """gunicorn's command line (after the program name): only what pyrie must control."""
    workers = [] if config.workers is None else ["--workers", str(config.workers)]
    return [
        "--config",
        FRONTEND_CONFIG,
        "--worker-class",
        WORKER_CLASS,
        *(arg for sock in listeners.frontend for arg in ("--bind", f"fd://{sock.fileno()}")),
        "--no-control-socket",
        *workers,
        FRONTEND_APP,
    ]


def frontend_settings(config: Config, listeners: Listeners) -> FrontEndSettings:
    """What pyrie's front end is told: where the supervisor is (its Unix socket: no token), the run it belongs to
    (it ends the run if the supervisor dies), and the values pyrie resolved."""
    url_listener = None
    if listeners.url is not None:
        host, port = listeners.url.getsockname()[:2]
        url_listener = (str(host), str(port))
    return FrontEndSettings(
        supervisor_socket=listeners.pipe_path,
        run=SupervisorRun(os.getpid(), listeners.instance, listeners.socket_dir),
        function_url_listener=url_listener,
        user_config=config.gunicorn_config,
        log_level=config.log_level,
        gunicorn_log_level=_GUNICORN_LOG_LEVELS.get(config.log_level, "error"),
        function_timeout_s=config.function.timeout_s,
        init_timeout_s=config.init_timeout_s,
        request_read_timeout_s=config.request_read_timeout_s,
    )


def fork_gunicorn(config: Config, listeners: Listeners) -> int:
    """Fork the front end's gunicorn master; returns its pid. Its exit is watched by
    ``supervisor.frontend_link.gunicorn_process``."""
    arguments = gunicorn_arguments(config, listeners)
    settings = frontend_settings(config, listeners)
    keep = {sock.fileno() for sock in listeners.frontend}
    pid = os.fork()
    if pid == 0:
        _become_gunicorn(arguments, settings, keep)
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)  # the child does the same: the group exists before either goes on
    return pid


def _become_gunicorn(arguments: list[str], settings: FrontEndSettings, keep: set[int]) -> NoReturn:
    """The forked child: run gunicorn as its master (and, in the workers it forks, as a worker), then exit with its
    status."""
    status = 1
    try:
        os.setpgid(0, 0)
        _leave_the_supervisor(keep)
        for secret in (SUPERVISOR_ADDRESS_ENV, SUPERVISOR_TOKEN_ENV):  # the split deployment's, not the front end's
            os.environ.pop(secret, None)
        assert settings.run is not None
        show_as(PROCESS_NAME, owner(settings.run.instance, FRONTEND_GROUP))
        hand_over(settings)
        sys.argv = [PROCESS_NAME, *arguments]
        from gunicorn.app.wsgiapp import WSGIApplication  # noqa: PLC0415 - the front end's alone

        WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]", prog=PROCESS_NAME).run()
        status = 0
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(status)


def _leave_the_supervisor(keep: set[int]) -> None:
    """In a child forked from the supervisor: drop what belongs to the supervisor's loop and threads (nothing at
    start-up; a running supervisor's hub, handlers, writers and descriptors when a front end is replaced)."""
    gc.freeze()  # no collection in this process writes to, or finalizes, what it inherited
    for signum in _SUPERVISOR_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    if "gevent" in sys.modules:
        from gevent import _hub_local  # noqa: PLC0415 - only where gevent is loaded

        hub = _hub_local.get_hub_if_exists()
        if hub is not None:
            # Kept, with its greenlets and watchers, never to run again; libev's default loop (one per process) is
            # destroyed, so that the front end's workers start a loop of their own without the supervisor's
            # watchers.
            _left_behind.append(hub)
            loop = hub.loop
            _left_behind.append(loop)
            loop.destroy()
            _hub_local.set_hub(None)
            _hub_local.set_loop(None)
    root = logging.getLogger()
    _left_behind.append(root.handlers[:])
    root.handlers.clear()
    _left_behind.append((sys.stdout, sys.stderr))
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    _close_all_but(keep)


def _close_all_but(keep: set[int]) -> None:
    """Close every descriptor above stderr except ``keep``."""
    try:
        open_fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: every possible one
        start = 3
        for fd in sorted(keep):
            os.closerange(start, fd)
            start = fd + 1
        os.closerange(start, os.sysconf("SC_OPEN_MAX"))
        return
    for fd in open_fds:
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def _exit_status(code: object) -> int:
    """The exit status ``sys.exit(code)`` gives, as the interpreter reckons it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    with contextlib.suppress(Exception):
        print(code, file=sys.stderr)
    return 1
