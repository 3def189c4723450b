"""What the supervisor and its invoke front end agree on, by name only: the environment variables that tell the front
end where the supervisor is and how to run, and the strings that name the front end to gunicorn.

The supervisor starts the front end through these strings, never by importing it, so the two packages depend only
on this ground floor.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "FRONTEND_APP",
    "FRONTEND_CONFIG",
    "FRONTEND_LOG_LEVEL_ENV",
    "FUNCTION_URL_LISTENER_ENV",
    "SUPERVISOR_ADDRESS_ENV",
    "SUPERVISOR_PID_ENV",
    "SUPERVISOR_SOCKET_ENV",
    "SUPERVISOR_TOKEN_ENV",
    "USER_CONFIG_ENV",
    "WORKER_CLASS",
]

# Where the front end finds the supervisor: its Unix socket (set by pyrie for its own gunicorn), or, in a split
# deployment, its TCP address and the token that lets a connection in.
SUPERVISOR_SOCKET_ENV: Final = "PYRIE_SUPERVISOR_SOCKET"
SUPERVISOR_ADDRESS_ENV: Final = "PYRIE_SUPERVISOR_ADDRESS"
SUPERVISOR_TOKEN_ENV: Final = "PYRIE_SUPERVISOR_TOKEN"
# The supervisor's pid, set only for the gunicorn pyrie starts itself: the front end then ends everything of its pyrie
# run if the supervisor dies (``invoke_api.supervisor_death``; the run is named by the front end's own
# ``pyrie_core.process_ownership.OWNER_ENV``). A front end deployed on its own has neither and does nothing of this.
SUPERVISOR_PID_ENV: Final = "PYRIE_SUPERVISOR_PID"
# The Function URL listener's bound address (HOST:PORT, as its getsockname()), so the front end tells its requests
# from the Invoke API's; unset when Function URLs are off.
FUNCTION_URL_LISTENER_ENV: Final = "PYRIE_FUNCTION_URL_LISTENER"
# The user's gunicorn configuration file, applied over pyrie's defaults (pyrie's --gunicorn-config sets it).
USER_CONFIG_ENV: Final = "PYRIE_GUNICORN_CONFIG"
# gunicorn's log level, as pyrie's own --log-level maps to it (pyrie sets it for the gunicorn it starts).
FRONTEND_LOG_LEVEL_ENV: Final = "PYRIE_FRONTEND_LOG_LEVEL"

# The WSGI application and the gunicorn configuration module, as gunicorn's command line names them.
FRONTEND_APP: Final = "invoke_api.app:application"
FRONTEND_CONFIG: Final = "python:invoke_api.gunicorn_conf"
# gunicorn's gevent worker that serves requests with gevent's own pywsgi ("gevent_pywsgi": the same
# greenlet-per-connection model as the "gevent" class, with a lighter HTTP layer), with pyrie's lighter request handler
# (invoke_api.gunicorn_worker), which reads each request whole before it runs (invoke_api.worker).
WORKER_CLASS: Final = "invoke_api.worker.Worker"
