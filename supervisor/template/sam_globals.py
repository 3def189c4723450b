"""SAM's ``Globals: Function:`` section, merged into each ``AWS::Serverless::Function`` as SAM's translator merges it.

The rules (samtranslator/plugins/globals/globals.py): a property only one side has is taken from that side; when
both have it, two mappings merge key by key (recursively, so ``Environment.Variables`` gain the function's variables
over the global ones), two lists are concatenated (globals first), and anything else, including an intrinsic function
and a value of another type, is the function's own. A function's ``IgnoreGlobals`` attribute (``"*"`` or a list of
property names) leaves out some or all of the globals. ``AWS::Lambda::Function`` resources get no globals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from supervisor.template.intrinsics import is_intrinsic
from supervisor.template.model import TemplateError

__all__ = ["FUNCTION_GLOBALS", "function_globals", "merge_globals"]

# The properties SAM accepts under Globals: Function (everything of AWS::Serverless::Function but Role, Policies,
# FunctionName and Events).
FUNCTION_GLOBALS: Final = frozenset(
    {
        "Handler",
        "Runtime",
        "CodeUri",
        "DeadLetterQueue",
        "Description",
        "MemorySize",
        "Timeout",
        "VpcConfig",
        "Environment",
        "Tags",
        "PropagateTags",
        "Tracing",
        "KmsKeyArn",
        "AutoPublishAlias",
        "AutoPublishAliasAllProperties",
        "Layers",
        "DeploymentPreference",
        "RolePath",
        "PermissionsBoundary",
        "ReservedConcurrentExecutions",
        "ProvisionedConcurrencyConfig",
        "AssumeRolePolicyDocument",
        "EventInvokeConfig",
        "FileSystemConfigs",
        "CodeSigningConfigArn",
        "Architectures",
        "SnapStart",
        "EphemeralStorage",
        "FunctionUrlConfig",
        "RuntimeManagementConfig",
        "LoggingConfig",
        "RecursiveLoop",
        "SourceKMSKeyArn",
        "TenancyConfig",
        "DurableConfig",
        "CapacityProviderConfig",
        "FunctionScalingConfig",
        "PublishToLatestPublished",
        "VersionDeletionPolicy",
    }
)


def function_globals(document: Mapping[str, Any], source: str) -> tuple[dict[str, Any], list[str]]:
    """The template's ``Globals: Function:`` properties SAM accepts, and warnings for those it does not."""
    section = document.get("Globals")
    if section is None:
        return {}, []
    if not isinstance(section, dict):
        raise TemplateError(f"{source}: Globals must be a mapping")
    properties = section.get("Function")
    if properties is None:
        return {}, []
    if not isinstance(properties, dict):
        raise TemplateError(f"{source}: Globals: Function must be a mapping of properties")
    unsupported = [name for name in properties if name not in FUNCTION_GLOBALS]
    warnings = [
        f"{source}: Globals: Function: {name} is not a property SAM takes from Globals; pyrie ignores it"
        for name in unsupported
    ]
    return {name: value for name, value in properties.items() if name not in unsupported}, warnings


def merge_globals(
    globals_: Mapping[str, Any], properties: Mapping[str, Any], ignore: Any, where: str
) -> dict[str, Any]:
    """``properties`` over ``globals_`` by SAM's rules, less what ``ignore`` (IgnoreGlobals) leaves out."""
    if ignore == "*":
        return dict(properties)
    if ignore is not None and not (isinstance(ignore, list) and all(isinstance(name, str) for name in ignore)):
        raise TemplateError(f'{where}: IgnoreGlobals must be "*" or a list of property names')
    kept = {name: value for name, value in globals_.items() if not ignore or name not in ignore}
    merged = _merge(kept, dict(properties))
    assert isinstance(merged, dict)
    return merged


def _merge(global_value: Any, local_value: Any) -> Any:
    global_kind, local_kind = _kind(global_value), _kind(local_value)
    if global_kind != local_kind or global_kind == "scalar":
        return local_value
    if global_kind == "list":
        return [*global_value, *local_value]
    merged = dict(global_value)
    for key, value in local_value.items():
        merged[key] = _merge(merged[key], value) if key in merged else value
    return merged


def _kind(value: Any) -> str:
    if isinstance(value, dict) and not is_intrinsic(value):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return "scalar"
