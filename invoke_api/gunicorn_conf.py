"""The gunicorn configuration pyrie starts its front end with (``python:invoke_api.gunicorn_conf``): pyrie's
defaults, then the user's file over them.

gunicorn reads one configuration file, and applies ``GUNICORN_CMD_ARGS`` over it and its command line over both.
pyrie hands gunicorn this file, which sets pyrie's defaults and then runs the user's ``--gunicorn-config`` file
(``PYRIE_GUNICORN_CONFIG``) and takes over what it sets, so the user's settings win and what it leaves out keeps
pyrie's default (a stream-safe graceful timeout, one worker). The order is therefore: these defaults < the
user's file < ``GUNICORN_CMD_ARGS`` < the few flags pyrie must control on gunicorn's command line.

The same defaults, each explained, are in ``deploy/gunicorn.conf.py``.
"""

import os
import runpy

from invoke_api import gunicorn_settings as _settings

worker_class = _settings.WORKER_CLASS
preload_app = True  # the app is imported once, before the fork: workers boot in milliseconds
workers = _settings.workers()
worker_connections = _settings.WORKER_CONNECTIONS
graceful_timeout = _settings.graceful_timeout()
keepalive = _settings.KEEPALIVE_S
control_socket_disable = True
loglevel = _settings.log_level()

_user_config = os.environ.get(_settings.USER_CONFIG_ENV)
if _user_config:
    try:
        _user_settings = runpy.run_path(_user_config)
    except Exception as _error:  # gunicorn shows a RuntimeError's message as its one line
        raise RuntimeError(f"Failed to read config file {_user_config}: {type(_error).__name__}: {_error}") from None
    globals().update({name: value for name, value in _user_settings.items() if not name.startswith("_")})
