"""Whether the function is durable, and what its runtime needs to reach the durable execution service.

Read once at start-up by ``supervisor.cli`` with the standard library alone (no gevent, no ``pyrie_durable``, and
``sqlite3`` only for a ``--durable-store``: all of it is on the way to the first invoke). Every wrong value stops
pyrie with one line.

- ``AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT`` (seconds, 1 to 31,622,400) makes the function durable: Lambda's
  ``DurableConfig.ExecutionTimeout``, as ``AWS_LAMBDA_FUNCTION_TIMEOUT`` is its ``Timeout``.
- ``AWS_LAMBDA_DURABLE_RETENTION_PERIOD_IN_DAYS`` (1 to 90, default 14): ``DurableConfig.RetentionPeriodInDays``,
  how long a closed execution stays readable.
- ``--durable-store PATH`` (``PYRIE_DURABLE_STORE``): a SQLite file that keeps the executions across restarts.

The runtime of a durable function gets a region and, where pyrie's environment has none, dummy credentials, and
(when the supervisor starts, ``supervisor.durable.api_listener``) ``AWS_ENDPOINT_URL_LAMBDA`` naming the supervisor's
loopback listener of the durable APIs: the SDK's Lambda client then finds the service and signs its calls with
nothing configured.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

from pyrie_core.function_names import REGION
from supervisor.config import ConfigError, DurableConfig

__all__ = [
    "DUMMY_ACCESS_KEY_ID",
    "DUMMY_SECRET_ACCESS_KEY",
    "EXECUTION_TIMEOUT_ENV",
    "RETENTION_ENV",
    "durable_config",
    "durable_runtime_env",
]

EXECUTION_TIMEOUT_ENV: Final = "AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT"
RETENTION_ENV: Final = "AWS_LAMBDA_DURABLE_RETENTION_PERIOD_IN_DAYS"
MAX_EXECUTION_TIMEOUT_S: Final = 31_622_400  # DurableConfig.ExecutionTimeout's maximum: 366 days
MAX_RETENTION_DAYS: Final = 90
DEFAULT_RETENTION_DAYS: Final = 14
# What the SDK signs its calls to pyrie with when pyrie's environment has no credentials (pyrie checks no signature).
DUMMY_ACCESS_KEY_ID: Final = "pyrie-local"
DUMMY_SECRET_ACCESS_KEY: Final = "pyrie-local-secret"


def _whole(text: str, what: str, low: int, high: int) -> int:
    stripped = text.strip()
    if not stripped.isdigit():
        raise ConfigError(f"{what}: {text!r} is not a whole number of {'days' if 'DAYS' in what else 'seconds'}")
    number = int(stripped)
    if not low <= number <= high:
        raise ConfigError(f"{what}: {number} is not between {low} and {high}")
    return number


def durable_config(env: Mapping[str, str], store: str | None, cwd: str) -> DurableConfig | None:
    """The function's durable settings, or None when it is not durable; ``ConfigError`` for a wrong value."""
    timeout_text = env.get(EXECUTION_TIMEOUT_ENV, "")
    retention_text = env.get(RETENTION_ENV, "")
    if not timeout_text:
        if store:
            raise ConfigError(
                f"--durable-store: the function is not durable; set {EXECUTION_TIMEOUT_ENV}=<seconds> to make it so"
            )
        if retention_text:
            raise ConfigError(f"{RETENTION_ENV} is set but {EXECUTION_TIMEOUT_ENV} is not: the function is not durable")
        return None
    timeout = _whole(timeout_text, EXECUTION_TIMEOUT_ENV, 1, MAX_EXECUTION_TIMEOUT_S)
    retention = (
        _whole(retention_text, RETENTION_ENV, 1, MAX_RETENTION_DAYS) if retention_text else DEFAULT_RETENTION_DAYS
    )
    store_path = _store_path(store, cwd) if store else None
    return DurableConfig(execution_timeout_s=timeout, retention_days=retention, store_path=store_path)


def _store_path(text: str, cwd: str) -> str:
    """The store's absolute path, checked by opening it: a directory that does not exist, a file that is no SQLite
    database, one pyrie may not write, or one another pyrie has open stop pyrie now rather than at the first
    execution."""
    path = os.path.abspath(os.path.join(cwd, text))
    if os.path.isdir(path):
        raise ConfigError(f"--durable-store: {path} is a directory; name a file (for example {path}/durable.db)")
    if not os.path.isdir(os.path.dirname(path)):
        raise ConfigError(f"--durable-store: the directory {os.path.dirname(path)} does not exist")
    import sqlite3  # noqa: PLC0415 - only for a store: 2 ms and a library on the way to every first invoke

    try:
        db = sqlite3.connect(path, timeout=0)  # an open store's lock refuses at once (pyrie_durable.SqliteStore)
        try:
            db.execute("PRAGMA schema_version").fetchone()
            db.execute("BEGIN IMMEDIATE")  # takes the write lock: fails on a read-only file or directory
            db.execute("ROLLBACK")
        finally:
            db.close()
    except sqlite3.Error as exc:
        if isinstance(exc, sqlite3.OperationalError) and exc.sqlite_errorcode == sqlite3.SQLITE_BUSY:
            raise ConfigError(
                f"--durable-store: {path} is in use by another pyrie; give each pyrie a store of its own"
            ) from None
        raise ConfigError(f"--durable-store: {path} cannot be used as a SQLite database: {exc}") from None
    return path


def durable_runtime_env(base_env: Mapping[str, str], pyrie_env: Mapping[str, str]) -> dict[str, str]:
    """``base_env`` with the region and credentials the durable execution SDK needs to call pyrie."""
    env = dict(base_env)
    region = pyrie_env.get("AWS_REGION") or pyrie_env.get("AWS_DEFAULT_REGION") or REGION
    env["AWS_REGION"] = env.get("AWS_REGION") or region
    env["AWS_DEFAULT_REGION"] = env.get("AWS_DEFAULT_REGION") or region
    if not env.get("AWS_ACCESS_KEY_ID") and not env.get("AWS_SECRET_ACCESS_KEY"):
        env["AWS_ACCESS_KEY_ID"] = DUMMY_ACCESS_KEY_ID
        env["AWS_SECRET_ACCESS_KEY"] = DUMMY_SECRET_ACCESS_KEY
        env.pop("AWS_SESSION_TOKEN", None)  # an empty token beside real keys would be sent as one
    return env
