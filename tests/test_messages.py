"""The supervisor protocol's messages (pyrie_core.pipe.messages) through the whole codec: encode, frame, decode."""

from __future__ import annotations

from typing import Any

import msgpack
import msgspec
import pytest

from pyrie_core.pipe.frames import NEED_DATA, FrameDecoder, encode_frame
from pyrie_core.pipe.messages import (
    ApiRequest,
    ApiResponse,
    Cancel,
    Chunk,
    End,
    EnvironmentStatus,
    Head,
    Hello,
    Invoke,
    Kind,
    Message,
    Outcome,
    ProtocolError,
    Status,
    StatusRequest,
    decode,
    encode,
    frame_parts,
    frames,
)

MESSAGES: list[Message] = [
    Invoke(function="function", payload=b""),
    Invoke(
        function="arn:aws:lambda:us-east-1:012345678912:function:f:prod",
        payload=b'{"k": "\xc3\xa9"}\x00\xff',
        qualifier="prod",
        invocation_type="Event",
        log_type="Tail",
        client_context='{"custom": {"a": 1}}',
        trace_id="Root=1-5759e988-bd862e3fe1be46a994272793",
        tenant_id="tenant-1",
        stream=True,
        durable_execution_name="order-42",
    ),
    Cancel(),
    Cancel(reason="shutting down"),
    Head(request_id="r-1", content_type="application/json", streaming=False, executed_version="$LATEST", length=12),
    Head(request_id="r-2", content_type="text/event-stream", streaming=True, executed_version="3"),
    Head(
        request_id="r-4",
        content_type="application/json",
        streaming=False,
        executed_version="$LATEST",
        length=2,
        headers={
            "X-Amz-Durable-Execution-Arn": "arn:aws:lambda:us-east-1:012345678912:function:f:$LATEST/durable-execution/"
        },
    ),
    Chunk(data=b""),
    Chunk(data=b"\x00" * 1024 + b"data: x\n\n"),
    End(outcome=Outcome.OK, request_id="r-1"),
    End(
        outcome=Outcome.FUNCTION_ERROR,
        request_id="r-1",
        executed_version="7",
        error_type="Sandbox.Timedout",
        body=b'{"errorType":"Sandbox.Timedout"}',
        log_result="U1RBUlQK",
    ),
    End(
        outcome=Outcome.SERVICE_ERROR,
        request_id="r-3",
        error_type="TooManyRequestsException",
        body=b'{"Type":"User","message":"Rate Exceeded."}',
        status=429,
        headers={"Retry-After": "1"},
    ),
    Hello(token="s3cret-token-0123456789"),
    StatusRequest(),
    Status(function="test_function", version="$LATEST", max_concurrency=1),
    Status(
        function="orders",
        version="7",
        max_concurrency=10,
        environments=(
            EnvironmentStatus(name="environment-1", state="idle", runtime_state="Ready"),
            EnvironmentStatus(
                name="environment-2", state="invoking", runtime_state="Running", in_flight=2, tenant="t-1"
            ),
        ),
    ),
    ApiRequest(method="GET", path="/2025-12-01/durable-executions/arn%3Aaws%3Alambda"),
    ApiRequest(
        method="POST",
        path="/2025-12-01/durable-execution-callbacks/Y2I%3D/succeed",
        query="x=1&y=%2F",
        headers={"Content-Type": "application/octet-stream"},
        body=b"\x00\xff{}",
    ),
    ApiResponse(status=202),
    ApiResponse(
        status=404,
        headers={"Content-Type": "application/json", "X-Amzn-ErrorType": "ResourceNotFoundException"},
        body=b'{"Type":"User","Message":"Durable execution not found"}',
    ),
]
IDS = [
    "invoke-minimal",
    "invoke-full",
    "cancel-default",
    "cancel-reason",
    "head-buffered",
    "head-streaming",
    "head-extra-headers",
    "chunk-empty",
    "chunk-binary",
    "end-ok",
    "end-function-error",
    "end-service-error",
    "hello",
    "status-request",
    "status-no-environments",
    "status-two-environments",
    "api-request-minimal",
    "api-request-full",
    "api-response-empty",
    "api-response-error",
]


def as_map(message: Message) -> dict[str, Any]:
    """The map ``encode`` writes for ``message``, as the msgpack library reads it back."""
    encoded = msgpack.unpackb(encode(message), raw=False)
    assert isinstance(encoded, dict)
    return encoded


def through_the_pipe(encoded: dict[str, Any] | bytes) -> bytes:
    """The body the peer's decoder hands back after a trip through a frame, of a map (packed by the msgpack library,
    a reference apart from pyrie's encoder) or of ``encode``'s bytes."""
    body = encoded if isinstance(encoded, bytes) else msgpack.packb(encoded, use_bin_type=True)
    decoder = FrameDecoder()
    decoder.feed(encode_frame(body))
    frame = decoder.next_frame()
    assert decoder.next_frame() is NEED_DATA
    assert isinstance(frame, bytes | memoryview)
    return bytes(frame)


def valid_map(kind: Kind, **changes: Any) -> bytes:
    """A valid message of ``kind`` through the pipe, with ``changes`` applied to its map (a value of ``...`` removes
    the field)."""
    message = next(m for m in MESSAGES if as_map(m)["t"] == kind)
    encoded = as_map(message)
    for name, value in changes.items():
        if value is ...:
            del encoded[name]
        else:
            encoded[name] = value
    return through_the_pipe(encoded)


# --- round trips -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("message", MESSAGES, ids=IDS)
def test_round_trip_through_encode_frame_and_decode(message):
    decoded = decode(through_the_pipe(encode(message)))
    assert decoded == message
    assert type(decoded) is type(message)


@pytest.mark.parametrize("message", MESSAGES, ids=IDS)
def test_encode_gives_every_field_and_the_kind(message):
    encoded = as_map(message)
    assert set(encoded) == set(message.__struct_fields__) | {"t"}
    assert type(encoded["t"]) is int  # the plain number on the wire, not the enum
    kinds = {
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
    assert encoded["t"] == kinds[type(message)]


def test_kind_numbers_are_fixed():
    # They are the wire format shared by the front end and the supervisor: changing one breaks a mixed deployment.
    assert {kind.name: kind.value for kind in Kind} == {
        "INVOKE": 1,
        "CANCEL": 2,
        "HEAD": 3,
        "CHUNK": 4,
        "END": 5,
        "HELLO": 6,
        "STATUS_REQUEST": 7,
        "STATUS": 8,
        "API_REQUEST": 9,
        "API_RESPONSE": 10,
    }


def test_every_message_type_is_covered_by_the_round_trip():
    assert {type(message) for message in MESSAGES} == {
        Invoke,
        Cancel,
        Head,
        Chunk,
        End,
        Hello,
        StatusRequest,
        Status,
        ApiRequest,
        ApiResponse,
    }


def test_status_environments_travel_as_plain_maps():
    # msgpack cannot carry dataclasses: on the wire each environment is a plain map, decoded back to the class.
    status = MESSAGES[IDS.index("status-two-environments")]
    encoded = msgpack.unpackb(through_the_pipe(encode(status)))
    assert encoded["environments"] == [
        {"name": "environment-1", "state": "idle", "runtime_state": "Ready", "in_flight": 0, "tenant": None},
        {"name": "environment-2", "state": "invoking", "runtime_state": "Running", "in_flight": 2, "tenant": "t-1"},
    ]
    decoded = decode(through_the_pipe(encoded))
    assert isinstance(decoded, Status)
    assert all(type(env) is EnvironmentStatus for env in decoded.environments)


def test_binary_fields_arrive_as_bytes_and_text_fields_as_str():
    invoke = decode(through_the_pipe(encode(MESSAGES[1])))
    assert isinstance(invoke, Invoke)
    assert type(invoke.payload) is bytes
    assert type(invoke.function) is str
    chunk = decode(through_the_pipe(encode(Chunk(data=b"\xff"))))
    assert isinstance(chunk, Chunk)
    assert type(chunk.data) is bytes


def test_defaults_fill_in_fields_a_peer_leaves_out():
    assert decode(through_the_pipe({"t": 2})) == Cancel(reason="client disconnected")
    invoke = decode(through_the_pipe({"t": 1, "function": "f", "payload": b"{}"}))
    assert invoke == Invoke(function="f", payload=b"{}", invocation_type="RequestResponse", log_type="None")
    end = decode(through_the_pipe({"t": 5, "outcome": "ok", "request_id": "r"}))
    assert end == End(outcome=Outcome.OK, request_id="r", executed_version="$LATEST", body=b"", headers={})


# --- End.outcome -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", list(Outcome))
def test_end_outcome_arrives_as_the_enum(outcome):
    end = decode(through_the_pipe({"t": 5, "outcome": outcome.value, "request_id": "r"}))
    assert isinstance(end, End)
    assert end.outcome is outcome
    assert type(end.outcome) is Outcome


def test_outcome_values_are_fixed():
    assert [outcome.value for outcome in Outcome] == ["ok", "function_error", "service_error"]


@pytest.mark.parametrize("outcome", ["OK", "error", "", "ok "])
def test_unknown_end_outcome_is_a_protocol_error(outcome):
    with pytest.raises(ProtocolError, match=r"^malformed End message: Invalid enum value .* `\$\.outcome`"):
        decode(valid_map(Kind.END, outcome=outcome))


def test_end_outcome_of_the_wrong_type_is_a_protocol_error():
    with pytest.raises(ProtocolError, match=r"^malformed End message: .* `\$\.outcome`"):
        decode(valid_map(Kind.END, outcome=1))


# --- malformed messages ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("t", [0, 11, -1, 255, "1", "INVOKE", 1.0, None, b"\x01", [1]])
def test_unknown_message_type_is_a_protocol_error(t):
    with pytest.raises(ProtocolError, match="unknown message type"):
        decode(through_the_pipe({"t": t, "reason": "x"}))


def test_a_map_without_a_type_is_a_protocol_error():
    with pytest.raises(ProtocolError, match="unknown message type None"):
        decode(through_the_pipe({"reason": "x"}))


@pytest.mark.parametrize(
    ("kind", "missing"),
    [
        (Kind.INVOKE, "function"),
        (Kind.INVOKE, "payload"),
        (Kind.HEAD, "request_id"),
        (Kind.HEAD, "content_type"),
        (Kind.HEAD, "streaming"),
        (Kind.HEAD, "executed_version"),
        (Kind.CHUNK, "data"),
        (Kind.END, "outcome"),
        (Kind.END, "request_id"),
        (Kind.API_REQUEST, "method"),
        (Kind.API_REQUEST, "path"),
        (Kind.API_RESPONSE, "status"),
    ],
)
def test_a_missing_required_field_is_a_protocol_error(kind, missing):
    with pytest.raises(ProtocolError, match=f"malformed {kind.name.title().replace('_', '')} message"):
        decode(valid_map(kind, **{missing: ...}))


@pytest.mark.parametrize("kind", list(Kind))
def test_an_extra_field_is_a_protocol_error(kind):
    with pytest.raises(ProtocolError, match=f"malformed {kind.name.title().replace('_', '')} message"):
        decode(valid_map(kind, surprise=1))


def test_a_bytes_key_is_a_protocol_error():
    # msgpack maps may have bin keys; the frame codec lets them through, the message layer must not.
    with pytest.raises(ProtocolError, match="malformed Chunk message"):
        decode(through_the_pipe({"t": 4, b"data": b"x"}))  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("kind", "name", "value"),
    [
        (Kind.INVOKE, "function", b"function"),
        (Kind.INVOKE, "payload", "{}"),  # str where bytes belong
        (Kind.INVOKE, "payload", None),
        (Kind.INVOKE, "qualifier", 1),
        (Kind.INVOKE, "invocation_type", None),
        (Kind.INVOKE, "log_type", b"Tail"),
        (Kind.INVOKE, "client_context", {"custom": 1}),
        (Kind.INVOKE, "trace_id", 5),
        (Kind.INVOKE, "tenant_id", b"t"),
        (Kind.INVOKE, "stream", 1),
        (Kind.INVOKE, "stream", "true"),
        (Kind.CANCEL, "reason", None),
        (Kind.HEAD, "request_id", None),
        (Kind.HEAD, "content_type", b"text/plain"),
        (Kind.HEAD, "streaming", None),
        (Kind.HEAD, "streaming", 0),
        (Kind.HEAD, "executed_version", 1),
        (Kind.HEAD, "length", "12"),
        (Kind.HEAD, "length", 1.5),
        (Kind.CHUNK, "data", "text"),  # str where bytes belong
        (Kind.CHUNK, "data", [1, 2]),
        (Kind.END, "request_id", None),
        (Kind.END, "executed_version", None),
        (Kind.END, "error_type", 1),
        (Kind.END, "body", "error"),  # str where bytes belong
        (Kind.END, "status", "429"),
        (Kind.END, "headers", [["Retry-After", "1"]]),
        (Kind.END, "log_result", b"U1RBUlQK"),
        (Kind.HELLO, "token", b"s3cret"),
        (Kind.HELLO, "token", None),
        (Kind.STATUS, "function", None),
        (Kind.STATUS, "version", b"$LATEST"),
        (Kind.STATUS, "max_concurrency", "10"),
        (Kind.STATUS, "max_concurrency", True),
        (Kind.INVOKE, "durable_execution_name", b"order-42"),
        (Kind.HEAD, "headers", [["X-Amz-Durable-Execution-Arn", "a"]]),
        (Kind.API_REQUEST, "method", b"GET"),
        (Kind.API_REQUEST, "path", None),
        (Kind.API_REQUEST, "query", 1),
        (Kind.API_REQUEST, "headers", None),
        (Kind.API_REQUEST, "body", "{}"),  # str where bytes belong
        (Kind.API_RESPONSE, "status", "200"),
        (Kind.API_RESPONSE, "status", True),
        (Kind.API_RESPONSE, "headers", [["Content-Type", "application/json"]]),
        (Kind.API_RESPONSE, "body", None),
    ],
)
def test_a_field_of_the_wrong_type_is_a_protocol_error(kind, name, value):
    cls = {
        Kind.INVOKE: "Invoke",
        Kind.CANCEL: "Cancel",
        Kind.HEAD: "Head",
        Kind.CHUNK: "Chunk",
        Kind.END: "End",
        Kind.HELLO: "Hello",
        Kind.STATUS: "Status",
        Kind.API_REQUEST: "ApiRequest",
        Kind.API_RESPONSE: "ApiResponse",
    }
    with pytest.raises(ProtocolError, match=rf"^malformed {cls[kind]} message: .* `\$\.{name}`"):
        decode(valid_map(kind, **{name: value}))


@pytest.mark.parametrize(
    "encoded",
    [
        {"t": True, "function": "f", "payload": b""},
        {"t": 3, "request_id": "r", "content_type": "c", "streaming": False, "executed_version": "v", "length": True},
        {"t": 5, "outcome": "service_error", "request_id": "r", "status": True},
    ],
    ids=["t", "head-length", "end-status"],
)
def test_a_bool_where_an_int_belongs_is_a_protocol_error(encoded):
    with pytest.raises(ProtocolError):
        decode(through_the_pipe(encoded))


@pytest.mark.parametrize(
    "headers",
    [{"Retry-After": 1}, {"Retry-After": b"1"}, {b"Retry-After": "1"}, {"Retry-After": None}],
    ids=["int-value", "bytes-value", "bytes-name", "nil-value"],
)
@pytest.mark.parametrize("kind", [Kind.END, Kind.HEAD, Kind.API_REQUEST, Kind.API_RESPONSE])
def test_headers_must_map_str_to_str(headers, kind):
    with pytest.raises(ProtocolError, match=r"^malformed \w+ message: .*`\$\.headers"):
        decode(valid_map(kind, headers=headers))


@pytest.mark.parametrize(
    "environments",
    [
        "environment-1",
        {"name": "environment-1", "state": "idle", "runtime_state": "Ready"},
        [["environment-1", "idle", "Ready"]],
        [{"name": "environment-1", "state": "idle"}],
        [{"name": "environment-1", "state": "idle", "runtime_state": "Ready", "extra": "x"}],
        [{"name": "environment-1", "state": 1, "runtime_state": "Ready"}],
        [{"name": b"environment-1", "state": "idle", "runtime_state": "Ready"}],
        [{"name": "environment-1", "state": "idle", "runtime_state": "Ready", "in_flight": "1", "tenant": None}],
        [{"name": "environment-1", "state": "idle", "runtime_state": "Ready", "in_flight": True, "tenant": None}],
        [{"name": "environment-1", "state": "idle", "runtime_state": "Ready", "in_flight": 0, "tenant": 7}],
    ],
    ids=[
        "str",
        "map",
        "list-of-lists",
        "missing-field",
        "extra-field",
        "int-state",
        "bytes-name",
        "str-in-flight",
        "bool-in-flight",
        "int-tenant",
    ],
)
def test_a_malformed_status_environment_is_a_protocol_error(environments):
    with pytest.raises(ProtocolError, match=r"^malformed Status message: .*`\$\.environments"):
        decode(valid_map(Kind.STATUS, environments=environments))


def test_status_request_takes_no_fields():
    assert decode(through_the_pipe({"t": 7})) == StatusRequest()
    with pytest.raises(ProtocolError, match="malformed StatusRequest message"):
        decode(through_the_pipe({"t": 7, "token": "x"}))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xc1", "undecodable"),  # 0xc1 is never used in msgpack
        (b"\x81\xa1", "undecodable"),  # the map is cut short inside the frame
        (b"\x80\x80", "undecodable"),  # two objects in one frame
        (b"\x81\xa1k\xa1\xff", "undecodable"),  # a str that is not UTF-8
        (b"\x91" * 100_000 + b"\x80", "undecodable"),  # nested too deep
        (b"", "undecodable"),  # an empty frame
        (b"\x81\x01\x02", "not a map|unknown message type"),  # a map key that is not a string
        (b"\x01", "a frame body is a int, not a map"),
        (b"\x91\x80", "a frame body is a list, not a map"),
        (b"\xa3abc", "a frame body is a str, not a map"),
        (b"\xc4\x01a", "a frame body is a bytes, not a map"),
        (b"\xc0", "a frame body is a NoneType, not a map"),
    ],
    ids=[
        *("reserved-byte", "truncated-map", "extra-data", "bad-utf8", "too-deep", "empty", "int-key"),
        *("int", "array", "str", "bin", "nil"),
    ],
)
def test_a_body_that_is_not_one_msgpack_map_is_a_protocol_error(body, reason):
    with pytest.raises(ProtocolError, match=reason):
        decode(through_the_pipe(body))


@pytest.mark.parametrize(
    "message",
    [
        Chunk(data=b"x" * 65536),
        Chunk(data=b"\x00\xff" * 600_000),
        Invoke(function="function", payload=b"p" * 6_000_000, stream=True),
        End(outcome=Outcome.FUNCTION_ERROR, request_id="r", body=b"b" * 100_000, headers={"Retry-After": "1"}),
        Status(function="f", version="1", max_concurrency=2, environments=(EnvironmentStatus("e", "idle", "Ready"),)),
    ],
    ids=["64 KiB", "1.2 MB", "6 MB payload", "large body", "status"],
)
def test_frames_are_exactly_what_the_msgpack_library_packs(message: Message) -> None:
    # pyrie writes its frames with msgspec; the msgpack library, packing the same map, must give the same bytes.
    reference = msgpack.packb(msgspec.to_builtins(message, builtin_types=(bytes,)), use_bin_type=True)
    assert bytes(frames(message)) == encode_frame(reference)
    assert bytes(frames(message, Cancel())) == encode_frame(reference) + encode_frame(encode(Cancel()))


@pytest.mark.parametrize("size", [0, 100, 65535, 65536, 70_000, 1024 * 1024])
def test_frame_parts_are_the_frames_with_large_chunk_data_left_as_it_is(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    messages = (Head("r", "t", False, "v", 2), Chunk(data), Chunk(data[: size // 2]), End(Outcome.OK, "r"))
    parts = frame_parts(*messages)
    assert b"".join(parts) == bytes(frames(*messages))
    assert any(part is data for part in parts) == (size >= 65536)
