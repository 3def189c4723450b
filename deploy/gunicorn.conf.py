"""gunicorn configuration for pyrie's invoke front end, every knob explained.

Two ways to use it (pyrie must be installed, since the front end is pyrie's ``invoke_api``):

    pyrie --gunicorn-config deploy/gunicorn.conf.py app.handler
        pyrie's own gunicorn (forked from pyrie's supervisor) with these settings. pyrie keeps control of what it
        must: the listening socket it opened (``--bind fd://N`` replaces ``bind`` below), the worker class and
        ``--no-control-socket``.

    PYRIE_SUPERVISOR_ADDRESS=supervisor:9100 PYRIE_SUPERVISOR_TOKEN=... \\
        gunicorn -c deploy/gunicorn.conf.py invoke_api.app:application
        the front end as a deployment of its own, talking to a supervisor started with
        ``pyrie --supervisor-address 0.0.0.0:9100`` (the same token in its environment).

gunicorn's precedence applies: this file < ``GUNICORN_CMD_ARGS`` < command-line flags, so
``GUNICORN_CMD_ARGS="--workers 4 --access-logfile -"`` adjusts a run without editing anything. Values that depend on
the function are read from the environment (or, under pyrie, handed over by it); ``invoke_api/gunicorn_settings.py``
works them out, and pyrie uses the same values as its defaults when it is given no configuration file.
"""

from invoke_api import gunicorn_settings as pyrie

# Where the Invoke API listens when gunicorn runs on its own: PYRIE_RUNTIME_INTERFACE_EMULATOR_ADDRESS, else
# 0.0.0.0:8080 (the Go emulator's address). Under pyrie this is ignored: gunicorn serves pyrie's own listener.
bind = pyrie.bind()

# Streamed responses need an asynchronous worker: each request is a greenlet that relays chunks as they arrive.
# pyrie's worker is gunicorn's gevent_pywsgi, which serves HTTP with gevent's pywsgi (lighter than gunicorn's own
# parser, the "gevent" class), with pyrie's lighter request handler (invoke_api/gunicorn_worker.py) that reads every
# request whole (head and body) before the function sees it (invoke_api/worker.py): a request cut short or malformed
# is refused with 400 and runs nothing. Under pyrie this is fixed: pyrie passes it on gunicorn's command line.
worker_class = pyrie.WORKER_CLASS

# Not a gunicorn setting, but the worker's: seconds a client has, from the first byte of a request, to send all of
# it (head and body), else the connection is closed and nothing runs. The worker takes it from the front end's
# settings (PYRIE_REQUEST_READ_TIMEOUT, default 60), not from this file; it is read here too so that a wrong value
# stops gunicorn at start-up. Waiting for a request's first byte on an idle keep-alive connection is not limited by it
# (see keepalive below).
_request_read_timeout_s = pyrie.request_read_timeout()

# Import the application once in the master, before the workers are forked: they boot in milliseconds.
preload_app = True

# Worker processes: WEB_CONCURRENCY, else one (a gevent worker relays many invokes at once; the supervisor runs
# out of CPU first). pyrie's --workers / PYRIE_WORKERS overrides it.
workers = pyrie.workers()

# Simultaneous connections per worker; each in-flight invoke (and each idle keep-alive connection) holds one.
worker_connections = pyrie.WORKER_CONNECTIONS

# Seconds old workers get to finish their requests on a reload (SIGHUP) or a stop before they are killed: the
# function's timeout (AWS_LAMBDA_FUNCTION_TIMEOUT, default 300) + the init timeout (PYRIE_INIT_TIMEOUT, default 10)
# + 10, so a graceful reload never cuts a stream.
graceful_timeout = pyrie.graceful_timeout()

# Seconds an idle keep-alive connection waits for its next request before it is closed: 75, longer than the 60 s
# idle timeout of most load balancers (so they close first) and long enough for SDK connection pools to reuse
# connections between invokes. pyrie's worker applies it (gevent_pywsgi alone would keep an idle connection until the
# client closes it); on a reload an old worker serves its open connections until they close or graceful_timeout ends.
keepalive = pyrie.KEEPALIVE_S

# Seconds a worker may go without a heartbeat before the master restarts it. This does not limit requests: gevent
# workers keep beating while they stream.
timeout = 30

# gunicorn's control socket (gunicornc) has one default path per machine, which several front ends on one machine
# would share; turn it back on with a path of your own (control_socket = "...") if you use it.
control_socket_disable = True

# gunicorn's own log: under pyrie, what its --log-level maps to; on its own, info. Add accesslog = "-" to log every
# request to stdout.
loglevel = pyrie.log_level()
