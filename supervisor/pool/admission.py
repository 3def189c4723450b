"""What an Invoke must be before any environment is looked at: its function, its invocation and log types.

Pure: the request and the function in, the refusal out (the status, error code and message the caller gets), or
``None`` when the request may go on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pyrie_core.function_names import InvalidFunctionName, function_arn, parse_function_ref, resolves_to
from pyrie_core.lambda_errors import ServiceError
from pyrie_core.pipe.messages import Invoke
from supervisor.config import FunctionConfig

__all__ = ["INVOCATION_TYPES", "LOG_TYPES", "Refusal", "refusal"]

INVOCATION_TYPES: Final = ("RequestResponse", "Event", "DryRun")
LOG_TYPES: Final = ("None", "Tail")


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    code: str
    message: str


def refusal(request: Invoke, function: FunctionConfig) -> Refusal | None:
    """Why Lambda refuses ``request`` up front, or ``None``."""
    try:
        ref = parse_function_ref(request.function, request.qualifier)
    except InvalidFunctionName as exc:
        return Refusal(400, exc.code, str(exc))
    if not resolves_to(ref, function.name, function.version):
        qualified = f"{function_arn(ref.name)}:{ref.qualifier or '$LATEST'}"
        return Refusal(404, ServiceError.NOT_FOUND, f"Function not found: {qualified}")
    for value, allowed, member in (
        (request.invocation_type, INVOCATION_TYPES, "invocationType"),
        (request.log_type, LOG_TYPES, "logType"),
    ):
        if value not in allowed:
            return Refusal(
                400,
                ServiceError.INVALID_PARAMETER,
                f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(allowed)}]",
            )
    return None
