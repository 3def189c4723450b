"""The closed vocabulary of errors pyrie reports, and the exact bodies Lambda gives them.

Function errors (the invoke ran and failed) are answered 200 with ``X-Amz-Function-Error: Unhandled`` and a JSON
body; service errors (the invoke did not run) are Lambda's rest-json errors: a status, ``X-Amzn-ErrorType`` and
``{"Type": "User", "message": ...}`` (lambda-protocols.md §a).
"""

from __future__ import annotations

import enum
import json
import re
import signal
from typing import Final

__all__ = [
    "FunctionError",
    "ServiceError",
    "error_type_of",
    "exit_description",
    "function_error_body",
    "normalise_error_type",
    "response_too_large_body",
    "service_error_body",
]


class FunctionError(enum.StrEnum):
    TIMEOUT = "Sandbox.Timedout"
    EXIT = "Runtime.ExitError"
    OUT_OF_MEMORY = "Runtime.OutOfMemory"
    INVALID_ENTRYPOINT = "Runtime.InvalidEntrypoint"
    RESPONSE_TOO_LARGE = "Function.ResponseSizeTooLarge"
    INVALID_RESPONSE_MODE = "Runtime.InvalidResponseModeHeader"
    TRUNCATED_RESPONSE = "Runtime.TruncatedResponse"
    UNKNOWN = "Runtime.Unknown"


class ServiceError(enum.StrEnum):
    NOT_FOUND = "ResourceNotFoundException"
    TOO_MANY_REQUESTS = "TooManyRequestsException"
    REQUEST_TOO_LARGE = "RequestEntityTooLargeException"
    INVALID_REQUEST_CONTENT = "InvalidRequestContentException"
    INVALID_PARAMETER = "InvalidParameterValueException"
    SERVICE = "ServiceException"


# The Go emulator keeps a runtime's error type only when it looks like one of Lambda's (rie-behaviour.md §6.2).
_ERROR_TYPE_SHAPE: Final = re.compile(r"(Runtime|Function)\.[A-Z][a-zA-Z]+")


def function_error_body(error_type: str, message: str) -> bytes:
    """A platform-detected function error, e.g. ``{"errorType":"Sandbox.Timedout","errorMessage":"..."}``."""
    return json.dumps({"errorType": error_type, "errorMessage": message}, separators=(",", ":")).encode()


def response_too_large_body(limit: int) -> bytes:
    """Lambda's body for an oversize response (recorded against AWS: message first, no request id)."""
    message = f"Response payload size exceeded maximum allowed payload size ({limit} bytes)."
    return json.dumps(
        {"errorMessage": message, "errorType": FunctionError.RESPONSE_TOO_LARGE.value}, separators=(",", ":")
    ).encode()


def service_error_body(code: str, message: str, **extra: str) -> bytes:
    # ResourceNotFoundException and ServiceException spell the member "Message"; the others "message". A failure of
    # the service itself is the "Service"'s, every other refusal the "User"'s.
    key = "Message" if code in (ServiceError.NOT_FOUND, ServiceError.SERVICE) else "message"
    blame = "Service" if code == ServiceError.SERVICE else "User"
    return json.dumps({"Type": blame, key: message, **extra}, separators=(",", ":")).encode()


def normalise_error_type(value: str | None) -> str | None:
    """``Lambda-Runtime-Function-Error-Type`` as the Go emulator keeps it."""
    if not value:
        return None
    if _ERROR_TYPE_SHAPE.search(value):
        return value
    return "Function.Unknown" if value.startswith("Function.") else "Runtime.Unknown"


def error_type_of(body: bytes) -> str | None:
    """The ``errorType`` of a JSON error body, if it has one."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return None
    value = parsed.get("errorType") if isinstance(parsed, dict) else None
    return value if isinstance(value, str) else None


def exit_description(returncode: int) -> str:
    """How Lambda words a runtime's exit: "exit status 1", "signal: killed"."""
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        name = signal.strsignal(-returncode) or f"signal {-returncode}"
    except ValueError:
        name = f"signal {-returncode}"
    # Go lowercases the first letter ("killed", "segmentation fault") but keeps acronyms ("CPU time limit
    # exceeded", "I/O possible").
    if len(name) > 1 and not (name[1].isupper() or name[1] == "/"):
        name = name[0].lower() + name[1:]
    return f"signal: {name}"
