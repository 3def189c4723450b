"""Which function an Invoke names: ``function`` (the Go emulator's fixed name), the name, or an ARN.

Lambda accepts ``my-function``, ``my-function:v1``, ``123456789012:function:my-function`` and
``arn:aws:lambda:us-west-2:123456789012:function:my-function[:qualifier]``; the qualifier may also come as
``?Qualifier=``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from supervisor.config import FunctionConfig

__all__ = ["FunctionRef", "InvalidFunctionName", "parse_function_ref", "resolves_to"]

GO_EMULATOR_NAME: Final = "function"
_NAME: Final = re.compile(r"^[a-zA-Z0-9_.-]{1,140}$")
_ARN: Final = re.compile(
    r"^(?:arn:(?:aws[a-zA-Z-]*)?:lambda:[a-z0-9-]+:\d{12}:function:|\d{12}:function:)?"
    r"(?P<name>[a-zA-Z0-9_.-]+)(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9_-]+))?$"
)


class InvalidFunctionName(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class FunctionRef:
    name: str
    qualifier: str | None


def parse_function_ref(text: str, qualifier: str | None) -> FunctionRef:
    """The function and qualifier named by a path segment and an optional ``Qualifier`` parameter."""
    match = _ARN.match(text)
    if match is None or not _NAME.match(match["name"]):
        raise InvalidFunctionName(
            f"1 validation error detected: Value '{text}' at 'functionName' failed to satisfy constraint"
        )
    derived = match["qualifier"]
    if derived and qualifier and derived != qualifier:
        raise InvalidFunctionName(
            "The derived qualifier from the function name does not match the specified qualifier."
        )
    return FunctionRef(match["name"], derived or qualifier or None)


def resolves_to(ref: FunctionRef, function: FunctionConfig) -> bool:
    if ref.name not in (GO_EMULATOR_NAME, function.name):
        return False
    return ref.qualifier in (None, "$LATEST", function.version)
