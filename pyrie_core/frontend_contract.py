"""What the supervisor and its invoke front end agree on: the settings the front end runs with, the strings that name
the front end to gunicorn, and the environment variables a front end run on its own reads.

pyrie forks its front end from the supervisor (``supervisor.frontend_link.gunicorn_fork``) and hands it a
``FrontEndSettings`` in-process (``hand_over``) before gunicorn reads its configuration; a front end deployed on its
own (``gunicorn -c deploy/gunicorn.conf.py invoke_api.app:application``) builds the same settings from its
environment (``FrontEndSettings.from_env``). The front end asks ``frontend_settings()`` either way.

The supervisor names the front end only through these strings, never by importing it, so the two packages depend
only on this ground floor.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from pyrie_core import defaults

__all__ = [
    "FRONTEND_APP",
    "FRONTEND_CONFIG",
    "FUNCTION_TIMEOUT_ENV",
    "INIT_TIMEOUT_ENV",
    "INVOKE_ADDRESS_ENV",
    "REQUEST_READ_TIMEOUT_ENV",
    "SUPERVISOR_ADDRESS_ENV",
    "SUPERVISOR_SOCKET_ENV",
    "SUPERVISOR_TOKEN_ENV",
    "USER_CONFIG_ENV",
    "WORKER_CLASS",
    "FrontEndSettings",
    "SupervisorRun",
    "frontend_settings",
    "hand_over",
]

# Where a front end on its own finds the supervisor: a Unix socket, or, in a split deployment, the supervisor's TCP
# address and the token that lets a connection in.
SUPERVISOR_SOCKET_ENV: Final = "PYRIE_SUPERVISOR_SOCKET"
SUPERVISOR_ADDRESS_ENV: Final = "PYRIE_SUPERVISOR_ADDRESS"
SUPERVISOR_TOKEN_ENV: Final = "PYRIE_SUPERVISOR_TOKEN"
# pyrie's own variables (each the twin of a command-line option, or environment only) that a front end on its own
# reads too, and the function's timeout, which its graceful timeout follows.
INVOKE_ADDRESS_ENV: Final = "PYRIE_RUNTIME_INTERFACE_EMULATOR_ADDRESS"
INIT_TIMEOUT_ENV: Final = "PYRIE_INIT_TIMEOUT"
REQUEST_READ_TIMEOUT_ENV: Final = "PYRIE_REQUEST_READ_TIMEOUT"
USER_CONFIG_ENV: Final = "PYRIE_GUNICORN_CONFIG"
FUNCTION_TIMEOUT_ENV: Final = "AWS_LAMBDA_FUNCTION_TIMEOUT"

# The WSGI application and the gunicorn configuration module, as gunicorn's command line names them.
FRONTEND_APP: Final = "invoke_api.app:application"
FRONTEND_CONFIG: Final = "python:invoke_api.gunicorn_conf"
# gunicorn's gevent worker that serves requests with gevent's own pywsgi ("gevent_pywsgi": the same
# greenlet-per-connection model as the "gevent" class, with a lighter HTTP layer), with pyrie's lighter request handler
# (invoke_api.gunicorn_worker), which reads each request whole before it runs (invoke_api.worker).
WORKER_CLASS: Final = "invoke_api.worker.Worker"


@dataclass(frozen=True, slots=True)
class SupervisorRun:
    """The pyrie run a front end forked by its supervisor belongs to: if that supervisor dies, the front end ends
    the run (``invoke_api.supervisor_death``)."""

    supervisor_pid: int
    instance: str  # names the run's processes (``pyrie_core.process_ownership``)
    socket_dir: str  # the run's socket directory, removed at the end


@dataclass(frozen=True, slots=True)
class FrontEndSettings:
    """Everything the front end is told."""

    # Where the supervisor is: its Unix socket, or its TCP address (as written: a wrong one is answered with 503,
    # saying why) and the token it asks for.
    supervisor_socket: str | None = None
    supervisor_address: str | None = None
    supervisor_token: str | None = field(default=None, repr=False)
    run: SupervisorRun | None = None  # only for pyrie's own front end
    # The Function URL listener's bound address (host and port, as its getsockname() gives them), so the front end
    # tells its requests from the Invoke API's; None when Function URLs are off.
    function_url_listener: tuple[str, str] | None = None
    user_config: str | None = None  # a gunicorn configuration file applied over pyrie's defaults
    log_level: str = "INFO"  # of the front end's own lines, a logging level name
    gunicorn_log_level: str = "info"  # of gunicorn's own log
    # The graceful timeout follows them: a reload never cuts a response.
    function_timeout_s: float = defaults.FUNCTION_TIMEOUT_S
    init_timeout_s: float = defaults.INIT_TIMEOUT_S
    # Seconds a client has, from a request's first byte, to send all of it.
    request_read_timeout_s: float = defaults.REQUEST_READ_TIMEOUT_S
    bind: str = defaults.INVOKE_ADDRESS  # where a front end on its own listens

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FrontEndSettings:
        """A front end on its own: the settings its environment gives (an empty variable counts as unset);
        ``ValueError`` naming the variable when a number is wrong."""
        read_timeout = _seconds(env, REQUEST_READ_TIMEOUT_ENV, defaults.REQUEST_READ_TIMEOUT_S)
        if read_timeout <= 0:
            raise ValueError(f"{REQUEST_READ_TIMEOUT_ENV}: must be more than 0 seconds")
        return cls(
            supervisor_socket=env.get(SUPERVISOR_SOCKET_ENV) or None,
            supervisor_address=env.get(SUPERVISOR_ADDRESS_ENV) or None,
            supervisor_token=env.get(SUPERVISOR_TOKEN_ENV) or None,
            user_config=env.get(USER_CONFIG_ENV) or None,
            function_timeout_s=_seconds(env, FUNCTION_TIMEOUT_ENV, defaults.FUNCTION_TIMEOUT_S),
            init_timeout_s=_seconds(env, INIT_TIMEOUT_ENV, defaults.INIT_TIMEOUT_S),
            request_read_timeout_s=read_timeout,
            bind=env.get(INVOKE_ADDRESS_ENV) or defaults.INVOKE_ADDRESS,
        )


_settings: FrontEndSettings | None = None


def hand_over(settings: FrontEndSettings) -> None:
    """In pyrie's own front end, right after the fork: the settings it runs with."""
    global _settings  # noqa: PLW0603 - one front end per process
    _settings = settings


def frontend_settings() -> FrontEndSettings:
    """The front end's settings: those pyrie handed over, else (a front end on its own) its environment's, read
    once."""
    global _settings  # noqa: PLW0603 - one front end per process
    if _settings is None:
        _settings = FrontEndSettings.from_env(os.environ)
    return _settings


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name)
    if not text:
        return float(default)
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: {text!r} is not a non-negative number")
    return value
