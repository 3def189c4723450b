"""The frame codec (pyrie_core.pipe.frames), tested the h11 way: every case whole, byte by byte, and with trailing
bytes. Frames carry msgpack maps (packed here by the msgpack library, a reference apart from pyrie's own encoder);
the codec hands back each frame's body whole, as sent."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from pyrie_core.pipe.frames import MAX_FRAME_SIZE, NEED_DATA, FrameDecoder, FrameError, encode_frame


def framed(message: dict[str, Any]) -> bytes:
    """The frame of a msgpack map."""
    return encode_frame(msgpack.packb(message, use_bin_type=True))


def unpacked(frame: Any) -> Any:
    """A frame's body as the map it holds (``NEED_DATA`` and ``None`` as they are)."""
    if isinstance(frame, bytes | memoryview):
        return msgpack.unpackb(frame, raw=False)
    return frame


# The start of another frame, to follow a frame under test: it must stay buffered, untouched, for the next frame.
NEXT_MESSAGE = {"t": 4, "data": b"next"}
NEXT_FRAME = framed(NEXT_MESSAGE)
TRAILING = NEXT_FRAME[:7]  # the whole length prefix and the first bytes of the body


def frame_of(body: bytes) -> bytes:
    """A frame around any body (valid msgpack or not), with a correct length prefix."""
    return len(body).to_bytes(4, "big") + body


def drain(decoder: FrameDecoder) -> list[Any]:
    """Every whole frame the decoder holds, asserting it then asks for more data."""
    frames = []
    while (frame := decoder.next_frame()) is not NEED_DATA:
        frames.append(unpacked(frame))
    return frames


def tr(data: bytes, expected: dict[str, Any]) -> None:
    """Decode ``data``, the bytes of exactly one frame, three ways, and check each gives ``expected``."""
    # The whole input at once.
    decoder = FrameDecoder()
    decoder.feed(data)
    assert unpacked(decoder.next_frame()) == expected
    assert decoder.next_frame() is NEED_DATA
    assert decoder.buffered == 0
    decoder.feed(b"")
    assert decoder.next_frame() is None

    # One byte at a time: NEED_DATA until the last byte is in.
    decoder = FrameDecoder()
    for i in range(len(data)):
        assert decoder.next_frame() is NEED_DATA
        assert decoder.buffered == i
        decoder.feed(data[i : i + 1])
    assert unpacked(decoder.next_frame()) == expected
    assert decoder.next_frame() is NEED_DATA
    assert decoder.buffered == 0

    # With trailing bytes: they stay buffered and become the next frame once it is complete.
    decoder = FrameDecoder()
    decoder.feed(data + TRAILING)
    assert unpacked(decoder.next_frame()) == expected
    assert decoder.next_frame() is NEED_DATA
    assert decoder.buffered == len(TRAILING)
    decoder.feed(NEXT_FRAME[len(TRAILING) :])
    assert unpacked(decoder.next_frame()) == NEXT_MESSAGE
    assert decoder.next_frame() is NEED_DATA


# --- byte-exact encoding ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({}, b"\x00\x00\x00\x01\x80"),
        ({"t": 1}, b"\x00\x00\x00\x04\x81\xa1t\x01"),
        # bytes travel as msgpack bin (0xc4), str as msgpack str (0xa_): the decoder can tell them apart
        ({"data": b"ab", "s": "x"}, b"\x00\x00\x00\x0e\x82\xa4data\xc4\x02ab\xa1s\xa1x"),
        ({"n": None, "b": True, "f": False}, b"\x00\x00\x00\x0a\x83\xa1n\xc0\xa1b\xc3\xa1f\xc2"),
        ({"l": [1, -1]}, b"\x00\x00\x00\x06\x81\xa1l\x92\x01\xff"),
        # a body of 262 bytes: the length prefix is big-endian over all four bytes
        ({"k": b"x" * 256}, b"\x00\x00\x01\x06\x81\xa1k\xc5\x01\x00" + b"x" * 256),
    ],
    ids=["empty", "int", "bin-and-str", "nil-and-bools", "array", "two-byte-length"],
)
def test_encode_frame_is_length_prefix_then_msgpack(message, expected):
    assert framed(message) == expected


def test_encode_frame_refuses_a_body_over_the_maximum():
    with pytest.raises(FrameError, match="exceeds the maximum"):
        encode_frame(msgpack.packb({"p": b"x" * MAX_FRAME_SIZE}))


# --- decoding: the same cases three ways -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        {},
        {"t": 1},
        {"data": b"ab", "s": "x"},
        {"data": b""},
        {"text": "h\u00e9llo \u2603", "raw": b"\x00\xff"},
        {"nested": {"a": [1, 2, {"b": None}]}, "big": 2**40, "neg": -5, "float": 1.5},
        {"k": b"x" * 256},
        {"k": b"y" * 70_000},  # a prefix with three significant bytes
    ],
    ids=["empty", "int", "bin-and-str", "empty-bin", "unicode", "nested", "two-byte-length", "three-byte-length"],
)
def test_decoding_a_frame_whole_byte_by_byte_and_with_trailing_bytes(message):
    tr(framed(message), message)


@pytest.mark.parametrize("split", range(1, 4))
def test_split_inside_the_length_prefix(split):
    data = framed({"data": b"hello"})
    decoder = FrameDecoder()
    decoder.feed(data[:split])
    assert decoder.next_frame() is NEED_DATA
    assert decoder.buffered == split
    decoder.feed(data[split:])
    assert unpacked(decoder.next_frame()) == {"data": b"hello"}


@pytest.mark.parametrize("split", range(4, len(framed({"data": b"hello"}))))
def test_split_inside_the_body(split):
    data = framed({"data": b"hello"})
    decoder = FrameDecoder()
    decoder.feed(data[:split])
    assert decoder.next_frame() is NEED_DATA
    decoder.feed(data[split:])
    assert unpacked(decoder.next_frame()) == {"data": b"hello"}
    assert decoder.next_frame() is NEED_DATA


def test_two_frames_in_one_feed():
    decoder = FrameDecoder()
    decoder.feed(framed({"t": 3}) + framed({"t": 4, "data": b"x"}))
    assert unpacked(decoder.next_frame()) == {"t": 3}
    assert unpacked(decoder.next_frame()) == {"t": 4, "data": b"x"}
    assert decoder.next_frame() is NEED_DATA
    assert decoder.buffered == 0


def test_many_frames_fed_one_byte_at_a_time_come_out_in_order():
    messages = [{"i": i, "data": bytes([i]) * i} for i in range(5)]
    data = b"".join(framed(message) for message in messages)
    decoder = FrameDecoder()
    received = []
    for i in range(len(data)):
        decoder.feed(data[i : i + 1])
        received.extend(drain(decoder))
    assert received == messages


def test_a_frame_split_across_three_feeds_with_the_next_frame_in_the_last():
    first, second = framed({"a": 1}), framed({"b": 2})
    decoder = FrameDecoder()
    decoder.feed(first[:2])
    decoder.feed(first[2:6])
    assert decoder.next_frame() is NEED_DATA
    decoder.feed(first[6:] + second[:5])
    assert drain(decoder) == [{"a": 1}]
    decoder.feed(second[5:])
    assert drain(decoder) == [{"b": 2}]


def test_a_zero_length_frame_is_an_empty_body():
    decoder = FrameDecoder()
    decoder.feed(b"\x00\x00\x00\x00")
    assert bytes(decoder.next_frame()) == b""  # type: ignore[arg-type]
    assert decoder.next_frame() is NEED_DATA


def test_eof_before_any_frame_is_a_clean_end():
    decoder = FrameDecoder()
    decoder.feed(b"")
    assert decoder.next_frame() is None
    assert decoder.next_frame() is None


def test_eof_cleanly_between_frames_gives_the_frames_then_none():
    decoder = FrameDecoder()
    decoder.feed(framed({"a": 1}) + framed({"b": 2}))
    decoder.feed(b"")  # the peer closed before we read anything
    assert unpacked(decoder.next_frame()) == {"a": 1}
    assert unpacked(decoder.next_frame()) == {"b": 2}
    assert decoder.next_frame() is None
    assert decoder.next_frame() is None


def test_repeated_eof_is_harmless():
    decoder = FrameDecoder()
    decoder.feed(b"")
    decoder.feed(b"")
    assert decoder.next_frame() is None


@pytest.mark.parametrize("cut", range(1, len(framed({"data": b"hello"}))))
def test_eof_inside_a_frame_is_an_error(cut):
    data = framed({"data": b"hello"})
    decoder = FrameDecoder()
    decoder.feed(data[:cut])
    assert decoder.next_frame() is NEED_DATA
    decoder.feed(b"")
    with pytest.raises(FrameError, match=rf"stream ended inside a frame \({cut} bytes pending\)"):
        decoder.next_frame()


def test_eof_inside_the_second_frame_gives_the_first_then_an_error():
    decoder = FrameDecoder()
    decoder.feed(framed({"a": 1}) + framed({"b": 2})[:-1])
    decoder.feed(b"")
    assert unpacked(decoder.next_frame()) == {"a": 1}
    with pytest.raises(FrameError, match="stream ended inside a frame"):
        decoder.next_frame()


def test_data_after_eof_is_refused_every_time():
    decoder = FrameDecoder()
    decoder.feed(b"")
    with pytest.raises(FrameError, match="data after end of stream"):
        decoder.feed(b"x")
    with pytest.raises(FrameError, match="data after end of stream"):
        decoder.feed(framed({}))
    assert decoder.buffered == 0


# --- oversize and undecodable frames ---------------------------------------------------------------------------


def test_oversize_length_prefix_fails_before_the_body_arrives():
    decoder = FrameDecoder(max_frame_size=10)
    decoder.feed((11).to_bytes(4, "big"))  # only the prefix: no body byte has been sent
    with pytest.raises(FrameError, match="frame of 11 bytes exceeds the maximum of 10"):
        decoder.next_frame()


def test_oversize_length_prefix_fed_byte_by_byte_fails_on_its_last_byte():
    decoder = FrameDecoder()
    prefix = (MAX_FRAME_SIZE + 1).to_bytes(4, "big")
    for byte in prefix[:-1]:
        decoder.feed(bytes([byte]))
        assert decoder.next_frame() is NEED_DATA
    decoder.feed(prefix[-1:])
    expected = f"frame of {MAX_FRAME_SIZE + 1} bytes exceeds the maximum of {MAX_FRAME_SIZE}"
    with pytest.raises(FrameError, match=expected):
        decoder.next_frame()


def test_largest_possible_length_prefix_fails_at_once():
    decoder = FrameDecoder()
    decoder.feed(b"\xff\xff\xff\xff")
    with pytest.raises(FrameError, match="exceeds the maximum"):
        decoder.next_frame()


def test_a_frame_of_exactly_the_maximum_size_is_accepted():
    message = {"d": b"abcd"}
    data = framed(message)
    decoder = FrameDecoder(max_frame_size=len(data) - 4)
    decoder.feed(data)
    assert unpacked(decoder.next_frame()) == message


def test_the_maximum_can_be_raised_between_frames():
    # The supervisor's TCP listener reads a stranger's first frame (its Hello) under a small maximum, then raises it;
    # a large frame that came in the same read as the Hello is measured against the new maximum.
    small, large = framed({"token": "t"}), framed({"d": b"x" * 100})
    decoder = FrameDecoder(max_frame_size=len(small) - 4)
    decoder.feed(small + large)
    assert unpacked(decoder.next_frame()) == {"token": "t"}
    decoder.max_frame_size = len(large) - 4
    assert unpacked(decoder.next_frame()) == {"d": b"x" * 100}


def test_a_large_frame_under_the_small_maximum_fails():
    decoder = FrameDecoder(max_frame_size=16)
    decoder.feed(framed({"d": b"x" * 100}))
    with pytest.raises(FrameError, match="exceeds the maximum of 16"):
        decoder.next_frame()


# --- errors are final ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [b"\xff\xff\xff\xff", b"\x00\x80\x00\x01"],
    ids=["largest", "oversize"],
)
def test_errors_are_final(bad):
    decoder = FrameDecoder()
    decoder.feed(bad + framed({"after": 1}))
    with pytest.raises(FrameError) as first:
        decoder.next_frame()
    # The decoder keeps raising the same error: from next_frame, and from feed whatever it is given.
    for _ in range(2):
        with pytest.raises(FrameError) as again:
            decoder.next_frame()
        assert str(again.value) == str(first.value)
    with pytest.raises(FrameError):
        decoder.feed(framed({"more": 1}))
    with pytest.raises(FrameError):
        decoder.feed(b"")
    with pytest.raises(FrameError):
        decoder.next_frame()


def test_an_eof_error_is_final():
    decoder = FrameDecoder()
    decoder.feed(b"\x00\x00")
    decoder.feed(b"")
    with pytest.raises(FrameError, match="stream ended inside a frame"):
        decoder.next_frame()
    with pytest.raises(FrameError, match="stream ended inside a frame"):
        decoder.next_frame()
    with pytest.raises(FrameError, match="stream ended inside a frame"):
        decoder.feed(b"\x00\x01\x80")


def test_need_data_has_a_readable_repr():
    assert repr(NEED_DATA) == "NEED_DATA"


def test_a_frame_over_the_maximum_is_refused_when_encoded() -> None:
    assert encode_frame(b"x" * MAX_FRAME_SIZE)[:4] == MAX_FRAME_SIZE.to_bytes(4, "big")
    with pytest.raises(FrameError):
        encode_frame(b"x" * (MAX_FRAME_SIZE + 1))


def test_a_large_frame_is_read_into_a_buffer_of_its_own() -> None:
    body = bytes(range(256)) * 1024  # 256 KiB
    data = encode_frame(body) + NEXT_FRAME
    decoder = FrameDecoder()
    assert decoder.receive_buffer() is None  # nothing known yet: bytes come by feed
    decoder.feed(data[:1000])
    assert decoder.next_frame() is NEED_DATA
    position = 1000
    while (into := decoder.receive_buffer()) is not None and len(into):
        take = min(len(into), 50_000)  # a socket's recv_into, a piece at a time
        into[:take] = data[position : position + take]
        into.release()
        decoder.received(take)
        position += take
        assert decoder.buffered == position
    frame = decoder.next_frame()
    assert isinstance(frame, memoryview) and frame == body
    assert decoder.receive_buffer() is None
    decoder.feed(data[position:])
    assert unpacked(decoder.next_frame()) == NEXT_MESSAGE


def test_the_end_of_stream_inside_a_large_frame_is_an_error() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame(b"x" * 100_000)[:70_000])
    assert decoder.next_frame() is NEED_DATA
    decoder.received(0)
    with pytest.raises(FrameError, match="stream ended inside a frame"):
        decoder.next_frame()
