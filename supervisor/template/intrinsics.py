"""CloudFormation's intrinsic functions and conditions, worked out as far as a local run can.

What resolves: ``Ref`` of a Parameter, of a pseudo parameter (``AWS::Region``, ``AWS::AccountId``,
``AWS::Partition``, ``AWS::StackName``, ``AWS::StackId``, ``AWS::URLSuffix``, ``AWS::NotificationARNs``,
``AWS::NoValue``) and of a function of the template (its name); ``Fn::GetAtt`` of a function's ``Arn``;
``Fn::Sub``, ``Fn::Join``, ``Fn::Select``, ``Fn::Split``, ``Fn::FindInMap``, ``Fn::Base64``, ``Fn::Cidr``,
``Fn::If`` and the conditions (``Fn::Equals``, ``Fn::And``, ``Fn::Or``, ``Fn::Not``, ``Condition``), and
``Fn::Length`` / ``Fn::ToJsonString`` of the ``AWS::LanguageExtensions`` transform.

What cannot (another resource's attributes, ``Fn::ImportValue``, ``Fn::GetAZs``, ``Fn::Transform``, ``{{resolve:...}}``
dynamic references, a parameter with no value) becomes an ``Unresolved`` value carrying the expression, written in
its short form, and the reason; the caller decides what that means for the property it sits in. Nothing here raises.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "NO_VALUE",
    "Resolver",
    "Unresolved",
    "find_unresolved",
    "is_intrinsic",
    "render",
    "text_of",
]

_SUB_VARIABLE: Final = re.compile(r"\$\{([^}]*)\}")
_DYNAMIC_REFERENCE: Final = "{{resolve:"
_MAX_RENDER: Final = 160
_PLAIN: Final = re.compile(r"^[A-Za-z0-9_./@$+=-][A-Za-z0-9_./:@$+=-]*$")  # written unquoted by render()


class _NoValue:
    """``AWS::NoValue``: the property or list item it stands for is removed."""

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE: Final = _NoValue()


@dataclass(frozen=True, slots=True)
class Unresolved:
    """A value pyrie cannot work out locally: the expression (short form) and why."""

    expression: str
    reason: str


def is_intrinsic(value: Any) -> bool:
    """A mapping of one key that names an intrinsic function (``Ref``, ``Condition``, ``Fn::*``)."""
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        return isinstance(key, str) and (key in ("Ref", "Condition") or key.startswith("Fn::"))
    return False


def render(value: Any) -> str:
    """A value as a template would write it, intrinsics in their short form: ``!GetAtt Table.Arn``."""
    text = _render(value)
    return text if len(text) <= _MAX_RENDER else text[: _MAX_RENDER - 1] + "…"


def _render(value: Any) -> str:
    if is_intrinsic(value):
        key, argument = next(iter(value.items()))
        name = key.removeprefix("Fn::")
        if name == "GetAtt" and isinstance(argument, list) and all(isinstance(part, str) for part in argument):
            return f"!GetAtt {'.'.join(argument)}"
        return f"!{name} {_render(argument)}"
    if isinstance(value, list):
        return "[" + ", ".join(_render(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_render(item)}" for key, item in value.items()) + "}"
    if isinstance(value, str):
        return value if _PLAIN.match(value) else json.dumps(value)
    return text_of(value) if isinstance(value, bool | int | float) else repr(value)


def text_of(value: Any) -> str:
    """A scalar as CloudFormation turns it into a string (``true``, not ``True``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def find_unresolved(value: Any, path: str) -> list[tuple[str, Unresolved]]:
    """Every ``Unresolved`` inside ``value``, with its path below ``path`` (``Environment.Variables.TABLE``)."""
    if isinstance(value, Unresolved):
        return [(path, value)]
    found: list[tuple[str, Unresolved]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += find_unresolved(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += find_unresolved(item, f"{path}[{index}]")
    return found


def _first_unresolved(value: Any) -> Unresolved | None:
    found = find_unresolved(value, "")
    return found[0][1] if found else None


class Resolver:
    """Resolves values against one template's parameters, pseudo parameters, mappings, conditions and resources.

    ``function_name`` gives the name of a function resource of the template (for ``Ref`` and ``GetAtt .Arn``),
    or None when the logical ID is no function pyrie serves; ``function_arn`` makes its ARN.
    """

    def __init__(
        self,
        *,
        parameters: Mapping[str, Any],
        pseudo: Mapping[str, Any],
        mappings: Mapping[str, Any],
        conditions: Mapping[str, Any],
        resources: Mapping[str, Any],
        function_name: Callable[[str], str | None],
        function_arn: Callable[[str], str],
    ) -> None:
        self._parameters = parameters
        self._pseudo = pseudo
        self._mappings = mappings
        self._conditions = conditions
        self._resources = resources
        self._function_name = function_name
        self._function_arn = function_arn
        self._condition_values: dict[str, bool | Unresolved] = {}
        self._evaluating: set[str] = set()
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {
            "Ref": self._ref,
            "Condition": self._condition_ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::Join": self._join,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::FindInMap": self._find_in_map,
            "Fn::Base64": self._base64,
            "Fn::Cidr": self._cidr,
            "Fn::If": self._if,
            "Fn::Equals": self._equals,
            "Fn::And": self._and,
            "Fn::Or": self._or,
            "Fn::Not": self._not,
            "Fn::Length": self._length,
            "Fn::ToJsonString": self._to_json_string,
        }

    # -- values -------------------------------------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic function worked out, or replaced by an ``Unresolved``; ``NO_VALUE``
        items are removed from mappings and lists (and returned as such at the top)."""
        if is_intrinsic(value):
            key, argument = next(iter(value.items()))
            handler = self._handlers.get(key)
            if handler is None:
                return Unresolved(render(value), self._unsupported_reason(key))
            return handler(argument, value)
        if isinstance(value, dict):
            resolved_dict = {key: self.resolve(item) for key, item in value.items()}
            return {key: item for key, item in resolved_dict.items() if item is not NO_VALUE}
        if isinstance(value, list):
            return [item for item in (self.resolve(item) for item in value) if item is not NO_VALUE]
        if isinstance(value, str) and _DYNAMIC_REFERENCE in value:
            return Unresolved(render(value), "a dynamic reference, which only CloudFormation resolves at deploy time")
        return value

    @staticmethod
    def _unsupported_reason(key: str) -> str:
        reasons = {
            "Fn::ImportValue": "an export of another stack, which pyrie cannot see",
            "Fn::GetAZs": "Availability Zones are the account's, which pyrie cannot see",
            "Fn::Transform": "a macro, which only CloudFormation runs",
        }
        return reasons.get(key, f"pyrie does not know the intrinsic function {key}")

    def _resolved_arguments(self, argument: Any, expression: Any) -> Any:
        """``argument`` resolved, or an ``Unresolved`` for the whole ``expression`` when part of it is."""
        resolved = self.resolve(argument)
        inner = _first_unresolved(resolved)
        if inner is not None:
            return Unresolved(render(expression), inner.reason)
        return resolved

    @staticmethod
    def _malformed(expression: Any, shape: str) -> Unresolved:
        return Unresolved(render(expression), f"malformed: {shape}")

    # -- the functions ------------------------------------------------------------------------------------------

    def _ref(self, name: Any, expression: Any) -> Any:
        if not isinstance(name, str):
            return self._malformed(expression, "Ref takes the name of a parameter or resource")
        if name in self._parameters:
            value = self._parameters[name]
            return Unresolved(render(expression), value.reason) if isinstance(value, Unresolved) else value
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self._resources:
            function_name = self._function_name(name)
            if function_name is not None:
                return function_name
            kind = _resource_type(self._resources[name])
            return Unresolved(render(expression), f"{name} is a resource ({kind}) that pyrie does not create")
        return Unresolved(render(expression), f"the template has no parameter or resource {name}")

    def _get_att(self, argument: Any, expression: Any) -> Any:
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        if not (isinstance(argument, list) and len(argument) == 2 and isinstance(argument[0], str)):
            return self._malformed(expression, "GetAtt takes [resource, attribute]")
        resource, attribute = argument[0], self.resolve(argument[1])
        if resource not in self._resources:
            return Unresolved(render(expression), f"the template has no resource {resource}")
        if attribute == "Arn" and self._function_name(resource) is not None:
            return self._function_arn(resource)
        kind = _resource_type(self._resources[resource])
        return Unresolved(render(expression), f"an attribute of {resource} ({kind}), which only AWS knows")

    def _sub(self, argument: Any, expression: Any) -> Any:
        if isinstance(argument, str):
            template, variables = argument, {}
        elif (
            isinstance(argument, list)
            and len(argument) == 2
            and isinstance(argument[0], str)
            and isinstance(argument[1], dict)
        ):
            template, variables = argument[0], argument[1]
        else:
            return self._malformed(expression, "Sub takes a string, or [string, {variables}]")
        resolved_variables = {name: self.resolve(value) for name, value in variables.items()}
        problems: list[Unresolved] = []

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in resolved_variables:
                value = resolved_variables[name]
            elif "." in name and name.split(".", 1)[0] in self._resources:
                value = self._get_att(name, {"Fn::GetAtt": name.split(".", 1)})
            else:
                value = self._ref(name, {"Ref": name})
            if isinstance(value, list | dict):
                value = Unresolved(render(expression), f"${{{name}}} is a list, not a string")
            inner = _first_unresolved(value)
            if inner is not None:
                problems.append(inner)
                return ""
            return text_of(value)

        result = _SUB_VARIABLE.sub(substitute, template)
        if problems:
            return Unresolved(render(expression), problems[0].reason)
        return self.resolve(result) if _DYNAMIC_REFERENCE in result else result

    def _join(self, argument: Any, expression: Any) -> Any:
        resolved = self._resolved_arguments(argument, expression)
        if isinstance(resolved, Unresolved):
            return resolved
        if not (isinstance(resolved, list) and len(resolved) == 2 and isinstance(resolved[1], list)):
            return self._malformed(expression, "Join takes [delimiter, [values]]")
        delimiter, values = resolved
        if not all(isinstance(item, str | int | float | bool) for item in values):
            return self._malformed(expression, "Join's values must be strings")
        return text_of(delimiter).join(text_of(item) for item in values)

    def _select(self, argument: Any, expression: Any) -> Any:
        resolved = self._resolved_arguments(argument, expression)
        if isinstance(resolved, Unresolved):
            return resolved
        if not (isinstance(resolved, list) and len(resolved) == 2 and isinstance(resolved[1], list)):
            return self._malformed(expression, "Select takes [index, [values]]")
        index_text, values = text_of(resolved[0]), resolved[1]
        if not index_text.isdigit() or int(index_text) >= len(values):
            return self._malformed(expression, f"index {index_text} is not within the {len(values)} values")
        return values[int(index_text)]

    def _split(self, argument: Any, expression: Any) -> Any:
        resolved = self._resolved_arguments(argument, expression)
        if isinstance(resolved, Unresolved):
            return resolved
        if not (isinstance(resolved, list) and len(resolved) == 2 and isinstance(resolved[1], str) and resolved[0]):
            return self._malformed(expression, "Split takes [delimiter, string]")
        return resolved[1].split(text_of(resolved[0]))

    def _find_in_map(self, argument: Any, expression: Any) -> Any:
        resolved = self._resolved_arguments(argument, expression)
        if isinstance(resolved, Unresolved):
            return resolved
        if not (isinstance(resolved, list) and len(resolved) in (3, 4)):
            return self._malformed(expression, "FindInMap takes [map, top-level key, second-level key]")
        default = (
            resolved[3].get("DefaultValue", NO_VALUE)
            if len(resolved) == 4 and isinstance(resolved[3], dict)
            else NO_VALUE
        )
        name, top, second = (text_of(part) for part in resolved[:3])
        found = self._mappings.get(name)
        if isinstance(found, dict):
            found = found.get(top)
        if isinstance(found, dict) and second in found:
            return self.resolve(found[second])
        if default is not NO_VALUE:
            return default
        return Unresolved(render(expression), f"the mapping {name} has no {top}.{second}")

    def _base64(self, argument: Any, expression: Any) -> Any:
        resolved = self._resolved_arguments(argument, expression)
        if isinstance(resolved, Unresolved):
            return resolved
        if not isinstance(resolved, str):
            return self._malformed(expression, "Base64 takes a string")
        return base64.b64encode(resolved.encode()).decode("ascii")

    def _cidr(self, argument: Any, expression: Any) -> Any:
        resolved = self._resolved_arguments(argument, expression)
        if isinstance(resolved, Unresolved):
            return resolved
        try:
            block, count, bits = text_of(resolved[0]), int(text_of(resolved[1])), int(text_of(resolved[2]))
            network = ipaddress.ip_network(block, strict=False)
            subnets = network.subnets(new_prefix=network.max_prefixlen - bits)
            found = [str(subnet) for _, subnet in zip(range(count), subnets, strict=False)]
        except (TypeError, ValueError, IndexError, KeyError):
            return self._malformed(expression, "Cidr takes [ipBlock, count, cidrBits]")
        if len(found) < count:
            return self._malformed(expression, f"{block} holds fewer than {count} such blocks")
        return found

    def _length(self, argument: Any, expression: Any) -> Any:
        resolved = self._resolved_arguments(argument, expression)
        if isinstance(resolved, Unresolved):
            return resolved
        return len(resolved) if isinstance(resolved, list) else self._malformed(expression, "Length takes a list")

    def _to_json_string(self, argument: Any, expression: Any) -> Any:
        resolved = self._resolved_arguments(argument, expression)
        if isinstance(resolved, Unresolved):
            return resolved
        return json.dumps(resolved, separators=(",", ":"))

    # -- conditions ---------------------------------------------------------------------------------------------

    def condition(self, name: str) -> bool | Unresolved:
        """The value of the template's condition ``name`` (each is worked out once)."""
        if name in self._condition_values:
            return self._condition_values[name]
        expression = {"Condition": name}
        if name not in self._conditions:
            return Unresolved(render(expression), f"the template has no condition {name}")
        if name in self._evaluating:
            return Unresolved(render(expression), f"the condition {name} depends on itself")
        self._evaluating.add(name)
        try:
            value = self._truth(self._conditions[name], expression)
        finally:
            self._evaluating.discard(name)
        self._condition_values[name] = value
        return value

    def _truth(self, value: Any, expression: Any) -> bool | Unresolved:
        resolved = self.resolve(value)
        if isinstance(resolved, bool | Unresolved):
            return resolved
        if isinstance(resolved, str) and resolved.lower() in ("true", "false"):
            return resolved.lower() == "true"
        return self._malformed(expression, "a condition must be true or false")

    def _condition_ref(self, name: Any, expression: Any) -> Any:
        if not isinstance(name, str):
            return self._malformed(expression, "Condition takes a condition's name")
        value = self.condition(name)
        return Unresolved(render(expression), value.reason) if isinstance(value, Unresolved) else value

    def _if(self, argument: Any, expression: Any) -> Any:
        if not (isinstance(argument, list) and len(argument) == 3 and isinstance(argument[0], str)):
            return self._malformed(expression, "If takes [condition, value if true, value if false]")
        value = self.condition(argument[0])
        if isinstance(value, Unresolved):
            return Unresolved(render(expression), value.reason)
        return self.resolve(argument[1] if value else argument[2])

    def _equals(self, argument: Any, expression: Any) -> Any:
        resolved = self._resolved_arguments(argument, expression)
        if isinstance(resolved, Unresolved):
            return resolved
        if not (isinstance(resolved, list) and len(resolved) == 2):
            return self._malformed(expression, "Equals takes [value, value]")
        left, right = resolved
        if isinstance(left, list | dict) or isinstance(right, list | dict):
            return left == right
        return text_of(left) == text_of(right)

    def _and(self, argument: Any, expression: Any) -> Any:
        return self._combine(argument, expression, all, "And")

    def _or(self, argument: Any, expression: Any) -> Any:
        return self._combine(argument, expression, any, "Or")

    def _combine(self, argument: Any, expression: Any, combine: Callable[[list[bool]], bool], name: str) -> Any:
        if not (isinstance(argument, list) and argument):
            return self._malformed(expression, f"{name} takes a list of conditions")
        values = [self._truth(item, expression) for item in argument]
        problem = next((value for value in values if isinstance(value, Unresolved)), None)
        if problem is not None:
            return Unresolved(render(expression), problem.reason)
        return combine([bool(value) for value in values])

    def _not(self, argument: Any, expression: Any) -> Any:
        if not (isinstance(argument, list) and len(argument) == 1):
            return self._malformed(expression, "Not takes [condition]")
        value = self._truth(argument[0], expression)
        return Unresolved(render(expression), value.reason) if isinstance(value, Unresolved) else not value


def _resource_type(resource: Any) -> str:
    kind = resource.get("Type") if isinstance(resource, dict) else None
    return kind if isinstance(kind, str) else "of no type"
