"""Starting gunicorn as the supervisor's child, with the standard library only (the first one is spawned before gevent
and the rest of pyrie are imported, so its boot overlaps theirs; later ones replace a gunicorn that died).

gunicorn's settings come from the module ``invoke_api.gunicorn_conf`` (pyrie's defaults, then the user's
``--gunicorn-config``), then ``GUNICORN_CMD_ARGS``. On the command line, which gunicorn applies last, pyrie puts only
what it must control: the listener it owns, the worker class (streaming needs a gevent worker),
``--no-control-socket`` (the default control socket path is one per machine, shared by every pyrie on it), and
``--workers`` when pyrie itself was given it.
"""

from __future__ import annotations

import os
import subprocess
from typing import Final

from pyrie_core.frontend_contract import (
    FRONTEND_APP,
    FRONTEND_CONFIG,
    FRONTEND_LOG_LEVEL_ENV,
    FUNCTION_URL_LISTENER_ENV,
    SUPERVISOR_ADDRESS_ENV,
    SUPERVISOR_PID_ENV,
    SUPERVISOR_SOCKET_ENV,
    SUPERVISOR_TOKEN_ENV,
    USER_CONFIG_ENV,
    WORKER_CLASS,
)
from pyrie_core.own_programs import own_program_command
from pyrie_core.process_ownership import FRONTEND_GROUP, OWNER_ENV, owner
from supervisor.config import Config
from supervisor.frontend_link.listeners import Listeners

__all__ = ["gunicorn_command", "gunicorn_environment", "spawn_gunicorn"]

# gunicorn's own log stays quiet unless pyrie's is turned up: at pyrie's default (info), gunicorn's warnings are
# about the workers pyrie itself stops or replaces.
_GUNICORN_LOG_LEVELS: Final = {"DEBUG": "debug", "INFO": "error", "WARNING": "warning", "ERROR": "error"}


def gunicorn_command(config: Config, listeners: Listeners) -> list[str]:
    workers = [] if config.workers is None else ["--workers", str(config.workers)]
    return [
        *own_program_command("gunicorn"),
        "--config",
        FRONTEND_CONFIG,
        "--worker-class",
        WORKER_CLASS,
        *(arg for sock in listeners.frontend for arg in ("--bind", f"fd://{sock.fileno()}")),
        "--no-control-socket",
        *workers,
        FRONTEND_APP,
    ]


def gunicorn_environment(config: Config, listeners: Listeners) -> dict[str, str]:
    """gunicorn's environment: pyrie's, with where the supervisor is, this run's mark (gunicorn ends the run when the
    supervisor dies) and what the configuration file needs."""
    env = dict(os.environ)
    for name in (SUPERVISOR_ADDRESS_ENV, SUPERVISOR_TOKEN_ENV, USER_CONFIG_ENV, FUNCTION_URL_LISTENER_ENV):
        env.pop(name, None)  # pyrie's own gunicorn uses the Unix socket, and no secret
    env[SUPERVISOR_SOCKET_ENV] = listeners.pipe_path
    env[SUPERVISOR_PID_ENV] = str(os.getpid())
    env[OWNER_ENV] = owner(listeners.instance, FRONTEND_GROUP)
    if listeners.url is not None:
        host, port = listeners.url.getsockname()[:2]
        env[FUNCTION_URL_LISTENER_ENV] = f"{host}:{port}"  # how the front end tells its requests apart
    if config.gunicorn_config is not None:
        env[USER_CONFIG_ENV] = config.gunicorn_config
    env[FRONTEND_LOG_LEVEL_ENV] = _GUNICORN_LOG_LEVELS.get(config.log_level, "error")
    # The graceful timeout follows the function: give the configuration the values pyrie resolved.
    env["AWS_LAMBDA_FUNCTION_TIMEOUT"] = str(config.function.timeout_s)
    env["PYRIE_INIT_TIMEOUT"] = str(config.init_timeout_s)
    return env


def spawn_gunicorn(config: Config, listeners: Listeners) -> subprocess.Popen[bytes]:
    """Start gunicorn in its own process group (a terminal's Ctrl-C reaches only the supervisor, which then stops
    everything in order). Its exit is watched by ``supervisor.frontend_link.gunicorn_process``, not through this
    Popen."""
    return subprocess.Popen(
        gunicorn_command(config, listeners),
        env=gunicorn_environment(config, listeners),
        pass_fds=tuple(sock.fileno() for sock in listeners.frontend),
        stdin=subprocess.DEVNULL,
        process_group=0,
    )
