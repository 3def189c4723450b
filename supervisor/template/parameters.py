"""Template Parameters and what the command line gives them: ``--parameter-overrides`` and ``--env-vars``.

``--parameter-overrides`` takes what SAM CLI takes: ``KEY=VALUE`` pairs, several in one argument separated by spaces,
or CloudFormation's ``ParameterKey=KEY,ParameterValue=VALUE``; a value may be quoted (``Greeting="hello world"``).
An override beats the parameter's Default; a parameter's value is checked against its Type (Number, lists),
AllowedValues, AllowedPattern, MinLength / MaxLength and MinValue / MaxValue, as CloudFormation checks it.
``AWS::Region=...`` and the other pseudo parameters may be overridden too.

``--env-vars`` is SAM CLI's JSON file: ``{"LogicalId": {"VAR": "value"}, "Parameters": {"VAR": "value"}}``.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from supervisor.template.intrinsics import Unresolved, text_of
from supervisor.template.model import TemplateError

__all__ = ["EnvVarsFile", "parameter_values", "parse_env_vars", "parse_parameter_overrides", "stringify"]

_LONG_FORM: Final = re.compile(r"^ParameterKey=(?P<key>[^,]*),ParameterValue=(?P<value>.*)$", re.DOTALL)
_LIST_TYPES: Final = ("CommaDelimitedList", "List<")
_SSM_TYPE: Final = "AWS::SSM::Parameter::Value<"
_NUMBER: Final = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")


def parse_parameter_overrides(arguments: Iterable[str]) -> dict[str, str]:
    """The overrides given by every ``--parameter-overrides`` argument, later ones winning."""
    overrides: dict[str, str] = {}
    for argument in arguments:
        try:
            words = shlex.split(argument)
        except ValueError as exc:
            raise TemplateError(f"--parameter-overrides: {argument!r}: {exc}") from None
        for word in words:
            long_form = _LONG_FORM.match(word)
            if long_form is not None:
                key, value = long_form["key"], long_form["value"]
            else:
                key, equals, value = word.partition("=")
                if not equals:
                    raise TemplateError(
                        f"--parameter-overrides: {word!r} is not KEY=VALUE (or ParameterKey=KEY,ParameterValue=VALUE)"
                    )
            if not key:
                raise TemplateError(f"--parameter-overrides: {word!r} has no parameter name before '='")
            overrides[key] = value
    return overrides


def parameter_values(
    declared: Mapping[str, Any], overrides: Mapping[str, str], source: str
) -> tuple[dict[str, Any], list[str]]:
    """Each declared parameter's value (a string, a list for list types, or ``Unresolved``) and the warnings.

    ``TemplateError`` when a value breaks the parameter's constraints."""
    values: dict[str, Any] = {}
    warnings: list[str] = []
    for name, spec in declared.items():
        if not isinstance(spec, dict):
            raise TemplateError(f"{source}: Parameters: {name} is not a mapping")
        kind = text_of(spec.get("Type", "String"))
        given = name in overrides
        if given:
            raw: Any = overrides[name]
        elif "Default" in spec:
            raw = spec["Default"]
        else:
            values[name] = Unresolved(
                f"!Ref {name}", f"the parameter {name} has no Default; give it with --parameter-overrides {name}=VALUE"
            )
            continue
        if isinstance(raw, list):  # a list Default written as a YAML list
            raw = ",".join(text_of(item) for item in raw)
        text = text_of(raw)
        where = f"--parameter-overrides {name}" if given else f"{source}: the Default of parameter {name}"
        if kind.startswith(_SSM_TYPE) and not given:
            values[name] = Unresolved(
                f"!Ref {name}",
                f"{name} is the SSM parameter {text}, whose value pyrie cannot read; give the value itself with "
                f"--parameter-overrides {name}=VALUE",
            )
            continue
        is_list = kind.startswith(_LIST_TYPES) and not kind.startswith(_SSM_TYPE)
        members = [member.strip() for member in text.split(",")] if is_list else [text]
        for member in members:
            _check(member, spec, kind, where)
        values[name] = members if is_list else text
    for name in overrides:
        if name not in declared and not name.startswith("AWS::"):
            warnings.append(f"--parameter-overrides: {source} declares no parameter {name}; it is ignored")
    return values, warnings


def _check(value: str, spec: Mapping[str, Any], kind: str, where: str) -> None:
    """CloudFormation's checks of one parameter value; ``TemplateError`` naming ``where`` when one fails."""
    numeric = kind in ("Number", "List<Number>")
    if numeric and not _NUMBER.match(value):
        raise TemplateError(f"{where}: {value!r} is not a number")
    allowed = spec.get("AllowedValues")
    if isinstance(allowed, list) and value not in [text_of(item) for item in allowed]:
        listed = ", ".join(text_of(item) for item in allowed)
        raise TemplateError(f"{where}: {value!r} is not one of the AllowedValues ({listed})")
    pattern = spec.get("AllowedPattern")
    if isinstance(pattern, str):
        try:
            matches = re.fullmatch(pattern, value) is not None
        except re.error:
            matches = True  # a Java pattern Python cannot read: CloudFormation checks it, pyrie does not
        if not matches:
            description = spec.get("ConstraintDescription") or f"it must match {pattern}"
            raise TemplateError(f"{where}: {value!r} does not match the AllowedPattern: {description}")
    for key, broken in (
        ("MinLength", lambda limit: len(value) < limit),
        ("MaxLength", lambda limit: len(value) > limit),
    ):
        if key in spec and not numeric and broken(_whole(spec[key])):
            raise TemplateError(f"{where}: {value!r} breaks {key} {spec[key]}")
    if numeric:
        for key, broken in (
            ("MinValue", lambda limit: float(value) < limit),
            ("MaxValue", lambda limit: float(value) > limit),
        ):
            if key in spec and broken(float(text_of(spec[key]))):
                raise TemplateError(f"{where}: {value} breaks {key} {spec[key]}")


def _whole(value: Any) -> int:
    text = text_of(value)
    return int(text) if text.isdigit() else 0


# -- --env-vars ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnvVarsFile:
    """SAM CLI's ``--env-vars`` file: values for every function (``Parameters``) and per function (by logical ID,
    else FunctionName)."""

    path: str
    shared: Mapping[str, str]
    per_function: Mapping[str, Mapping[str, str]]

    def for_function(self, logical_id: str, function_name: str | None) -> Mapping[str, str] | None:
        found = self.per_function.get(logical_id)
        if found is None and function_name:
            found = self.per_function.get(function_name)
        return found


def parse_env_vars(text: str, path: str) -> EnvVarsFile:
    """The ``--env-vars`` file's text (``path`` names it in errors)."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TemplateError(f"--env-vars {path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    if not isinstance(document, dict):
        raise TemplateError(
            f'--env-vars {path}: expected an object such as {{"MyFunction": {{"VAR": "value"}}, '
            '"Parameters": {"VAR": "value"}}'
        )
    shared: dict[str, str] = {}
    per_function: dict[str, dict[str, str]] = {}
    for key, variables in document.items():
        if not isinstance(variables, dict):
            raise TemplateError(
                f"--env-vars {path}: the value of {key!r} must be an object of variables, not {json.dumps(variables)}"
            )
        converted = {str(name): stringify(value) for name, value in variables.items()}
        if key == "Parameters":
            shared = converted
        else:
            per_function[key] = converted
    return EnvVarsFile(path, shared, per_function)


def stringify(value: Any) -> str:
    """An environment variable's value as SAM CLI passes it: lists, objects and null (unresolved intrinsics) are
    empty, booleans ``true`` / ``false``."""
    if value is None or isinstance(value, dict | list | tuple | Unresolved):
        return ""
    return text_of(value)
