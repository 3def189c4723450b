"""pyrie's configuration: small frozen dataclasses, built once at start-up by ``supervisor.cli``, no I/O here."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

__all__ = [
    "ACCOUNT_ID",
    "REGION",
    "Address",
    "Config",
    "ConfigError",
    "FunctionConfig",
    "Limits",
    "PoolConfig",
]

# The Go emulator hard-codes both into every ARN it builds.
ACCOUNT_ID: Final = "012345678912"
REGION: Final = "us-east-1"


class ConfigError(Exception):
    """A flag or environment value pyrie cannot start with; the message is the one line shown to the user."""


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, what: str) -> Address:
        """``HOST:PORT`` (``[v6]:PORT`` for IPv6; an empty host means every interface)."""
        host, sep, port_text = text.rpartition(":")
        if not sep or not port_text.isdigit() or int(port_text) > 65535:
            raise ConfigError(f"{what}: {text!r} is not HOST:PORT (for example 127.0.0.1:9001)")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            raise ConfigError(f"{what}: {text!r} is not HOST:PORT (write IPv6 hosts in brackets: [::1]:9001)")
        if host and not _is_hostname_or_ip(host):
            raise ConfigError(f"{what}: {host!r} in {text!r} is not a host name or IP address")
        return cls(host or "0.0.0.0", int(port_text))

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _is_hostname_or_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.rstrip(".").split(".")
        return all(label and len(label) <= 63 and label.replace("-", "").isalnum() for label in labels)
    return True


@dataclass(frozen=True, slots=True)
class Limits:
    """Lambda's payload limits (lambda-protocols.md, "Limits")."""

    request_bytes: int = 6_291_456  # synchronous invoke request: 6 MiB
    event_request_bytes: int = 1_048_576  # asynchronous (Event) invoke request: 1 MB (256 KB before 2025)
    response_bytes: int = 6_291_556  # buffered response: 6 MiB + 100
    streamed_response_bytes: int = 200 * 1024 * 1024  # streamed response: 200 MiB


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

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.name}"

    def runtime_env(self, runtime_api: Address) -> dict[str, str]:
        env = dict(self.base_env)
        env["AWS_LAMBDA_RUNTIME_API"] = str(runtime_api)
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

    max_concurrency: int = 10  # environments at once; a synchronous invoke beyond them is throttled
    init_eagerly: bool = False  # start min_environments at start-up and keep them warm
    min_environments: int = 1  # with init_eagerly
    idle_timeout_s: float = 600.0  # an idle environment is retired after this long; 0: never
    max_queued_events: int = 1000  # Event invokes waiting for an environment
    watch_path: str | None = None  # restart environments when code under it changes

    @property
    def warm_minimum(self) -> int:
        return min(self.min_environments, self.max_concurrency) if self.init_eagerly else 0


@dataclass(frozen=True, slots=True)
class Config:
    function: FunctionConfig
    invoke_address: Address
    runtime_api_address: Address
    log_level: str  # a logging level name: CRITICAL, ERROR, WARNING, INFO, DEBUG
    workers: int | None  # gunicorn worker processes; None: as the gunicorn configuration says (default CPU count)
    init_timeout_s: float  # how long a runtime may take to reach its first /next (Lambda's INIT phase limit)
    pool: PoolConfig = PoolConfig()
    extensions_dir: str = "/opt/extensions"  # external extensions: the files of this directory
    function_url_address: Address | None = None  # where Function URLs listen; None: off
    gunicorn_config: str | None = None  # the user's gunicorn configuration file, applied over pyrie's defaults
    supervisor_address: Address | None = None  # the pipe's TCP listener of a split deployment (off: None)
    # the secret a front end must present on supervisor_address
    supervisor_token: str | None = field(default=None, repr=False)
    limits: Limits = Limits()


def frozen_env(env: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(env))
