"""How the front end's gunicorn is tuned, worked out from the function it serves.

Both gunicorn configurations use these: pyrie's own (``invoke_api/gunicorn_conf.py``, the defaults under a user's
``--gunicorn-config``) and ``deploy/gunicorn.conf.py`` (the documented one, also for a front end run on its own).
The values that depend on the function come from the front end's settings (``pyrie_core.frontend_contract``: handed
over by pyrie, or read from the environment by a front end on its own), so one file fits every function.

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

from pyrie_core import defaults
from pyrie_core.frontend_contract import WORKER_CLASS, FrontEndSettings, frontend_settings

__all__ = [
    "KEEPALIVE_S",
    "WORKER_CLASS",
    "WORKER_CONNECTIONS",
    "bind",
    "graceful_timeout",
    "log_level",
    "pyrie_log_level",
    "request_read_timeout",
    "workers",
]


# Idle keep-alive connections stay open this long: longer than the 60 s idle timeout of common load balancers, so
# they close first, and long enough for SDK connection pools to reuse a connection between invokes.
KEEPALIVE_S: Final = 75
WORKER_CONNECTIONS: Final = 1000  # per worker; each in-flight invoke holds one
GRACE_MARGIN_S: Final = 10  # on top of init + function timeout: relaying the last bytes, a slow client


def bind(settings: FrontEndSettings | None = None) -> list[str]:
    """Where a front end on its own listens: pyrie's invoke address variable, else the Go emulator's default."""
    return [(settings or frontend_settings()).bind]


def workers(env: Mapping[str, str] = os.environ) -> int:
    """``WEB_CONCURRENCY`` (gunicorn's own variable), else ``pyrie_core.defaults.FRONTEND_WORKERS``."""
    text = env.get("WEB_CONCURRENCY")
    if not text:
        return defaults.FRONTEND_WORKERS
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"WEB_CONCURRENCY: {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"WEB_CONCURRENCY: {text!r} is not a non-negative number")
    return max(1, int(value))


def graceful_timeout(settings: FrontEndSettings | None = None) -> int:
    """Seconds for in-flight requests on a reload or stop: init timeout + function timeout + a margin."""
    settings = settings or frontend_settings()
    return math.ceil(settings.function_timeout_s + settings.init_timeout_s) + GRACE_MARGIN_S


def log_level(settings: FrontEndSettings | None = None) -> str:
    """gunicorn's own log level."""
    return (settings or frontend_settings()).gunicorn_log_level


def pyrie_log_level(settings: FrontEndSettings | None = None) -> str:
    """The level of the front end's own lines (pyrie's ``--log-level``; info for a front end on its own)."""
    return (settings or frontend_settings()).log_level


def request_read_timeout(settings: FrontEndSettings | None = None) -> float:
    """Seconds from a request's first byte to the end of its body (``PYRIE_REQUEST_READ_TIMEOUT``, default 60)."""
    return (settings or frontend_settings()).request_read_timeout_s
