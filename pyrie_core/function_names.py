"""Which function an Invoke names: ``function`` (the Go emulator's fixed name), the name, or an ARN.

Lambda accepts ``my-function``, ``my-function:v1``, ``123456789012:function:my-function`` and
``arn:aws:lambda:us-west-2:123456789012:function:my-function[:qualifier]``; the qualifier may also come as
``?Qualifier=``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

__all__ = [
    "ACCOUNT_ID",
    "GO_EMULATOR_NAME",
    "REGION",
    "FunctionRef",
    "InvalidFunctionName",
    "function_arn",
    "parse_function_ref",
    "resolves_to",
]

# The Go emulator hard-codes both into every ARN it builds.
ACCOUNT_ID: Final = "012345678912"
REGION: Final = "us-east-1"

GO_EMULATOR_NAME: Final = "function"
_NAME: Final = re.compile(r"^[a-zA-Z0-9_.-]{1,64}$")  # a function's own name: at most 64 characters
_QUALIFIER: Final = re.compile(r"^[a-zA-Z0-9$_-]{1,128}$")
MAX_REFERENCE: Final = 140  # a name, partial ARN or ARN (Lambda's FunctionName length constraint)
_ARN: Final = re.compile(
    r"^(?:arn:(?:aws[a-zA-Z-]*)?:lambda:[a-z0-9-]+:\d{12}:function:|\d{12}:function:)?"
    r"(?P<name>[a-zA-Z0-9_.-]+)(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9_-]+))?$"
)


class InvalidFunctionName(ValueError):
    """A name or qualifier Lambda refuses before looking anything up: 400 with ``code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class FunctionRef:
    name: str
    qualifier: str | None


@functools.lru_cache(maxsize=256)  # callers name the same few functions over and over
def parse_function_ref(text: str, qualifier: str | None) -> FunctionRef:
    """The function and qualifier named by a path segment and an optional ``Qualifier`` parameter."""
    qualifier = qualifier or None  # an empty ?Qualifier= names no qualifier
    match = _ARN.match(text) if len(text) <= MAX_REFERENCE else None
    if match is None or not _NAME.match(match["name"]):
        raise InvalidFunctionName("ValidationException", _constraint_message(text, "functionName", _ARN.pattern))
    if qualifier is not None and not _QUALIFIER.match(qualifier):
        raise InvalidFunctionName(
            "ValidationException", _constraint_message(qualifier, "qualifier", _QUALIFIER.pattern)
        )
    derived = match["qualifier"]
    if derived and qualifier and derived != qualifier:
        raise InvalidFunctionName(
            "InvalidParameterValueException",
            "The derived qualifier from the function name does not match the specified qualifier.",
        )
    return FunctionRef(match["name"], derived or qualifier or None)


def _constraint_message(value: str, member: str, pattern: str) -> str:
    return (
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {pattern}"
    )


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"


def resolves_to(ref: FunctionRef, name: str, version: str) -> bool:
    """Whether ``ref`` names the function ``name`` at ``version`` (or ``$LATEST``, or no qualifier)."""
    if ref.name not in (GO_EMULATOR_NAME, name):
        return False
    return ref.qualifier in (None, "$LATEST", version)
