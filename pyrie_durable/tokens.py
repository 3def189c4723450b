"""Opaque strings the service hands out and takes back: checkpoint tokens, callback ids, pagination markers.

Checkpoint tokens and callback ids follow the model's pattern ``[A-Za-z0-9+/]+={0,2}`` (standard base64): they are
the base64 of a small JSON object naming what they stand for, so a callback id still finds its execution after a
restart without any index. Nothing in them is secret; pyrie is a local emulator. Markers are short ASCII strings
that bind a page position to the listing it came from.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import NamedTuple

__all__ = [
    "CallbackRef",
    "CheckpointRef",
    "decode_callback_id",
    "decode_checkpoint_token",
    "decode_marker",
    "encode_callback_id",
    "encode_checkpoint_token",
    "encode_marker",
]


class CheckpointRef(NamedTuple):
    arn: str
    invocation_id: str
    sequence: int


class CallbackRef(NamedTuple):
    arn: str
    operation_id: str


def _encode(value: dict[str, object]) -> str:
    return base64.b64encode(json.dumps(value, separators=(",", ":")).encode()).decode("ascii")


def _decode(token: str) -> dict[str, object] | None:
    try:
        value = json.loads(base64.b64decode(token.encode("ascii"), validate=True))
    except (binascii.Error, UnicodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def encode_checkpoint_token(ref: CheckpointRef) -> str:
    return _encode({"a": ref.arn, "i": ref.invocation_id, "s": ref.sequence})


def decode_checkpoint_token(token: str) -> CheckpointRef | None:
    value = _decode(token)
    if value is None:
        return None
    arn, invocation, sequence = value.get("a"), value.get("i"), value.get("s")
    if not isinstance(arn, str) or not isinstance(invocation, str) or type(sequence) is not int:
        return None
    return CheckpointRef(arn, invocation, sequence)


def encode_callback_id(ref: CallbackRef) -> str:
    return _encode({"a": ref.arn, "o": ref.operation_id})


def decode_callback_id(callback_id: str) -> CallbackRef | None:
    value = _decode(callback_id)
    if value is None:
        return None
    arn, operation = value.get("a"), value.get("o")
    if not isinstance(arn, str) or not isinstance(operation, str):
        return None
    return CallbackRef(arn, operation)


def encode_marker(scope: str, position: int) -> str:
    """A page position (``position`` items already returned) within the listing named by ``scope``."""
    return f"{scope}:{position}"


def decode_marker(marker: str, scope: str) -> int | None:
    """The position a marker carries, or None if it is malformed or belongs to another listing."""
    head, _, tail = marker.rpartition(":")
    if head != scope or not (tail.isascii() and tail.isdigit()):  # "²".isdigit(), yet int("²") fails
        return None
    return int(tail)
