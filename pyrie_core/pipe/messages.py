"""The messages carried in frames between the invoke front end and the supervisor.

Front end -> supervisor: ``INVOKE`` (one per invoke), ``CANCEL`` (the client went away), ``STATUS_REQUEST`` (a
health check), ``API_REQUEST`` (a call of another operation of Lambda's API the supervisor serves: the durable
execution APIs), and ``HELLO`` (the shared token, first on every TCP connection of a split deployment).
Supervisor -> front end: ``HEAD`` (the response starts), ``CHUNK`` (body bytes), ``END`` (exactly one, last),
``STATUS`` (the answer to a ``STATUS_REQUEST``) and ``API_RESPONSE`` (the answer to an ``API_REQUEST``, whole).

An invoke that fails before any byte of its response exists (throttled, unknown function, function error) is
answered by ``END`` alone. ``HELLO`` has no answer: a supervisor that does not accept the token closes the
connection. Every message is a msgpack map whose key ``t`` is its ``Kind``; ``decode`` turns a frame
into one of the dataclasses below and raises ``ProtocolError`` for anything else, so the I/O code never looks into
raw maps.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from typing import Any, Final

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


@dataclass(frozen=True, slots=True)
class Invoke:
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


@dataclass(frozen=True, slots=True)
class Cancel:
    reason: str = "client disconnected"


@dataclass(frozen=True, slots=True)
class Head:
    request_id: str
    content_type: str
    streaming: bool  # the runtime answered in streaming mode
    executed_version: str
    length: int | None = None  # total body length, known for buffered responses
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers (X-Amz-Durable-Execution-Arn)


@dataclass(frozen=True, slots=True)
class Chunk:
    data: bytes


@dataclass(frozen=True, slots=True)
class End:
    outcome: Outcome
    request_id: str
    executed_version: str = "$LATEST"
    error_type: str | None = None  # Lambda's errorType, or the service error code
    body: bytes = b""  # the error body (function and service errors)
    status: int | None = None  # the HTTP status of a service error
    # extra response headers: a service error's Retry-After, a durable execution's X-Amz-Durable-Execution-Arn
    headers: dict[str, str] = field(default_factory=dict)
    log_result: str | None = None  # base64 of the log tail, when asked for


@dataclass(frozen=True, slots=True)
class Hello:
    token: str  # the shared secret of a split deployment (PYRIE_SUPERVISOR_TOKEN)


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """A health check: the supervisor answers with ``Status``; no environment is started or used."""


@dataclass(frozen=True, slots=True)
class EnvironmentStatus:
    name: str
    state: str  # the environment's lifecycle state: starting, idle, restoring, invoking, resetting, gone
    runtime_state: str  # the runtime's state in the Runtime API: Started, Ready, Running ...
    in_flight: int = 0  # invokes delivered to its runtime and not answered yet
    tenant: str | None = None  # the tenant it serves (tenant isolation), if any


@dataclass(frozen=True, slots=True)
class Status:
    function: str
    version: str
    max_concurrency: int
    environments: tuple[EnvironmentStatus, ...] = ()


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """An HTTP request for an operation the supervisor answers whole (the durable execution APIs), as received."""

    method: str
    path: str  # still percent-encoded, without the query
    query: str = ""  # without the "?"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """The whole answer to an ``ApiRequest``: Lambda's rest-json status, headers and body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


Message = Invoke | Cancel | Head | Chunk | End | Hello | StatusRequest | Status | ApiRequest | ApiResponse

_KIND_OF: Final[dict[type, Kind]] = {
    Invoke: Kind.INVOKE,
    Cancel: Kind.CANCEL,
    Head: Kind.HEAD,
    Chunk: Kind.CHUNK,
    End: Kind.END,
    Hello: Kind.HELLO,
    StatusRequest: Kind.STATUS_REQUEST,
    Status: Kind.STATUS,
    ApiRequest: Kind.API_REQUEST,
    ApiResponse: Kind.API_RESPONSE,
}
_CLASS_OF: Final[dict[int, type]] = {kind.value: cls for cls, kind in _KIND_OF.items()}
_NAMES: Final[dict[type, tuple[str, ...]]] = {cls: tuple(f.name for f in fields(cls)) for cls in _KIND_OF}


def encode(message: Message) -> dict[str, Any]:
    """The msgpack map of ``message``."""
    cls = type(message)
    encoded = {name: getattr(message, name) for name in _NAMES[cls]}
    if isinstance(message, Status):
        encoded["environments"] = [_encode_environment(env) for env in message.environments]
    encoded["t"] = _KIND_OF[cls].value
    return encoded


def decode(encoded: dict[str, Any]) -> Message:
    """The message held in a frame's map; ``ProtocolError`` if it is not one."""
    fields = dict(encoded)
    kind = fields.pop("t", None)
    cls = _CLASS_OF.get(kind) if type(kind) is int else None
    if cls is None:
        raise ProtocolError(f"unknown message type {kind!r}")
    if cls is Status and "environments" in fields:
        fields["environments"] = _decode_environments(fields["environments"])
    try:
        message = cls(**fields)
    except TypeError as exc:
        raise ProtocolError(f"malformed {cls.__name__} message: {exc}") from None
    _check_types(message)
    return message


def _check_types(message: Any) -> None:
    # Dataclass construction does not check types; a peer that sends a str where bytes belong would crash later,
    # far from the frame that caused it.
    for name, expected in _TYPES[type(message)].items():
        value = getattr(message, name)
        if not _is(value, expected):
            raise ProtocolError(f"{type(message).__name__}.{name} must be {expected}, not {type(value).__name__}")
    if isinstance(message, End | Head | ApiRequest | ApiResponse) and not all(
        type(k) is str and type(v) is str for k, v in message.headers.items()
    ):
        raise ProtocolError(f"{type(message).__name__}.headers must map str to str")
    if isinstance(message, End):
        try:
            object.__setattr__(message, "outcome", Outcome(message.outcome))
        except ValueError:
            raise ProtocolError(f"unknown outcome {message.outcome!r}") from None


def _as_tuple(expected: type | tuple[type, ...]) -> tuple[type, ...]:
    return expected if isinstance(expected, tuple) else (expected,)


def _encode_environment(env: EnvironmentStatus) -> dict[str, Any]:
    return {name: getattr(env, name) for name in _ENVIRONMENT_FIELDS}


def _decode_environments(value: Any) -> tuple[EnvironmentStatus, ...]:
    if not isinstance(value, list):
        raise ProtocolError(f"Status.environments must be a list, not {type(value).__name__}")
    environments = []
    for item in value:
        if (
            not isinstance(item, dict)
            or set(item) != set(_ENVIRONMENT_FIELDS)
            or not all(_is(item[name], expected) for name, expected in _ENVIRONMENT_TYPES.items())
        ):
            raise ProtocolError(f"malformed environment in a Status message: {item!r}")
        environments.append(EnvironmentStatus(**item))
    return tuple(environments)


_ENVIRONMENT_FIELDS: Final = tuple(f.name for f in fields(EnvironmentStatus))
_OPT_STR = (str, type(None))
_ENVIRONMENT_TYPES: Final[dict[str, Any]] = {
    "name": str,
    "state": str,
    "runtime_state": str,
    "in_flight": int,
    "tenant": _OPT_STR,
}


def _is(value: Any, expected: type | tuple[type, ...]) -> bool:
    return isinstance(value, expected) and not (isinstance(value, bool) and bool not in _as_tuple(expected))


_TYPES: Final[dict[type, dict[str, Any]]] = {
    Invoke: {
        "function": str,
        "payload": bytes,
        "qualifier": _OPT_STR,
        "invocation_type": str,
        "log_type": str,
        "client_context": _OPT_STR,
        "trace_id": _OPT_STR,
        "tenant_id": _OPT_STR,
        "stream": bool,
        "durable_execution_name": _OPT_STR,
    },
    Cancel: {"reason": str},
    Head: {
        "request_id": str,
        "content_type": str,
        "streaming": bool,
        "executed_version": str,
        "length": (int, type(None)),
        "headers": dict,
    },
    Chunk: {"data": bytes},
    End: {
        "outcome": str,
        "request_id": str,
        "executed_version": str,
        "error_type": _OPT_STR,
        "body": bytes,
        "status": (int, type(None)),
        "headers": dict,
        "log_result": _OPT_STR,
    },
    Hello: {"token": str},
    StatusRequest: {},
    Status: {"function": str, "version": str, "max_concurrency": int, "environments": tuple},
    ApiRequest: {"method": str, "path": str, "query": str, "headers": dict, "body": bytes},
    ApiResponse: {"status": int, "headers": dict, "body": bytes},
}
