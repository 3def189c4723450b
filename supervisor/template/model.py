"""What the template reader hands over: one frozen ``TemplateFunction`` per function, inside a ``Template``.

Everything here is a fact read from the template (after Globals, parameters, intrinsic functions and ``--env-vars``)
or found on disk (the code's directory, the command that starts the runtime). How these facts become pyrie's
per-function configuration is the caller's business; nothing here starts a process.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any, Final

from supervisor.config import ConfigError

__all__ = [
    "DEFAULT_MEMORY_MB",
    "DEFAULT_TIMEOUT_S",
    "DurableSettings",
    "FunctionUrl",
    "ManagedInstances",
    "Template",
    "TemplateError",
    "TemplateFunction",
]

# Lambda's defaults when a template gives no Timeout or MemorySize (SAM CLI uses the same).
DEFAULT_TIMEOUT_S: Final = 3
DEFAULT_MEMORY_MB: Final = 128


class TemplateError(ConfigError):
    """A template pyrie cannot serve: unreadable, malformed, or a function whose runtime cannot be started. The
    message is what the user sees: one line per problem, each naming the file, and the function when there is one."""


@dataclass(frozen=True, slots=True)
class FunctionUrl:
    """``FunctionUrlConfig`` (or an ``AWS::Lambda::Url`` resource aimed at the function)."""

    auth_type: str  # "NONE" or "AWS_IAM"
    invoke_mode: str  # "BUFFERED" (the default) or "RESPONSE_STREAM"
    cors: Mapping[str, Any] | None = None  # the Cors settings as written (resolved), None when there are none


@dataclass(frozen=True, slots=True)
class DurableSettings:
    """``DurableConfig``: the function is durable."""

    execution_timeout_s: int  # ExecutionTimeout
    retention_days: int  # RetentionPeriodInDays (default 14)


@dataclass(frozen=True, slots=True)
class ManagedInstances:
    """``CapacityProviderConfig``: Lambda Managed Instances, each environment taking several invokes at once."""

    max_concurrency: int  # PerExecutionEnvironmentMaxConcurrency, as AWS_LAMBDA_MAX_CONCURRENCY


@dataclass(frozen=True, slots=True)
class TemplateFunction:
    """One function of the template, ready to be started without Docker."""

    logical_id: str
    function_name: str | None  # the FunctionName property, when the template gives one
    resource_type: str  # AWS::Serverless::Function or AWS::Lambda::Function
    runtime: str | None  # None: no Runtime (a custom runtime's bootstrap)
    handler: str | None
    code_dir: str  # absolute: the task root (LAMBDA_TASK_ROOT) and the runtime's working directory
    # what --watch should watch: the CodeUri directory, the .zip file, or the template (inline code)
    code_source: str
    command: tuple[str, ...]  # the runtime's command line, its first word an absolute path
    # the template's Environment.Variables after --env-vars and the shell (SAM CLI's order), all strings
    environment: Mapping[str, str]
    # what Lambda itself sets from these facts: LAMBDA_TASK_ROOT, AWS_EXECUTION_ENV, AWS_LAMBDA_LOG_*; not the
    # function's name, version, memory, handler or AWS_LAMBDA_RUNTIME_API, which the caller sets as it does today
    runtime_env: Mapping[str, str]
    timeout_s: int = DEFAULT_TIMEOUT_S
    memory_mb: int = DEFAULT_MEMORY_MB
    log_format: str = "Text"  # LoggingConfig.LogFormat: "Text" or "JSON"
    reserved_concurrency: int | None = None  # ReservedConcurrentExecutions; None: only the account's limit
    url: FunctionUrl | None = None
    durable: DurableSettings | None = None
    tenant_isolation: bool = False  # TenancyConfig.TenantIsolationMode PER_TENANT
    managed_instances: ManagedInstances | None = None
    snapstart: bool = False  # SnapStart.ApplyOn PublishedVersions
    alias: str | None = None  # AutoPublishAlias: a qualifier that names the function too

    @property
    def name(self) -> str:
        """The function's name: FunctionName, else the logical ID (``AWS_LAMBDA_FUNCTION_NAME``)."""
        return self.function_name or self.logical_id

    @property
    def names(self) -> tuple[str, ...]:
        """Every name an invoke may use for the function (before ARNs): its logical ID, and its FunctionName."""
        if self.function_name and self.function_name != self.logical_id:
            return (self.logical_id, self.function_name)
        return (self.logical_id,)


@dataclass(frozen=True, slots=True)
class Template:
    """The functions of one template and what reading it found worth saying. ``close()`` (or leaving a ``with``
    block) removes the private directories a .zip CodeUri or inline code was unpacked into."""

    path: str  # the template file, absolute
    functions: tuple[TemplateFunction, ...]
    warnings: tuple[str, ...]  # one line each, for the log: what was ignored, defaulted or left unresolved
    scratch_dirs: tuple[str, ...] = field(default=(), repr=False)  # pyrie's private copies of code; close() removes

    def function(self, name: str) -> TemplateFunction | None:
        """The function a logical ID or FunctionName names, if any."""
        return next((function for function in self.functions if name in function.names), None)

    def close(self) -> None:
        for path in self.scratch_dirs:
            shutil.rmtree(path, ignore_errors=True)

    def __enter__(self) -> Template:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))
