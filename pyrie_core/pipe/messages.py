"""The messages carried in frames between the invoke front end and the supervisor.

Front end -> supervisor: ``INVOKE`` (one per invoke), ``CANCEL`` (the client went away), ``STATUS_REQUEST`` (a
health check), ``API_REQUEST`` (a call of another operation of Lambda's API the supervisor serves: the durable
execution APIs), and ``HELLO`` (the shared token, first on every TCP connection of a split deployment).
Supervisor -> front end: ``HEAD`` (the response starts), ``CHUNK`` (body bytes), ``END`` (exactly one, last),
``STATUS`` (the answer to a ``STATUS_REQUEST``) and ``API_RESPONSE`` (the answer to an ``API_REQUEST``, whole).

An invoke that fails before any byte of its response exists (throttled, unknown function, function error) is
answered by ``END`` alone. ``HELLO`` has no answer: a supervisor that does not accept the token closes the
connection. Every message is a msgpack map whose key ``t`` is its ``Kind``.

The classes below are the schema, written once: msgspec encodes each as that map (every field, under its own name)
and ``decode`` turns a frame's body back into one, checking every field's type on the way (a str where bytes belong,
a bool where an int belongs, a missing field or one too many, an unknown ``t``), so the I/O code never looks into raw
maps and a peer's mistake is a ``ProtocolError`` at the frame that caused it.
"""

from __future__ import annotations

import enum
import struct
from typing import Any, Final

import msgspec

from pyrie_core.pipe.frames import LARGE_FRAME, PREFIX, put_prefix

__all__ = [
    "CHUNK_SIZE",
    "ApiRequest",
    "ApiResponse",
    "Cancel",
    "Chunk",
    "End",
    "EnvironmentStatus",
    "Head",
    "Hello",
    "Invoke",
    "Kind",
    "Message",
    "Outcome",
    "ProtocolError",
    "Status",
    "StatusRequest",
    "decode",
    "encode",
    "frame_parts",
    "frames",
]

# Body bytes travel in chunks of at most this size, so a frame never holds more than this much of a response.
CHUNK_SIZE: Final = 1024 * 1024


class ProtocolError(Exception):
    """A frame that is not a well-formed message of the supervisor protocol."""


class Kind(enum.IntEnum):
    INVOKE = 1
    CANCEL = 2
    HEAD = 3
    CHUNK = 4
    END = 5
    HELLO = 6
    STATUS_REQUEST = 7
    STATUS = 8
    API_REQUEST = 9
    API_RESPONSE = 10


class Outcome(enum.StrEnum):
    OK = "ok"
    FUNCTION_ERROR = "function_error"  # 200 with X-Amz-Function-Error: Unhandled and Lambda's JSON error body
    SERVICE_ERROR = "service_error"  # a rest-json error of the Lambda service: status + X-Amzn-ErrorType


class _Message(msgspec.Struct, frozen=True, tag_field="t", forbid_unknown_fields=True):
    """A message: a msgpack map of its fields, and ``t``, its ``Kind``."""


class Invoke(_Message, frozen=True, tag=Kind.INVOKE.value):
    function: str  # as the caller named it: "function", the name, or an ARN (qualifier included or not)
    payload: bytes
    qualifier: str | None = None
    invocation_type: str = "RequestResponse"  # RequestResponse | Event | DryRun
    log_type: str = "None"  # None | Tail
    client_context: str | None = None  # decoded JSON text
    trace_id: str | None = None  # the caller's X-Amzn-Trace-Id
    tenant_id: str | None = None
    stream: bool = False  # the caller asked for InvokeWithResponseStream
    durable_execution_name: str | None = None  # the caller's X-Amz-Durable-Execution-Name (durable functions)


class Cancel(_Message, frozen=True, tag=Kind.CANCEL.value):
    reason: str = "client disconnected"


class Head(_Message, frozen=True, tag=Kind.HEAD.value):
    request_id: str
    content_type: str
    streaming: bool  # the runtime answered in streaming mode
    executed_version: str
    length: int | None = None  # total body length, known for buffered responses
    headers: dict[str, str] = {}  # extra response headers (X-Amz-Durable-Execution-Arn)


class Chunk(_Message, frozen=True, tag=Kind.CHUNK.value):
    data: bytes


class End(_Message, frozen=True, tag=Kind.END.value):
    outcome: Outcome
    request_id: str
    executed_version: str = "$LATEST"
    error_type: str | None = None  # Lambda's errorType, or the service error code
    body: bytes = b""  # the error body (function and service errors)
    status: int | None = None  # the HTTP status of a service error
    # extra response headers: a service error's Retry-After, a durable execution's X-Amz-Durable-Execution-Arn
    headers: dict[str, str] = {}
    log_result: str | None = None  # base64 of the log tail, when asked for


class Hello(_Message, frozen=True, tag=Kind.HELLO.value):
    token: str  # the shared secret of a split deployment (PYRIE_SUPERVISOR_TOKEN)


class StatusRequest(_Message, frozen=True, tag=Kind.STATUS_REQUEST.value):
    """A health check: the supervisor answers with ``Status``; no environment is started or used."""


class EnvironmentStatus(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One environment in a ``Status``: a map of its own, inside the list ``environments``."""

    name: str
    state: str  # the environment's lifecycle state: starting, idle, restoring, invoking, resetting, gone
    runtime_state: str  # the runtime's state in the Runtime API: Started, Ready, Running ...
    in_flight: int = 0  # invokes delivered to its runtime and not answered yet
    tenant: str | None = None  # the tenant it serves (tenant isolation), if any


class Status(_Message, frozen=True, tag=Kind.STATUS.value):
    function: str
    version: str
    max_concurrency: int
    environments: tuple[EnvironmentStatus, ...] = ()


class ApiRequest(_Message, frozen=True, tag=Kind.API_REQUEST.value):
    """An HTTP request for an operation the supervisor answers whole (the durable execution APIs), as received."""

    method: str
    path: str  # still percent-encoded, without the query
    query: str = ""  # without the "?"
    headers: dict[str, str] = {}
    body: bytes = b""


class ApiResponse(_Message, frozen=True, tag=Kind.API_RESPONSE.value):
    """The whole answer to an ``ApiRequest``: Lambda's rest-json status, headers and body."""

    status: int
    headers: dict[str, str] = {}
    body: bytes = b""


Message = Invoke | Cancel | Head | Chunk | End | Hello | StatusRequest | Status | ApiRequest | ApiResponse

_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(Message)


def encode(message: Message) -> bytes:
    """The msgpack map of ``message``, as bytes."""
    return _encoder.encode(message)


def frames(*messages: Message) -> bytearray:
    """The frames of ``messages``, one after the other, each written once, straight into the one buffer they are
    sent from. ``FrameError`` for a message over the largest frame."""
    buffer = bytearray()
    for message in messages:
        start = len(buffer)
        buffer += _NO_LENGTH
        _encoder.encode_into(message, buffer, -1)
        if start:
            frame = memoryview(buffer)[start:]
            try:
                put_prefix(frame)
            finally:
                frame.release()
        else:
            put_prefix(buffer)
    return buffer


_NO_LENGTH: Final = bytes(PREFIX)


def frame_parts(*messages: Message) -> list[bytes | bytearray | memoryview]:
    """The bytes of ``frames(*messages)`` as the pieces to send in one ``sendmsg``: the data of a large ``Chunk`` is
    one of them as it is, not copied into a frame (the map around it is written by hand, as msgspec writes it)."""
    parts: list[bytes | bytearray | memoryview] = []
    start = 0
    for index, message in enumerate(messages):
        if type(message) is not Chunk or len(message.data) < LARGE_FRAME:
            continue
        if index > start:
            parts.append(frames(*messages[start:index]))
        size = len(message.data)
        head = bytearray(_NO_LENGTH)
        head += _CHUNK_MAP
        head += _BIN32.pack(0xC6, size) if size > 0xFFFF else _BIN16.pack(0xC5, size)
        put_prefix(head, size)
        parts += (head, message.data)
        start = index + 1
    if start < len(messages):
        parts.append(frames(*messages[start:]))
    return parts


_CHUNK_MAP: Final = b"\x82\xa1t" + bytes((Kind.CHUNK.value,)) + b"\xa4data"  # {"t": 4, "data": ...
_BIN16: Final = struct.Struct(">BH")
_BIN32: Final = struct.Struct(">BI")


def decode(body: Any) -> Message:
    """The message held in a frame's body (bytes, or a view of them); ``ProtocolError`` if it is not one, saying
    which message and which field."""
    try:
        return _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise ProtocolError(_what_is_wrong(body, exc)) from None
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ProtocolError(f"undecodable frame body: {exc}") from None


def _what_is_wrong(body: Any, exc: msgspec.ValidationError) -> str:
    try:
        shape = msgspec.msgpack.decode(body)
    except (msgspec.DecodeError, RecursionError) as undecodable:
        return f"undecodable frame body: {undecodable}"
    if not isinstance(shape, dict):
        return f"a frame body is a {type(shape).__name__}, not a map"
    kind = shape.get("t")
    cls = _CLASS_OF.get(kind) if type(kind) is int else None
    if cls is None:
        return f"unknown message type {kind!r}"
    return f"malformed {cls.__name__} message: {exc}"


_CLASS_OF: Final[dict[int, type]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in (Invoke, Cancel, Head, Chunk, End, Hello, StatusRequest, Status, ApiRequest, ApiResponse)
}
