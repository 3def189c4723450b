"""``read_template``: a SAM / CloudFormation template file in, its functions ready to start out.

The file reads (the template, the ``--env-vars`` file), the code's directories (unpacking a .zip) and the runtime
look-ups (PATH, node_modules) happen here; the template's meaning is worked out by the pure modules beside it.
Problems pyrie cannot start with are gathered and raised together as one ``TemplateError`` (one line each); what it
can start with but the user should know (an ignored property, an expression left unresolved) is in
``Template.warnings``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

from pyrie_core.function_names import ACCOUNT_ID, REGION, function_arn
from supervisor.template.code import CodeRefused, Scratch, code_directory
from supervisor.template.document import load_document
from supervisor.template.functions import FunctionSpec, read_functions
from supervisor.template.intrinsics import NO_VALUE, Resolver
from supervisor.template.model import Template, TemplateError, TemplateFunction, frozen
from supervisor.template.parameters import EnvVarsFile, parameter_values, parse_env_vars, parse_parameter_overrides
from supervisor.template.runtimes import (
    RuntimeCommands,
    RuntimeUnavailable,
    family_of,
    parse_runtime_commands,
    runtime_command,
)
from supervisor.template.sam_globals import function_globals, merge_globals

__all__ = ["STACK_NAME", "pseudo_parameters", "read_template"]

# AWS::StackName when the template runs locally, as SAM CLI names it.
STACK_NAME: Final = "local"
_STACK_UUID: Final = "51af3dc0-da77-11e4-872e-1234567db123"


def read_template(
    path: str,
    *,
    parameter_overrides: Iterable[str] = (),
    env_vars_path: str | None = None,
    runtime_commands: Iterable[str] = (),
    python_client: Sequence[str],
    environ: Mapping[str, str],
    cwd: str,
) -> Template:
    """Read the template at ``path`` (relative to ``cwd``) and find how to start each of its functions.

    ``parameter_overrides``, ``env_vars_path`` and ``runtime_commands`` are the values of ``--parameter-overrides``
    (each argument as given), ``--env-vars`` and ``--runtime-command``; ``python_client`` is the command that runs
    pyrie's own Python runtime client (the handler is added to it); ``environ`` is pyrie's environment (PATH, the
    region, ``PYRIE_NODE_RIC``, and values for declared variables as SAM CLI takes them from the shell).
    """
    template_path = os.path.abspath(os.path.join(cwd, path))
    source = os.path.relpath(template_path, cwd) if template_path.startswith(cwd + os.sep) else template_path
    document = load_document(_read_text(template_path, "the template", "--template"), source)
    overrides = parse_parameter_overrides(parameter_overrides)
    commands = parse_runtime_commands(runtime_commands)
    env_vars = (
        parse_env_vars(_read_text(os.path.join(cwd, env_vars_path), "the file", "--env-vars"), env_vars_path)
        if env_vars_path
        else None
    )
    specs, warnings = plan_functions(document, source, overrides=overrides, environ=environ)
    specs, env_warnings = apply_env_vars(specs, env_vars or EnvVarsFile("", {}, {}), environ)
    warnings += env_warnings

    scratch = Scratch()
    functions: list[TemplateFunction] = []
    errors: list[str] = []
    try:
        for spec in specs:
            where = f"{source}: function {spec.logical_id}"
            try:
                code_dir, code_source = code_directory(spec.code, spec.runtime, spec.logical_id, template_path, scratch)
                command = runtime_command(
                    spec.runtime,
                    spec.handler,
                    code_dir,
                    commands=commands,
                    python_client=python_client,
                    environ=environ,
                    cwd=cwd,
                )
            except (CodeRefused, RuntimeUnavailable) as exc:
                errors.append(f"{where} ({spec.runtime or 'no Runtime'}) {exc}")
                continue
            functions.append(_function(spec, code_dir, code_source, command))
        errors += _name_clashes(functions, source)
        warnings += _unused_runtime_commands(commands, specs)
        if not errors and not functions:
            errors.append(
                f"{source}: no function to serve: the template has no AWS::Serverless::Function or "
                "AWS::Lambda::Function with local code"
            )
        if errors:
            raise TemplateError("\n".join(errors))
    except BaseException:
        scratch.remove()
        raise
    return Template(
        path=template_path,
        functions=tuple(functions),
        warnings=tuple(warnings),
        scratch_dirs=tuple(scratch.directories),
    )


def plan_functions(
    document: Mapping[str, Any], source: str, *, overrides: Mapping[str, str], environ: Mapping[str, str]
) -> tuple[list[FunctionSpec], list[str]]:
    """The template's functions as it describes them (pure: reads no file), and the warnings; ``TemplateError``
    when the template or a function is malformed."""
    resources = document.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise TemplateError(f"{source}: the template has no Resources")
    declared = document.get("Parameters") or {}
    if not isinstance(declared, dict):
        raise TemplateError(f"{source}: Parameters must be a mapping")
    values, warnings = parameter_values(declared, overrides, source)
    globals_, global_warnings = function_globals(document, source)
    warnings += global_warnings
    warnings += _unsupported_sections(document, source)
    pseudo = pseudo_parameters(environ, overrides)
    mappings = document.get("Mappings") or {}
    conditions = document.get("Conditions") or {}

    def resolver_for(function_name: Any) -> Resolver:
        return Resolver(
            parameters=values,
            pseudo=pseudo,
            mappings=mappings if isinstance(mappings, dict) else {},
            conditions=conditions if isinstance(conditions, dict) else {},
            resources=resources,
            function_name=function_name,
            function_arn=lambda logical_id: function_arn(function_name(logical_id) or logical_id),
        )

    read = read_functions(
        document,
        source,
        merge=lambda properties, ignore, where: merge_globals(globals_, properties, ignore, where),
        resolver_for=resolver_for,
    )
    if read.errors:
        raise TemplateError("\n".join(read.errors))
    return read.functions, warnings + read.warnings


def pseudo_parameters(environ: Mapping[str, str], overrides: Mapping[str, str]) -> dict[str, Any]:
    """CloudFormation's pseudo parameters for a local run: the region pyrie's environment names (else pyrie's
    default), pyrie's account ID (the one in the ARNs it serves), and any ``AWS::...`` override."""
    region = overrides.get("AWS::Region") or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or REGION
    account = overrides.get("AWS::AccountId") or ACCOUNT_ID
    if region.startswith("cn-"):
        partition, suffix = "aws-cn", "amazonaws.com.cn"
    elif region.startswith("us-gov-"):
        partition, suffix = "aws-us-gov", "amazonaws.com"
    else:
        partition, suffix = "aws", "amazonaws.com"
    stack = overrides.get("AWS::StackName") or STACK_NAME
    pseudo: dict[str, Any] = {
        "AWS::Region": region,
        "AWS::AccountId": account,
        "AWS::Partition": overrides.get("AWS::Partition") or partition,
        "AWS::URLSuffix": overrides.get("AWS::URLSuffix") or suffix,
        "AWS::StackName": stack,
        "AWS::StackId": f"arn:{partition}:cloudformation:{region}:{account}:stack/{stack}/{_STACK_UUID}",
        "AWS::NotificationARNs": [],
        "AWS::NoValue": NO_VALUE,
    }
    if overrides.get("AWS::StackId"):
        pseudo["AWS::StackId"] = overrides["AWS::StackId"]
    return pseudo


def apply_env_vars(
    specs: Sequence[FunctionSpec], env_vars: EnvVarsFile, environ: Mapping[str, str]
) -> tuple[list[FunctionSpec], list[str]]:
    """Each function's declared variables with SAM CLI's precedence, later winning: the template's value, the
    shell's (pyrie's environment), the file's ``Parameters``, the file's entry for the function. As in SAM CLI,
    only variables the template declares are set; the others in the file are named in a warning, and so is a
    variable whose expression did not resolve and that gets no value here."""
    result: list[FunctionSpec] = []
    warnings: list[str] = []
    source = f"--env-vars {env_vars.path}"
    used_keys: set[str] = set()
    declared_anywhere: set[str] = set()
    for spec in specs:
        own = env_vars.for_function(spec.logical_id, spec.function_name)
        if own is not None:
            used_keys.add(spec.logical_id if spec.logical_id in env_vars.per_function else spec.name)
        environment = dict(spec.environment)
        declared_anywhere.update(environment)
        for name in environment:
            given = [values[name] for values in (environ, env_vars.shared, own or {}) if name in values]
            if given:
                environment[name] = given[-1]
            elif name in spec.unresolved_variables:
                warnings.append(spec.unresolved_variables[name])
        undeclared = sorted(set(own or {}) - set(environment))
        if undeclared:
            warnings.append(
                f"{source}: {', '.join(undeclared)} for {spec.logical_id} not set: the template's "
                f"Environment.Variables of {spec.logical_id} do not declare "
                f"{'it' if len(undeclared) == 1 else 'them'} (SAM CLI sets only declared variables)"
            )
        result.append(replace(spec, environment=environment))
    for key in sorted(set(env_vars.per_function) - used_keys):
        warnings.append(f"{source}: {key} names no function of the template; its variables are not used")
    unused_shared = sorted(set(env_vars.shared) - declared_anywhere)
    if unused_shared:
        warnings.append(
            f"{source}: Parameters {', '.join(unused_shared)} not set: no function's Environment.Variables declare "
            f"{'it' if len(unused_shared) == 1 else 'them'}"
        )
    return result, warnings


def _function(spec: FunctionSpec, code_dir: str, code_source: str, command: tuple[str, ...]) -> TemplateFunction:
    runtime_env = {"LAMBDA_TASK_ROOT": code_dir}
    if spec.runtime and family_of(spec.runtime) != "provided":
        runtime_env["AWS_EXECUTION_ENV"] = f"AWS_Lambda_{spec.runtime}"
    if spec.log_format_given:
        runtime_env["AWS_LAMBDA_LOG_FORMAT"] = spec.log_format
    if spec.log_format == "JSON":
        runtime_env["AWS_LAMBDA_LOG_LEVEL"] = spec.application_log_level or "INFO"
    runtime_env["AWS_LAMBDA_LOG_GROUP_NAME"] = spec.log_group or f"/aws/lambda/{spec.name}"
    return TemplateFunction(
        logical_id=spec.logical_id,
        function_name=spec.function_name,
        resource_type=spec.resource_type,
        runtime=spec.runtime,
        handler=spec.handler,
        code_dir=code_dir,
        code_source=code_source,
        command=command,
        environment=frozen(spec.environment),
        runtime_env=frozen(runtime_env),
        timeout_s=spec.timeout_s,
        memory_mb=spec.memory_mb,
        log_format=spec.log_format,
        reserved_concurrency=spec.reserved_concurrency,
        url=spec.url,
        durable=spec.durable,
        tenant_isolation=spec.tenant_isolation,
        managed_instances=spec.managed_instances,
        snapstart=spec.snapstart,
        alias=spec.alias,
    )


def _name_clashes(functions: Sequence[TemplateFunction], source: str) -> list[str]:
    """Two functions one name would reach: the same name, or (for Function URL hosts) names that differ in case."""
    errors: list[str] = []
    owners: dict[str, str] = {}
    for function in functions:
        for name in function.names:
            owner = owners.setdefault(name, function.logical_id)
            if owner != function.logical_id:
                errors.append(f"{source}: the name {name} is both {owner}'s and {function.logical_id}'s")
    hosts: dict[str, str] = {}
    for function in functions:
        if function.url is None:
            continue
        for name in {name.lower() for name in function.names}:
            owner = hosts.setdefault(name, function.logical_id)
            if owner != function.logical_id:
                errors.append(
                    f"{source}: {owner} and {function.logical_id} both have a Function URL and names that differ "
                    f"only in case ({name}), so one host name would reach both"
                )
    return errors


def _unused_runtime_commands(commands: RuntimeCommands, specs: Sequence[FunctionSpec]) -> list[str]:
    runtimes = {spec.runtime for spec in specs if spec.runtime}
    wanted = runtimes | {family_of(runtime) for runtime in runtimes}
    return [
        f"--runtime-command {key}: no function of the template has that runtime"
        for key in commands.commands
        if key not in wanted
    ]


def _unsupported_sections(document: Mapping[str, Any], source: str) -> list[str]:
    resources = document.get("Resources") or {}
    loops = [key for key in resources if isinstance(key, str) and key.startswith("Fn::ForEach::")]
    if not loops:
        return []
    return [
        f"{source}: Resources: {', '.join(loops)} (AWS::LanguageExtensions) is not expanded by pyrie, so the "
        "functions it would make are not served"
    ]


def _read_text(path: str, what: str, flag: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except FileNotFoundError:
        raise TemplateError(f"{flag}: {what} {path} does not exist") from None
    except IsADirectoryError:
        raise TemplateError(f"{flag}: {path} is a directory, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{flag}: cannot read {path}: {exc}") from None
