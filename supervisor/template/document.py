"""A template's text as plain Python data: JSON, or YAML with CloudFormation's short-form tags.

Every short form becomes its long form, as CloudFormation reads it: ``!Ref X`` is ``{"Ref": "X"}``, ``!Condition C``
is ``{"Condition": "C"}``, ``!GetAtt A.B.C`` is ``{"Fn::GetAtt": ["A", "B.C"]}``, and any other ``!Name value`` is
``{"Fn::Name": value}`` (``!Sub``, ``!If``, ``!Cidr``, ``!Transform``...). Dates stay strings
(``AWSTemplateFormatVersion: 2010-09-09``) and keys are the text written (an environment variable named ``ON`` keeps
its name); values get PyYAML's YAML 1.1 types (``on`` is true), as SAM CLI and the AWS CLI read templates. A
template that is neither is a ``TemplateError`` naming the file, line and column.
"""

from __future__ import annotations

import json
from typing import Any

from supervisor.template.model import TemplateError

__all__ = ["load_document"]


def load_document(text: str, source: str) -> dict[str, Any]:
    """The template in ``text`` (``source`` names it in errors): a mapping, or ``TemplateError``."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TemplateError(f"{source}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    else:
        document = _load_yaml(text, source)
    if not isinstance(document, dict):
        raise TemplateError(f"{source}: not a template: expected a mapping with a Resources section")
    return document


def _load_yaml(text: str, source: str) -> Any:
    import yaml  # noqa: PLC0415 - 40 ms: only templates in YAML pay for it

    try:
        return yaml.load(text, Loader=_loader_class())  # a SafeLoader, with constructors for the tags
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
        problem = " ".join(part for part in (exc.context, exc.problem) if part)
        raise TemplateError(f"{where}: not valid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise TemplateError(f"{source}: not valid YAML: {exc}") from None


_LOADER: list[type] = []


def _loader_class() -> type:
    """A SafeLoader (libyaml's when PyYAML has it) that reads CloudFormation's tags; built once."""
    if _LOADER:
        return _LOADER[0]
    import yaml  # noqa: PLC0415

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class TemplateLoader(base):  # type: ignore[valid-type, misc]
        pass

    def mapping(loader: Any, node: Any) -> dict[Any, Any]:
        """A mapping whose keys are the text written (``ON:`` is the key "ON", not YAML 1.1's True)."""
        loader.flatten_mapping(node)  # merge keys (<<)
        return {
            key.value if isinstance(key, yaml.ScalarNode) else loader.construct_object(key, deep=True): (
                loader.construct_object(value, deep=True)
            )
            for key, value in node.value
        }

    def short_form(loader: Any, suffix: str, node: Any) -> dict[str, Any]:
        name = suffix
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = mapping(loader, node)
        key = name if name in ("Ref", "Condition") else f"Fn::{name}"
        return {key: value}

    def keep_string(loader: Any, node: Any) -> str:
        return str(loader.construct_scalar(node))

    TemplateLoader.add_multi_constructor("!", short_form)
    TemplateLoader.add_constructor("tag:yaml.org,2002:map", mapping)
    TemplateLoader.add_constructor("tag:yaml.org,2002:timestamp", keep_string)
    _LOADER.append(TemplateLoader)
    return TemplateLoader
