"""The gunicorn configuration pyrie starts its front end with (``python:invoke_api.gunicorn_conf``): pyrie's
defaults, then the user's file over them.

gunicorn reads one configuration file, and applies ``GUNICORN_CMD_ARGS`` over it and its command line over both.
pyrie hands gunicorn this file, which sets pyrie's defaults and then runs the user's ``--gunicorn-config`` file
(``FrontEndSettings.user_config``) and takes over what it sets, so the user's settings win and what it leaves out
keeps pyrie's default (a stream-safe graceful timeout, one worker). The order is therefore: these defaults < the
user's file < ``GUNICORN_CMD_ARGS`` < the few flags pyrie must control on gunicorn's command line.

Read in the master, this file also has it watch the supervisor, and each worker die with the master
(``invoke_api.supervisor_death``); the master freezes what it has loaded before each fork (``gc.freeze``), so a
worker's collections leave those pages shared. A ``pre_fork`` or ``post_fork`` hook of the user's runs after pyrie's
own.

The same defaults, each explained, are in ``deploy/gunicorn.conf.py``.
"""

import gc
import runpy
from collections.abc import Callable as _Callable
from typing import Any as _Any

from invoke_api import gunicorn_settings as _settings
from invoke_api import supervisor_death as _supervisor_death
from pyrie_core.frontend_contract import frontend_settings as _frontend_settings

_supervisor_death.watch_supervisor(_frontend_settings().run)

worker_class = _settings.WORKER_CLASS
preload_app = True  # the app is imported once, before the fork: workers boot in milliseconds
workers = _settings.workers()
worker_connections = _settings.WORKER_CONNECTIONS
graceful_timeout = _settings.graceful_timeout()
keepalive = _settings.KEEPALIVE_S
control_socket_disable = True
loglevel = _settings.log_level()
# Not a gunicorn setting: pyrie's worker reads it. Read here too, so that a wrong value stops gunicorn at start-up.
_request_read_timeout_s = _settings.request_read_timeout()


_user_pre_fork: _Callable[[_Any, _Any], object] | None = None
_user_post_fork: _Callable[[_Any, _Any], object] | None = None


def pre_fork(server: _Any, worker: _Any) -> None:
    """gunicorn's hook, in the master before it forks a worker: pyrie's part, then the user's ``pre_fork``."""
    gc.freeze()  # what the master loaded (the preloaded application) stays out of the worker's collections
    if _user_pre_fork is not None:
        _user_pre_fork(server, worker)


def post_fork(server: _Any, worker: _Any) -> None:
    """gunicorn's hook, in each new worker: pyrie's part, then the user's ``post_fork``."""
    _supervisor_death.worker_started(worker.ppid, _frontend_settings().run)
    if _user_post_fork is not None:
        _user_post_fork(server, worker)


_user_config = _frontend_settings().user_config
if _user_config:
    try:
        _user_settings = runpy.run_path(_user_config)
    except Exception as _error:  # gunicorn shows a RuntimeError's message as its one line
        raise RuntimeError(f"Failed to read config file {_user_config}: {type(_error).__name__}: {_error}") from None
    _user_pre_fork = _user_settings.pop("pre_fork", None)
    _user_post_fork = _user_settings.pop("post_fork", None)
    globals().update({name: value for name, value in _user_settings.items() if not name.startswith("_")})
