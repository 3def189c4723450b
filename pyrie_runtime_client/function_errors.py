"""Error bodies, stack traces and error log lines, shaped as awslambdaric shapes them. Pure: no I/O.

An error body is ``{"errorMessage", "errorType", "requestId", "stackTrace"}``; ``stackTrace`` is a list of
``traceback.format_list``-style strings (one per frame, no caret lines) with this package's frames left out.
"""

import importlib
import os
import traceback
from collections.abc import Sequence
from types import TracebackType
from typing import Any

# Error types of the runtime itself (the names awslambdaric uses).
MARSHAL_ERROR = "Runtime.MarshalError"
UNMARSHAL_ERROR = "Runtime.UnmarshalError"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

# The X-Ray exception type awslambdaric reports for its own (validation) faults.
VALIDATION_FAULT_TYPE = "LambdaValidationError"

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_IMPORTLIB_FILES = (importlib.__file__,)

ErrorBody = dict[str, Any]
Frame = tuple[str, int | None, str, str | None]
"""One stack frame: file name, line number, function name, source line."""


class FaultError(Exception):
    """A failure of the runtime's own contract (bad handler name, undecodable event…), with its Lambda error type."""

    def __init__(self, error_type: str, message: str, stack_trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack_trace = stack_trace


def make_error(
    message: str | None, error_type: str | None, stack_trace: list[str] | None, request_id: str | None = None
) -> ErrorBody:
    """An error body; missing parts become ``""`` and ``[]`` as in awslambdaric."""
    return {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id if request_id is not None else "",
        "stackTrace": stack_trace or [],
    }


def is_runtime_frame(filename: str) -> bool:
    """Whether a frame belongs to this package (never shown to the user)."""
    return filename.startswith(_PACKAGE_DIR)


def _is_import_machinery(filename: str) -> bool:
    return filename.startswith("<frozen importlib") or filename in _IMPORTLIB_FILES


def user_frames(tb: TracebackType | None) -> list[Frame]:
    """The frames of ``tb`` that belong to the user: without this package's frames, nor the import machinery
    that leads from this package into the user's module."""
    frames: list[Frame] = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)]
    start = 0
    while start < len(frames) and (is_runtime_frame(frames[start][0]) or _is_import_machinery(frames[start][0])):
        start += 1
    return [frame for frame in frames[start:] if not is_runtime_frame(frame[0])]


def format_frames(frames: Sequence[Frame]) -> list[str]:
    """``traceback.format_list`` of plain 4-tuples: ``'  File "f", line n, in name\\n    source\\n'``."""
    lines = []
    for filename, lineno, name, line in frames:
        text = f'  File "{filename}", line {lineno}, in {name}\n'
        if line and line.strip():
            text += f"    {line.strip()}\n"
        lines.append(text)
    return lines


def error_from_exception(exc: BaseException, request_id: str | None = None) -> tuple[ErrorBody, dict[str, Any]]:
    """The error body of an exception raised by user code, and its X-Ray error cause."""
    frames = user_frames(exc.__traceback__)
    error_type = type(exc).__name__
    message = str(exc)
    body = make_error(message, error_type, format_frames(frames), request_id)
    return body, xray_cause(error_type, message, frames)


def error_from_fault(fault: FaultError, request_id: str | None = None) -> tuple[ErrorBody, dict[str, Any]]:
    """The error body of a runtime fault, and its X-Ray error cause."""
    body = make_error(fault.message, fault.error_type, fault.stack_trace, request_id)
    return body, xray_cause(VALIDATION_FAULT_TYPE, fault.message, [])


def xray_cause(
    error_type: str, message: str, frames: Sequence[Frame], working_directory: str | None = None
) -> dict[str, Any]:
    """The ``Lambda-Runtime-Function-XRay-Error-Cause`` document (before JSON encoding)."""
    return {
        "working_directory": working_directory if working_directory is not None else os.getcwd(),
        "exceptions": [
            {
                "message": message,
                "type": error_type,
                "stack": [{"label": name, "path": filename, "line": lineno} for filename, lineno, name, _ in frames],
            }
        ],
        "paths": list(dict.fromkeys(filename for filename, _, _, _ in frames)),
    }


_NO_BREAK_SPACE = "\u00a0"


def _indent_with_no_break_spaces(line: str) -> str:
    stripped = line.lstrip(" ")
    return _NO_BREAK_SPACE * (len(line) - len(stripped)) + stripped


def format_error_log(body: ErrorBody) -> str:
    """The text log line of an error: ``[ERROR] Type: message`` then the traceback, lines joined by ``\\r``
    (so that the whole error is one log event) and leading spaces made no-break spaces, as awslambdaric does."""
    error_type = body.get("errorType")
    message = body.get("errorMessage")
    description = "[ERROR]"
    if error_type:
        description += " " + error_type
    if message:
        if error_type:
            description += ":"
        description += " " + message
    lines = [description]
    stack_trace = body.get("stackTrace")
    if stack_trace is not None:
        lines.append("Traceback (most recent call last):")
        for element in stack_trace:
            if element == "":
                lines.append("")
            else:
                lines.extend(_indent_with_no_break_spaces(line) for line in element.splitlines())
    return "\r".join(lines) + "\n"
