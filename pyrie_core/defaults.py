"""pyrie's defaults, each written once: the command line (``supervisor.cli``) shows and applies them, the
configuration's dataclasses (``supervisor.config``) start from them, and a front end run on its own
(``pyrie_core.frontend_contract.FrontEndSettings.from_env``) falls back on the ones it needs.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "EXTENSIONS_DIR",
    "FRONTEND_WORKERS",
    "FUNCTION_MEMORY_MB",
    "FUNCTION_NAME",
    "FUNCTION_TIMEOUT_S",
    "FUNCTION_VERSION",
    "IDLE_TIMEOUT_S",
    "INIT_TIMEOUT_S",
    "INVOKE_ADDRESS",
    "LOG_LEVEL",
    "MAX_CONCURRENCY",
    "MAX_QUEUED_EVENTS",
    "MAX_QUEUED_EVENT_BYTES",
    "MIN_ENVIRONMENTS",
    "REQUEST_READ_TIMEOUT_S",
    "RUNTIME_API_ADDRESS",
]

# Where the Invoke API and the Runtime API listen, and pyrie's log level: the Go emulator's.
INVOKE_ADDRESS: Final = "0.0.0.0:8080"
RUNTIME_API_ADDRESS: Final = "127.0.0.1:9001"
LOG_LEVEL: Final = "info"

# The function, as the Go emulator sets it up when its environment says nothing (AWS_LAMBDA_FUNCTION_*).
FUNCTION_NAME: Final = "test_function"
FUNCTION_VERSION: Final = "$LATEST"
FUNCTION_TIMEOUT_S: Final = 300
FUNCTION_MEMORY_MB: Final = 3008

# How long a runtime may take to reach its first /next (Lambda's INIT phase limit).
INIT_TIMEOUT_S: Final = 10
# The pool of execution environments.
MAX_CONCURRENCY: Final = 10
MIN_ENVIRONMENTS: Final = 1  # kept warm with --init-eagerly
IDLE_TIMEOUT_S: Final = 600
MAX_QUEUED_EVENTS: Final = 1000
MAX_QUEUED_EVENT_BYTES: Final = 128 * 1024 * 1024
EXTENSIONS_DIR: Final = "/opt/extensions"

# The front end: its gunicorn worker processes (a gevent worker relays many invokes at once; the supervisor, one
# process, runs out of CPU long before it does; measured on the bench, 2 CPUs: one worker serves 8 callers on a 20 ms
# handler as fast as two, and saves a process), and the seconds a client has, from a request's first byte, to send
# all of it (a 6 MB body at 1 Mbit/s fits).
FRONTEND_WORKERS: Final = 1
REQUEST_READ_TIMEOUT_S: Final = 60.0
