"""Registering with the Extensions API: the register request's body, the events an extension may ask for, and the
refusals (rie-behaviour.md §7), without I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["EXTENSION_LIMIT", "INVOKE", "SHUTDOWN", "ExtensionError", "ExtensionEvent", "parse_register_body"]

EXTENSION_LIMIT: Final = 10  # external and internal together (core.MaxAgentsAllowed)
INVOKE: Final = "INVOKE"
SHUTDOWN: Final = "SHUTDOWN"


@dataclass(frozen=True, slots=True)
class ExtensionEvent:
    body: bytes
    event_id: str | None  # Lambda-Extension-Event-Identifier, sent with INVOKE only


class ExtensionError(Exception):
    """A refused Extensions API call: the status, ``errorType`` and ``errorMessage`` the caller gets."""

    def __init__(self, error_type: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.status = status


def parse_register_body(body: bytes) -> list[str]:
    """The events a register request asks for; ``ExtensionError`` (InvalidRequestFormat) with Go's wording."""
    if not body.strip():
        raise ExtensionError("InvalidRequestFormat", "unexpected end of JSON input")
    try:
        parsed = json.loads(body)
    except json.JSONDecodeError as exc:
        if exc.pos < len(exc.doc):
            message = f"invalid character {exc.doc[exc.pos]!r} looking for beginning of value"
        else:
            message = "unexpected end of JSON input"
        raise ExtensionError("InvalidRequestFormat", message) from None
    except (ValueError, RecursionError) as exc:
        raise ExtensionError("InvalidRequestFormat", str(exc)) from None
    if not isinstance(parsed, dict):
        raise ExtensionError(
            "InvalidRequestFormat", f"json: cannot unmarshal {_go_type(parsed)} into Go value of type struct"
        )
    if parsed.get("configurationKeys"):
        raise ExtensionError(
            "InvalidRequestFormat", "configurationKeys are deprecated; use environment variables instead"
        )
    events = parsed.get("events") or []
    if not isinstance(events, list):
        raise ExtensionError(
            "InvalidRequestFormat",
            f"json: cannot unmarshal {_go_type(events)} into Go struct field RegisterRequest.events "
            "of type []core.Event",
        )
    for item in events:
        if not isinstance(item, str):
            raise ExtensionError(
                "InvalidRequestFormat",
                f"json: cannot unmarshal {_go_type(item)} into Go struct field RegisterRequest.events "
                "of type core.Event",
            )
    return events


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    return "object"
