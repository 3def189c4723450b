"""How the front end's gunicorn is tuned, worked out from the function it serves.

Both gunicorn configurations use these: pyrie's own (``invoke_api/gunicorn_conf.py``, the defaults under a user's
``--gunicorn-config``) and ``deploy/gunicorn.conf.py`` (the documented one, also for a front end run on its own).
Everything is read from the environment, so one file fits every function.

The timeouts that matter for streaming: gunicorn gives old workers ``graceful_timeout`` seconds to finish their
requests on a reload (SIGHUP) or a stop, then kills them. A response can take as long as the function's init plus its
timeout, so the grace is that plus a margin, and a reload never cuts a stream. ``timeout`` (the worker heartbeat)
does not limit a request in gevent workers, which keep beating while they stream. ``keepalive`` (how long an idle
connection waits for its next request) is applied by pyrie's worker, ``invoke_api.worker.Worker``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Final

from pyrie_core.frontend_contract import FRONTEND_LOG_LEVEL_ENV, USER_CONFIG_ENV, WORKER_CLASS

__all__ = [
    "DEFAULT_BIND",
    "DEFAULT_WORKERS",
    "FRONTEND_LOG_LEVEL_ENV",
    "KEEPALIVE_S",
    "REQUEST_READ_TIMEOUT_ENV",
    "REQUEST_READ_TIMEOUT_S",
    "USER_CONFIG_ENV",
    "WORKER_CLASS",
    "WORKER_CONNECTIONS",
    "bind",
    "graceful_timeout",
    "log_level",
    "pyrie_log_level",
    "request_read_timeout",
    "workers",
]


DEFAULT_BIND: Final = "0.0.0.0:8080"  # the Go emulator's invoke address
# Idle keep-alive connections stay open this long: longer than the 60 s idle timeout of common load balancers, so
# they close first, and long enough for SDK connection pools to reuse a connection between invokes.
KEEPALIVE_S: Final = 75
WORKER_CONNECTIONS: Final = 1000  # per worker; each in-flight invoke holds one
# One gevent worker relays many invokes at once; the supervisor, one process, runs out of CPU long before it does.
# Measured on the bench (2 CPUs): one worker serves 8 callers on a 20 ms handler as fast as two, and more echo
# invokes per second with 8 callers, and it saves a process (about 27 MiB of RSS) at idle.
DEFAULT_WORKERS: Final = 1
GRACE_MARGIN_S: Final = 10  # on top of init + function timeout: relaying the last bytes, a slow client
# Seconds a client has to send a whole request (head and body) from its first byte: a 6 MB body at 1 Mbit/s fits.
REQUEST_READ_TIMEOUT_ENV: Final = "PYRIE_REQUEST_READ_TIMEOUT"
REQUEST_READ_TIMEOUT_S: Final = 60.0

_FUNCTION_TIMEOUT_DEFAULT: Final = "300"  # AWS_LAMBDA_FUNCTION_TIMEOUT's default, as in the Go emulator
_INIT_TIMEOUT_DEFAULT: Final = "10"  # pyrie's --init-timeout default


def bind(env: Mapping[str, str] = os.environ) -> list[str]:
    """Where a front end on its own listens: pyrie's invoke address variable, else the Go emulator's default."""
    return [env.get("PYRIE_RUNTIME_INTERFACE_EMULATOR_ADDRESS") or DEFAULT_BIND]


def workers(env: Mapping[str, str] = os.environ) -> int:
    """``WEB_CONCURRENCY`` (gunicorn's own variable), else ``DEFAULT_WORKERS``."""
    return max(1, int(_seconds_or_count(env, "WEB_CONCURRENCY", str(DEFAULT_WORKERS))))


def graceful_timeout(env: Mapping[str, str] = os.environ) -> int:
    """Seconds for in-flight requests on a reload or stop: init timeout + function timeout + a margin."""
    function_s = _seconds_or_count(env, "AWS_LAMBDA_FUNCTION_TIMEOUT", _FUNCTION_TIMEOUT_DEFAULT)
    init_s = _seconds_or_count(env, "PYRIE_INIT_TIMEOUT", _INIT_TIMEOUT_DEFAULT)
    return math.ceil(function_s + init_s) + GRACE_MARGIN_S


def log_level(env: Mapping[str, str] = os.environ) -> str:
    return env.get(FRONTEND_LOG_LEVEL_ENV) or "info"


def pyrie_log_level(env: Mapping[str, str] = os.environ) -> str:
    """The level of the front end's own lines: pyrie's, as far as gunicorn's level (which pyrie maps from it) tells
    it; pyrie's info and error both give gunicorn's error, and are taken as info."""
    return {"debug": "DEBUG", "warning": "WARNING", "critical": "CRITICAL"}.get(log_level(env).lower(), "INFO")


def request_read_timeout(env: Mapping[str, str] = os.environ) -> float:
    """Seconds from a request's first byte to the end of its body (``PYRIE_REQUEST_READ_TIMEOUT``, default 60)."""
    value = _seconds_or_count(env, REQUEST_READ_TIMEOUT_ENV, str(REQUEST_READ_TIMEOUT_S))
    if value <= 0:
        raise ValueError(f"{REQUEST_READ_TIMEOUT_ENV}: must be more than 0 seconds")
    return value


def _seconds_or_count(env: Mapping[str, str], name: str, default: str) -> float:
    text = env.get(name) or default  # empty counts as unset, as everywhere in pyrie
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: {text!r} is not a non-negative number")
    return value
