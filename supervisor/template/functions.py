"""The functions of a parsed template, their properties resolved: pure, no file is read here.

A function is an ``AWS::Serverless::Function`` (with ``Globals: Function:`` merged in) or an
``AWS::Lambda::Function``. Only the properties pyrie uses are resolved, so an unresolvable ``Role`` or ``Events``
costs nothing; a property pyrie leaves out that would change what the function does (``Layers``,
``FileSystemConfigs``, Function URL ``Cors``) is named in a warning. A property pyrie needs but cannot use (a
``Handler`` that does not resolve, a Timeout that is no number) is an error for that function; reading goes on so
that every such problem is reported at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from supervisor.durable.settings import DEFAULT_RETENTION_DAYS, MAX_EXECUTION_TIMEOUT_S, MAX_RETENTION_DAYS
from supervisor.template.intrinsics import NO_VALUE, Resolver, Unresolved, find_unresolved, render, text_of
from supervisor.template.model import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT_S,
    DurableSettings,
    FunctionUrl,
    ManagedInstances,
)
from supervisor.template.parameters import stringify

__all__ = [
    "FUNCTION_TYPES",
    "SERVERLESS_FUNCTION",
    "CodeLocation",
    "FunctionSpec",
    "FunctionsRead",
    "read_functions",
]

SERVERLESS_FUNCTION: Final = "AWS::Serverless::Function"
LAMBDA_FUNCTION: Final = "AWS::Lambda::Function"
FUNCTION_TYPES: Final = (SERVERLESS_FUNCTION, LAMBDA_FUNCTION)
LAMBDA_URL: Final = "AWS::Lambda::Url"
_NESTED_STACKS: Final = ("AWS::Serverless::Application", "AWS::CloudFormation::Stack")
_NAME: Final = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# Set by Lambda itself; CreateFunction refuses a function that sets them (pyrie ignores them, with a warning).
RESERVED_VARIABLES: Final = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
        "TZ",
    }
)
# Properties pyrie does not use whose absence changes what the function sees.
_IGNORED_WITH_WARNING: Final = {
    "Layers": "pyrie does not unpack layers into /opt, so code and files from them are missing",
    "FileSystemConfigs": "pyrie mounts no EFS file systems",
}
MIN_TIMEOUT_S: Final = 1
MIN_MEMORY_MB: Final = 1
MAX_PER_ENVIRONMENT_CONCURRENCY: Final = 1600
# CapacityProviderConfig without PerExecutionEnvironmentMaxConcurrency: Lambda's default depends on the instance's
# vCPUs, which a local run does not have; SAM CLI uses 4, and so does pyrie.
DEFAULT_PER_ENVIRONMENT_CONCURRENCY: Final = 4


@dataclass(frozen=True, slots=True)
class CodeLocation:
    """Where a function's code is: ``path`` (a directory or .zip, relative to the template), ``inline`` (the code
    itself), ``remote`` (S3: a description) or ``image`` (a container image: its URI)."""

    kind: str
    value: str


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A function as the template describes it; ``supervisor.template.reader`` adds the code's directory and the
    command that starts its runtime."""

    logical_id: str
    resource_type: str
    function_name: str | None
    runtime: str | None
    handler: str | None
    code: CodeLocation
    environment: Mapping[str, str]  # Environment.Variables, resolved (unresolved ones empty)
    # the variables that did not resolve: name -> the warning, said unless --env-vars or the shell gives a value
    unresolved_variables: Mapping[str, str] = field(default_factory=dict)
    timeout_s: int = DEFAULT_TIMEOUT_S
    memory_mb: int = DEFAULT_MEMORY_MB
    log_format: str = "Text"
    log_format_given: bool = False
    application_log_level: str | None = None
    log_group: str | None = None
    reserved_concurrency: int | None = None
    url: FunctionUrl | None = None
    durable: DurableSettings | None = None
    tenant_isolation: bool = False
    managed_instances: ManagedInstances | None = None
    snapstart: bool = False
    alias: str | None = None

    @property
    def name(self) -> str:
        return self.function_name or self.logical_id


@dataclass(slots=True)
class FunctionsRead:
    functions: list[FunctionSpec] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def read_functions(
    document: Mapping[str, Any],
    source: str,
    *,
    merge: Callable[[Mapping[str, Any], Any, str], dict[str, Any]],
    resolver_for: Callable[[Callable[[str], str | None]], Resolver],
) -> FunctionsRead:
    """The template's functions. ``merge(properties, IgnoreGlobals, where)`` applies the Globals to a serverless
    function's properties; ``resolver_for(function_name)`` makes the resolver, given how to name a function."""
    resources = document.get("Resources")
    read = FunctionsRead()
    assert isinstance(resources, dict)
    raw_properties: dict[str, dict[str, Any]] = {}
    for logical_id, resource in resources.items():
        if isinstance(resource, dict) and resource.get("Type") in FUNCTION_TYPES:
            properties = resource.get("Properties") or {}
            if not isinstance(properties, dict):
                read.errors.append(f"{source}: function {logical_id}: Properties must be a mapping")
                continue
            if resource["Type"] == SERVERLESS_FUNCTION:
                properties = merge(properties, resource.get("IgnoreGlobals"), f"{source}: function {logical_id}")
            raw_properties[logical_id] = properties

    names: dict[str, str] = {}
    naming: set[str] = set()

    def function_name(logical_id: str) -> str | None:
        """A function's name for ``Ref`` and ``GetAtt .Arn``: its FunctionName when that resolves, else the ID."""
        if logical_id not in raw_properties:
            return None
        if logical_id in names:
            return names[logical_id]
        raw = raw_properties[logical_id].get("FunctionName")
        if raw is None or logical_id in naming:
            return logical_id
        naming.add(logical_id)
        try:
            value = resolver.resolve(raw)
        finally:
            naming.discard(logical_id)
        names[logical_id] = value if isinstance(value, str) and _NAME.match(value) else logical_id
        return names[logical_id]

    resolver = resolver_for(function_name)
    for logical_id, resource in resources.items():
        if str(logical_id).startswith("Fn::ForEach::"):
            continue  # AWS::LanguageExtensions' loops: not expanded (the reader says so)
        if not isinstance(resource, dict):
            read.errors.append(f"{source}: Resources: {logical_id} must be a mapping with a Type")
            continue
        kind = resource.get("Type")
        if kind in _NESTED_STACKS:
            read.warnings.append(
                f"{source}: {logical_id} is a nested stack ({kind}); pyrie does not read it, so its functions are "
                "not served"
            )
        if logical_id not in raw_properties:
            continue
        condition = resource.get("Condition")
        if isinstance(condition, str):
            value = resolver.condition(condition)
            if isinstance(value, Unresolved):
                read.warnings.append(
                    f"{source}: function {logical_id}: its Condition {condition} cannot be worked out "
                    f"({value.reason}); pyrie serves the function"
                )
            elif not value:
                read.warnings.append(
                    f"{source}: function {logical_id} is not served: its Condition {condition} is false"
                )
                continue
        reader = _FunctionReader(
            source,
            logical_id,
            resource_type=str(kind),
            properties=raw_properties[logical_id],
            resolver=resolver,
            found=read,
        )
        spec = reader.spec(resource.get("Metadata"))
        if spec is not None:
            read.functions.append(spec)
    _attach_urls(resources, source, resolver, read)
    return read


class _FunctionReader:
    """Reads one function's properties, noting warnings and errors in ``read``."""

    def __init__(
        self,
        source: str,
        logical_id: str,
        *,
        resource_type: str,
        properties: Mapping[str, Any],
        resolver: Resolver,
        found: FunctionsRead,
    ) -> None:
        self.where = f"{source}: function {logical_id}"
        self.logical_id = logical_id
        self.resource_type = resource_type
        self.properties = properties
        self.resolver = resolver
        self.found = found
        self.failed = False

    # -- reporting ----------------------------------------------------------------------------------------------

    def warn(self, message: str) -> None:
        self.found.warnings.append(f"{self.where}: {message}")

    def fail(self, message: str) -> None:
        self.found.errors.append(f"{self.where}: {message}")
        self.failed = True

    def unresolved(self, path: str, problem: Unresolved, consequence: str) -> str:
        return f"{path}: {problem.expression} cannot be resolved ({problem.reason}); {consequence}"

    # -- values -------------------------------------------------------------------------------------------------

    def value(self, name: str) -> Any:
        """The property resolved (None when absent or AWS::NoValue); Unresolved parts stay in it."""
        if name not in self.properties:
            return None
        value = self.resolver.resolve(self.properties[name])
        return None if value is NO_VALUE else value

    def required_text(self, path: str, value: Any) -> str | None:
        """A property the function cannot start without, as text: an error when it does not resolve."""
        if value is None:
            return None
        if isinstance(value, Unresolved):
            self.fail(self.unresolved(path, value, "pyrie needs it to start the function"))
            return None
        if isinstance(value, dict | list):
            self.fail(f"{path} must be a string, not {render(value)}")
            return None
        return text_of(value)

    def optional_text(self, path: str, value: Any, consequence: str) -> str | None:
        if isinstance(value, Unresolved):
            self.warn(self.unresolved(path, value, consequence))
            return None
        if isinstance(value, dict | list):
            self.fail(f"{path} must be a string, not {render(value)}")
            return None
        return None if value is None else text_of(value)

    def whole(self, path: str, value: Any, default: int | None, low: int, high: int | None = None) -> int | None:
        """A whole number within [low, high]; the default (with a warning) when it does not resolve."""
        if value is None:
            return default
        if isinstance(value, Unresolved):
            using = f"pyrie uses {default}" if default is not None else "pyrie leaves it unset"
            self.warn(self.unresolved(path, value, using))
            return default
        text = text_of(value).strip()
        if isinstance(value, bool) or not text.isdigit():
            self.fail(f"{path} must be a whole number, not {render(value)}")
            return default
        number = int(text)
        if number < low or (high is not None and number > high):
            bounds = f"at least {low}" if high is None else f"between {low} and {high}"
            self.fail(f"{path} must be {bounds}, not {number}")
            return default
        return number

    def choice(self, path: str, value: Any, choices: tuple[str, ...], default: str | None) -> str | None:
        text = self.optional_text(path, value, f"pyrie uses {default}" if default else "pyrie leaves it unset")
        if text is None:
            return default
        if text not in choices:
            self.fail(f"{path} must be {' or '.join(choices)}, not {text!r}")
            return default
        return text

    def mapping(self, path: str, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if isinstance(value, Unresolved):
            self.warn(self.unresolved(path, value, "pyrie ignores it"))
            return {}
        if not isinstance(value, dict):
            self.fail(f"{path} must be a mapping, not {render(value)}")
            return {}
        return value

    # -- the function -------------------------------------------------------------------------------------------

    def spec(self, metadata: Any) -> FunctionSpec | None:
        runtime = self.required_text("Runtime", self.value("Runtime"))
        handler = self.required_text("Handler", self.value("Handler"))
        code = self.code(runtime, metadata)
        function_name = self.function_name()
        timeout = self.whole("Timeout", self.value("Timeout"), DEFAULT_TIMEOUT_S, MIN_TIMEOUT_S)
        memory = self.whole("MemorySize", self.value("MemorySize"), DEFAULT_MEMORY_MB, MIN_MEMORY_MB)
        reserved = self.whole("ReservedConcurrentExecutions", self.value("ReservedConcurrentExecutions"), None, 0)
        logging_config = self.mapping("LoggingConfig", self.value("LoggingConfig"))
        log_format = self.choice("LoggingConfig.LogFormat", logging_config.get("LogFormat"), ("Text", "JSON"), "Text")
        application_level = self.optional_text(
            "LoggingConfig.ApplicationLogLevel", logging_config.get("ApplicationLogLevel"), "pyrie leaves it unset"
        )
        log_group = self.optional_text("LoggingConfig.LogGroup", logging_config.get("LogGroup"), "pyrie uses none")
        for name, why in _IGNORED_WITH_WARNING.items():
            if self.properties.get(name):
                self.warn(f"{name} is ignored: {why}")
        environment, unresolved_variables = self.environment()
        spec = FunctionSpec(
            logical_id=self.logical_id,
            resource_type=self.resource_type,
            function_name=function_name,
            runtime=runtime,
            handler=handler,
            code=code,
            environment=environment,
            unresolved_variables=unresolved_variables,
            timeout_s=timeout or DEFAULT_TIMEOUT_S,
            memory_mb=memory or DEFAULT_MEMORY_MB,
            log_format=log_format or "Text",
            log_format_given="LogFormat" in logging_config,
            application_log_level=application_level,
            log_group=log_group,
            reserved_concurrency=reserved,
            url=self.function_url(self.value("FunctionUrlConfig"), "FunctionUrlConfig"),
            durable=self.durable(),
            tenant_isolation=self.tenant_isolation(),
            managed_instances=self.managed_instances(),
            snapstart=self.snapstart(),
            alias=self.optional_text("AutoPublishAlias", self.value("AutoPublishAlias"), "pyrie serves no alias"),
        )
        return None if self.failed else spec

    def function_name(self) -> str | None:
        value = self.value("FunctionName")
        text = self.optional_text("FunctionName", value, f"pyrie names the function {self.logical_id}")
        if text is not None and not _NAME.match(text):
            self.fail(f"FunctionName {text!r} is not a Lambda function name (up to 64 letters, digits, - and _)")
            return None
        return text

    def code(self, runtime: str | None, metadata: Any) -> CodeLocation:
        """Where the code is; SAM CLI's default, the template's directory, when the template does not say."""
        package_type = self.optional_text("PackageType", self.value("PackageType"), "pyrie assumes Zip")
        if self.resource_type == SERVERLESS_FUNCTION:
            if package_type == "Image":
                image = self.optional_text("ImageUri", self.value("ImageUri"), "")
                return CodeLocation("image", image or "")
            inline = self.optional_text("InlineCode", self.value("InlineCode"), "")
            if inline is not None:
                return CodeLocation("inline", inline)
            return self.code_uri("CodeUri", self.value("CodeUri"))
        code = self.value("Code")
        if package_type == "Image" or (isinstance(code, dict) and "ImageUri" in code):
            image = code.get("ImageUri") if isinstance(code, dict) else None
            return CodeLocation("image", image if isinstance(image, str) else "")
        asset = metadata.get("aws:asset:path") if isinstance(metadata, dict) else None
        if isinstance(asset, str) and metadata.get("aws:asset:property", "Code") == "Code":
            return CodeLocation("path", asset)  # the CDK's assets: a local directory beside the template
        if isinstance(code, dict) and "ZipFile" in code:
            inline = self.optional_text("Code.ZipFile", code["ZipFile"], "")
            return CodeLocation("inline", inline or "")
        return self.code_uri("Code", code)

    def code_uri(self, path: str, value: Any) -> CodeLocation:
        if value is None:
            return CodeLocation("path", ".")
        if isinstance(value, Unresolved):
            self.fail(self.unresolved(path, value, "pyrie needs it to find the code"))
            return CodeLocation("path", ".")
        if isinstance(value, dict):
            bucket = value.get("Bucket") or value.get("S3Bucket")
            key = value.get("Key") or value.get("S3Key")
            return CodeLocation("remote", f"s3://{text_of(bucket)}/{text_of(key)}")
        text = text_of(value)
        if text.startswith("s3://"):
            return CodeLocation("remote", text)
        return CodeLocation("path", text)

    def environment(self) -> tuple[dict[str, str], dict[str, str]]:
        """The declared variables (unresolved ones empty), and the warnings for those that did not resolve."""
        environment = self.mapping("Environment", self.value("Environment"))
        variables = self.mapping("Environment.Variables", environment.get("Variables"))
        result: dict[str, str] = {}
        unresolved: dict[str, str] = {}
        for name, value in variables.items():
            path = f"Environment.Variables.{name}"
            if name in RESERVED_VARIABLES:
                self.warn(f"{path}: {name} is set by Lambda itself and cannot be set by the template; ignored")
                continue
            problems = find_unresolved(value, path)
            if problems:
                where, problem = problems[0]
                consequence = "the variable is empty; give its value with --env-vars"
                unresolved[str(name)] = f"{self.where}: {self.unresolved(where, problem, consequence)}"
            result[str(name)] = stringify(value)
        return result, unresolved

    def function_url(self, value: Any, path: str) -> FunctionUrl | None:
        if value is None:
            return None
        config = self.mapping(path, value)
        if not isinstance(value, dict):
            return None
        auth = self.choice(f"{path}.AuthType", config.get("AuthType"), ("NONE", "AWS_IAM"), None)
        mode = self.choice(f"{path}.InvokeMode", config.get("InvokeMode"), ("BUFFERED", "RESPONSE_STREAM"), "BUFFERED")
        if auth is None:
            if "AuthType" not in config:
                self.fail(f"{path}.AuthType is required (NONE or AWS_IAM)")
            return None
        cors = self.mapping(f"{path}.Cors", config.get("Cors"))
        if cors:
            self.warn(f"{path}.Cors is ignored: pyrie's Function URLs send no CORS headers")
        return FunctionUrl(auth_type=auth, invoke_mode=mode or "BUFFERED", cors=cors or None)

    def durable(self) -> DurableSettings | None:
        value = self.value("DurableConfig")
        if value is None:
            return None
        config = self.mapping("DurableConfig", value)
        if "ExecutionTimeout" not in config:
            if not isinstance(value, Unresolved):
                self.fail("DurableConfig.ExecutionTimeout is required (seconds, 1 to 31622400)")
            return None
        timeout = self.whole(
            "DurableConfig.ExecutionTimeout", config["ExecutionTimeout"], None, 1, MAX_EXECUTION_TIMEOUT_S
        )
        retention = self.whole(
            "DurableConfig.RetentionPeriodInDays",
            config.get("RetentionPeriodInDays"),
            DEFAULT_RETENTION_DAYS,
            1,
            MAX_RETENTION_DAYS,
        )
        if timeout is None:
            return None
        return DurableSettings(execution_timeout_s=timeout, retention_days=retention or DEFAULT_RETENTION_DAYS)

    def tenant_isolation(self) -> bool:
        value = self.value("TenancyConfig")
        if value is None:
            return False
        config = self.mapping("TenancyConfig", value)
        mode = self.choice(
            "TenancyConfig.TenantIsolationMode", config.get("TenantIsolationMode"), ("PER_TENANT",), None
        )
        return mode == "PER_TENANT"

    def managed_instances(self) -> ManagedInstances | None:
        value = self.value("CapacityProviderConfig")
        if value is None:
            return None
        config = self.mapping("CapacityProviderConfig", value)
        path = "CapacityProviderConfig"
        nested = config.get("LambdaManagedInstancesCapacityProviderConfig")
        if isinstance(nested, dict):  # AWS::Lambda::Function's shape (and the CDK's)
            config, path = nested, f"{path}.LambdaManagedInstancesCapacityProviderConfig"
        concurrency = self.whole(
            f"{path}.PerExecutionEnvironmentMaxConcurrency",
            config.get("PerExecutionEnvironmentMaxConcurrency"),
            DEFAULT_PER_ENVIRONMENT_CONCURRENCY,
            1,
            MAX_PER_ENVIRONMENT_CONCURRENCY,
        )
        return ManagedInstances(max_concurrency=concurrency or DEFAULT_PER_ENVIRONMENT_CONCURRENCY)

    def snapstart(self) -> bool:
        config = self.mapping("SnapStart", self.value("SnapStart"))
        apply_on = self.choice("SnapStart.ApplyOn", config.get("ApplyOn"), ("PublishedVersions", "None"), "None")
        return apply_on == "PublishedVersions"


def _attach_urls(resources: Mapping[str, Any], source: str, resolver: Resolver, read: FunctionsRead) -> None:
    """``AWS::Lambda::Url`` resources: each gives the function it targets a Function URL."""
    by_name: dict[str, int] = {}
    for position, function in enumerate(read.functions):
        by_name[function.logical_id] = position
        by_name.setdefault(function.name, position)
    for logical_id, resource in resources.items():
        if not (isinstance(resource, dict) and resource.get("Type") == LAMBDA_URL):
            continue
        properties = resource.get("Properties") or {}
        target = properties.get("TargetFunctionArn") if isinstance(properties, dict) else None
        index = by_name.get(_url_target(target) or "")
        if index is None:
            read.warnings.append(
                f"{source}: {logical_id} ({LAMBDA_URL}): its TargetFunctionArn {render(target)} names no function "
                "pyrie serves; ignored"
            )
            continue
        spec = read.functions[index]
        reader = _FunctionReader(
            source, spec.logical_id, resource_type=spec.resource_type, properties={}, resolver=resolver, found=read
        )
        resolved = {key: resolver.resolve(value) for key, value in properties.items() if key != "TargetFunctionArn"}
        url = reader.function_url(resolved, logical_id)
        if url is not None and not reader.failed:
            read.functions[index] = replace(spec, url=url)


def _url_target(target: Any) -> str | None:
    """The logical ID or name a ``TargetFunctionArn`` points at: ``!GetAtt F.Arn``, ``!Ref F``, a name or an ARN."""
    if isinstance(target, dict) and "Fn::GetAtt" in target:
        argument = target["Fn::GetAtt"]
        parts = argument.split(".", 1) if isinstance(argument, str) else argument
        return parts[0] if isinstance(parts, list) and parts and isinstance(parts[0], str) else None
    if isinstance(target, dict) and isinstance(target.get("Ref"), str):
        return str(target["Ref"])
    if isinstance(target, str):
        return target.rsplit(":function:", 1)[-1].split(":", 1)[0]
    return None
