"""Checks JSON against botocore's Lambda model, strictly: the shapes the real SDKs are generated from.

``check_output(operation, body)`` walks a response body through the operation's output shape and fails on a member
the shape does not have, a missing required member, a value of the wrong type, an enum value not in the set, a
string or number out of its bounds. ``parse_output`` gives what boto3 would return for it, ``serialize_input`` the
request botocore sends for some parameters.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.parsers import RestJSONParser
from botocore.serialize import RestJSONSerializer


@cache
def lambda_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("lambda")


def operation(name: str) -> OperationModel:
    return lambda_model().operation_model(name)


def _check(value: Any, shape: Shape, path: str, *, body: bool) -> None:
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(value, dict), f"{path}: expected an object, got {value!r}"
        members = shape.members  # type: ignore[attr-defined]
        located = {name for name, member in members.items() if member.serialization.get("location")}
        for key, item in value.items():
            assert key in members, f"{path}: {key!r} is not a member of {shape.name}"
            assert key not in located, f"{path}: {key!r} belongs in the {members[key].serialization['location']}"
            _check(item, members[key], f"{path}.{key}", body=body)
        for required in shape.required_members:  # type: ignore[attr-defined]
            if required not in located:
                assert required in value, f"{path}: required {shape.name}.{required} is missing"
    elif kind == "list":
        assert isinstance(value, list), f"{path}: expected a list, got {value!r}"
        for index, item in enumerate(value):
            _check(item, shape.member, f"{path}[{index}]", body=body)  # type: ignore[attr-defined]
    elif kind == "string":
        assert isinstance(value, str), f"{path}: expected a string, got {value!r}"
        if shape.enum:
            assert value in shape.enum, f"{path}: {value!r} not in {shape.enum}"
        metadata = shape.metadata
        if "min" in metadata:
            assert len(value) >= metadata["min"], f"{path}: shorter than {metadata['min']}"
        if "max" in metadata:
            assert len(value) <= metadata["max"], f"{path}: longer than {metadata['max']}"
        if "pattern" in metadata:
            assert re.fullmatch(metadata["pattern"], value), f"{path}: {value!r} does not match {metadata['pattern']}"
    elif kind in ("integer", "long"):
        assert isinstance(value, int) and not isinstance(value, bool), f"{path}: expected an integer, got {value!r}"
        if "min" in shape.metadata:
            assert value >= shape.metadata["min"], f"{path}: below {shape.metadata['min']}"
        if "max" in shape.metadata:
            assert value <= shape.metadata["max"], f"{path}: above {shape.metadata['max']}"
    elif kind == "boolean":
        assert isinstance(value, bool), f"{path}: expected a boolean, got {value!r}"
    elif kind == "timestamp":
        # rest-json bodies carry epoch seconds (botocore and the JS SDK both parse a number there).
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{path}: expected epoch seconds"
    elif kind == "blob":
        assert isinstance(value, str), f"{path}: expected base64 text"
    else:
        raise AssertionError(f"{path}: unexpected shape type {kind}")


def check_output(operation_name: str, body: bytes | dict[str, Any]) -> None:
    value = json.loads(body) if isinstance(body, bytes) else body
    _check(value, operation(operation_name).output_shape, operation_name, body=True)


def check_shape(shape_name: str, value: Any) -> None:
    _check(value, lambda_model().shape_for(shape_name), shape_name, body=True)


def parse_output(operation_name: str, status: int, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    model = operation(operation_name)
    parsed: dict[str, Any] = RestJSONParser().parse(
        {"status_code": status, "headers": headers, "body": body}, model.output_shape
    )
    return parsed


def parse_error(status: int, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = RestJSONParser().parse({"status_code": status, "headers": headers, "body": body}, None)
    return parsed


def serialize_input(operation_name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The request botocore builds: ``url_path``, ``query_string``, ``body`` (bytes), ``method``."""
    request: dict[str, Any] = RestJSONSerializer().serialize_to_request(params, operation(operation_name))
    return request
