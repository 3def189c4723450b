"""pyrie's configuration: small frozen dataclasses, built once at start-up by ``supervisor.cli``, no I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from pyrie_core import defaults
from pyrie_core.address import Address
from pyrie_core.function_names import function_arn
from pyrie_core.limits import Limits

__all__ = ["Config", "ConfigError", "DurableConfig", "FunctionConfig", "PoolConfig", "SnapStartConfig"]


class ConfigError(ValueError):
    """A flag or environment value pyrie cannot start with; the message is the one line shown to the user."""


@dataclass(frozen=True, slots=True)
class SnapStartConfig:
    """Init caching (SnapStart, ``--enable-init-caching``): the token the runtime presents to the container credentials
    endpoint (``AWS_CONTAINER_AUTHORIZATION_TOKEN``), and the credentials it gets there."""

    token: str = field(repr=False)
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class FunctionConfig:
    """The one function pyrie serves and how its runtime is started."""

    name: str
    version: str
    memory_mb: int
    timeout_s: int
    command: tuple[str, ...]  # the bootstrap and its arguments, as executed
    cwd: str
    handler: str | None  # the effective _HANDLER, or None when it is not set at all
    base_env: Mapping[str, str]  # the runtime's environment except AWS_LAMBDA_RUNTIME_API, which is per environment
    log_format: str = "Text"  # AWS_LAMBDA_LOG_FORMAT: "Text" or "JSON" (platform lines as JSON records)
    # AWS_LAMBDA_MAX_CONCURRENCY: invokes one environment takes at once (Lambda Managed Instances); None: one at a time
    concurrency: int | None = None
    snapstart: SnapStartConfig | None = None  # --enable-init-caching; None: no SnapStart

    @property
    def arn(self) -> str:
        return function_arn(self.name)

    def runtime_env(self, runtime_api: Address) -> dict[str, str]:
        """The runtime's environment; with SnapStart, credentials come from the container credentials endpoint on its
        Runtime API, as the Go emulator's init caching sets them (rapidcore/env/environment.go)."""
        env = dict(self.base_env)
        env["AWS_LAMBDA_RUNTIME_API"] = str(runtime_api)
        if self.snapstart is not None:
            # imported here: the command line builds this module's classes before anything else is loaded
            from runtime_api.credentials_routes import CREDENTIALS_PATH  # noqa: PLC0415

            env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = f"http://{runtime_api}{CREDENTIALS_PATH}"
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = self.snapstart.token
        return env

    def extension_env(self, runtime_api: Address) -> dict[str, str]:
        """An extension's environment (rie-behaviour.md §3.3): the runtime's, less every ``_``-prefixed variable
        (so no ``_HANDLER``) and ``AWS_XRAY_CONTEXT_MISSING``."""
        return {
            name: value
            for name, value in self.runtime_env(runtime_api).items()
            if not name.startswith("_") and name != "AWS_XRAY_CONTEXT_MISSING"
        }


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """How many execution environments run, and how they come and go (DESIGN §6)."""

    max_concurrency: int = defaults.MAX_CONCURRENCY  # environments at once; a synchronous invoke beyond: throttled
    init_eagerly: bool = False  # start min_environments at start-up and keep them warm
    min_environments: int = defaults.MIN_ENVIRONMENTS  # with init_eagerly
    idle_timeout_s: float = defaults.IDLE_TIMEOUT_S  # an idle environment is retired after this long; 0: never
    max_queued_events: int = defaults.MAX_QUEUED_EVENTS  # Event invokes waiting for an environment
    max_queued_event_bytes: int = defaults.MAX_QUEUED_EVENT_BYTES  # and the bytes of their payloads
    watch_path: str | None = None  # restart environments when code under it changes
    tenant_isolation: bool = False  # each environment serves the tenant of its first invoke only

    @property
    def warm_minimum(self) -> int:
        return min(self.min_environments, self.max_concurrency) if self.init_eagerly else 0


@dataclass(frozen=True, slots=True)
class DurableConfig:
    """A durable function's ``DurableConfig`` (``AWS_LAMBDA_DURABLE_*``) and where its executions are kept."""

    execution_timeout_s: int  # DurableConfig.ExecutionTimeout
    retention_days: int = 14  # DurableConfig.RetentionPeriodInDays
    store_path: str | None = None  # --durable-store: a SQLite file; None keeps executions in memory


@dataclass(frozen=True, slots=True)
class Config:
    function: FunctionConfig
    invoke_address: Address
    runtime_api_address: Address
    log_level: str  # a logging level name: CRITICAL, ERROR, WARNING, INFO, DEBUG
    workers: int | None  # gunicorn worker processes; None: as the gunicorn configuration says (default 1)
    init_timeout_s: float  # how long a runtime may take to reach its first /next (Lambda's INIT phase limit)
    pool: PoolConfig = PoolConfig()
    extensions_dir: str = defaults.EXTENSIONS_DIR  # external extensions: the files of this directory
    function_url_address: Address | None = None  # where Function URLs listen; None: off
    gunicorn_config: str | None = None  # the user's gunicorn configuration file, applied over pyrie's defaults
    # seconds a client has, from a request's first byte, to send all of it (the front end applies it)
    request_read_timeout_s: float = defaults.REQUEST_READ_TIMEOUT_S
    supervisor_address: Address | None = None  # the pipe's TCP listener of a split deployment (off: None)
    # the secret a front end must present on supervisor_address
    supervisor_token: str | None = field(default=None, repr=False)
    limits: Limits = field(default_factory=Limits)
    durable: DurableConfig | None = None  # None: the function is not durable


def frozen_env(env: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(env))
