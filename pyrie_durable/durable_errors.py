"""The service errors of the durable APIs, as Lambda's rest-json shapes.

Each error is an HTTP status, an ``X-Amzn-ErrorType`` header naming it, and a JSON body ``{"Type": ..., <message
member>: ...}``. The message member is spelled as botocore's model spells it for that shape ("Message" for some,
"message" for others); the tests check this table against the model. The table stays here: these are the durable
service's own errors, and ``pyrie_core``'s catalogue holds those of the Invoke API.
"""

from __future__ import annotations

import enum
from typing import Final, NamedTuple

__all__ = ["DurableServiceError", "ErrorCode"]


class ErrorCode(enum.StrEnum):
    INVALID_PARAMETER = "InvalidParameterValueException"
    NOT_FOUND = "ResourceNotFoundException"
    CONFLICT = "ResourceConflictException"
    ALREADY_STARTED = "DurableExecutionAlreadyStartedException"
    CALLBACK_TIMEOUT = "CallbackTimeoutException"
    TOO_MANY_REQUESTS = "TooManyRequestsException"
    SERVICE = "ServiceException"
    UNKNOWN_OPERATION = "UnknownOperationException"


class _Shape(NamedTuple):
    status: int
    fault: str  # the body's "Type": "User" for the caller's fault, "Service" for the service's
    message_member: str


_SHAPES: Final = {
    ErrorCode.INVALID_PARAMETER: _Shape(400, "User", "message"),
    ErrorCode.NOT_FOUND: _Shape(404, "User", "Message"),
    ErrorCode.CONFLICT: _Shape(409, "User", "message"),
    ErrorCode.ALREADY_STARTED: _Shape(409, "User", "Message"),
    ErrorCode.CALLBACK_TIMEOUT: _Shape(400, "User", "Message"),
    ErrorCode.TOO_MANY_REQUESTS: _Shape(429, "User", "message"),
    ErrorCode.SERVICE: _Shape(500, "Service", "Message"),
    # Not in the model: what AWS's rest-json front door answers for a path it has no operation for.
    ErrorCode.UNKNOWN_OPERATION: _Shape(404, "User", "message"),
}


class DurableServiceError(Exception):
    """A refused request: ``status``, ``code`` and ``body()`` are what the caller receives."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return _SHAPES[self.code].status

    def body(self) -> dict[str, str]:
        shape = _SHAPES[self.code]
        return {"Type": shape.fault, shape.message_member: self.message}

    @classmethod
    def message_member(cls, code: ErrorCode) -> str:
        return _SHAPES[code].message_member
