"""The event-stream encoder against botocore's own decoder: byte-exact, whole, byte by byte, and with corruption."""

from __future__ import annotations

import json

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer, EventStreamMessage

from invoke_api import eventstream

# lambda-protocols.md §b: the exact 111 bytes of PayloadChunk("hello"), as boto3 and the JS SDK accept them.
HELLO = bytes.fromhex(
    "0000006f" "0000005a" "f5fe871f"
    "0b" + b":event-type".hex() + "07" "000c" + b"PayloadChunk".hex()
    + "0d" + b":content-type".hex() + "07" "0018" + b"application/octet-stream".hex()
    + "0d" + b":message-type".hex() + "07" "0005" + b"event".hex()
    + b"hello".hex()
    + "29e71260"
)  # fmt: skip


def decode(data: bytes, step: int | None = None) -> list[EventStreamMessage]:
    buffer = EventStreamBuffer()
    messages: list[EventStreamMessage] = []
    pieces = [data] if step is None else [data[i : i + step] for i in range(0, len(data), step)]
    for piece in pieces:
        buffer.add_data(piece)
        messages.extend(buffer)
    return messages


def test_payload_chunk_hello_is_byte_exact() -> None:
    assert len(HELLO) == 111
    assert list(eventstream.payload_chunks(b"hello")) == [HELLO]


def test_a_stream_decodes_whole_and_byte_by_byte() -> None:
    stream = b"".join(
        [
            *eventstream.payload_chunks(b"hello"),
            *eventstream.payload_chunks(b""),
            *eventstream.payload_chunks(bytes(range(256))),
            eventstream.invoke_complete(),
        ]
    )
    for step in (None, 1, 7):
        messages = decode(stream, step)
        assert [m.headers[":event-type"] for m in messages] == ["PayloadChunk"] * 3 + ["InvokeComplete"]
        assert all(m.headers[":message-type"] == "event" for m in messages)
        assert [m.payload for m in messages] == [b"hello", b"", bytes(range(256)), b"{}"]
        assert messages[-1].headers[":content-type"] == "application/json"


def test_invoke_complete_carries_what_is_given() -> None:
    (message,) = decode(eventstream.invoke_complete("TypeError", '{"errorType":"TypeError"}', "U1RBUlQ="))
    assert json.loads(message.payload) == {
        "ErrorCode": "TypeError",
        "ErrorDetails": '{"errorType":"TypeError"}',
        "LogResult": "U1RBUlQ=",
    }
    (message,) = decode(eventstream.invoke_complete(log_result="eA=="))
    assert json.loads(message.payload) == {"LogResult": "eA=="}


@pytest.mark.parametrize("position", [0, 5, 9, 20, 105, 110])
def test_a_flipped_byte_is_caught_by_botocore(position: int) -> None:
    corrupt = bytearray(HELLO)
    corrupt[position] ^= 0x01
    with pytest.raises(ChecksumMismatch):
        decode(bytes(corrupt))


def test_writes_over_botocores_payload_limit_are_split() -> None:
    data = bytes(range(256)) * ((eventstream.MAX_PAYLOAD * 2 + 1000) // 256)
    events = list(eventstream.payload_chunks(data))
    assert len(events) == 3
    payloads = [message.payload for event in events for message in decode(event)]
    assert [len(p) for p in payloads] == [
        eventstream.MAX_PAYLOAD,
        eventstream.MAX_PAYLOAD,
        len(data) - 2 * eventstream.MAX_PAYLOAD,
    ]
    assert b"".join(payloads) == data


def test_headers_that_do_not_fit_are_refused() -> None:
    with pytest.raises(ValueError, match="length fields"):
        eventstream.encode_message({"x" * 256: "v"}, b"")
    with pytest.raises(ValueError, match="over"):
        eventstream.encode_message({f"h{i}": "v" * 60_000 for i in range(3)}, b"")
    with pytest.raises(ValueError, match="payload"):
        eventstream.encode_message({}, bytes(eventstream.MAX_PAYLOAD + 1))
