"""The frame codec (pyrie_core.pipe.frames), tested the h11 way: every case whole, byte by byte, and with trailing
bytes."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from pyrie_core.pipe.frames import MAX_FRAME_SIZE, NEED_DATA, FrameDecoder, FrameError, encode_frame

# The start of another frame, to follow a frame under test: it must stay buffered, untouched, for the next frame.
NEXT_MESSAGE = {"t": 4, "data": b"next"}
NEXT_FRAME = encode_frame(NEXT_MESSAGE)
TRAILING = NEXT_FRAME[:7]  # the whole length prefix and the first bytes of the body


def frame_of(body: bytes) -> bytes:
    """A frame around any body (valid msgpack or not), with a correct length prefix."""
    return len(body).to_bytes(4, "big") + body


def drain(decoder: FrameDecoder) -> list[Any]:
    """Every whole frame the decoder holds, asserting it then asks for more data."""
    frames = []
    while (frame := decoder.next_frame()) is not NEED_DATA:
        frames.append(frame)
    return frames


def tr(data: bytes, expected: dict[str, Any]) -> None:
    """Decode ``data``, the bytes of exactly one frame, three ways, and check each gives ``expected``."""
    # The whole input at once.
    decoder = FrameDecoder()
    decoder.feed(data)
    assert decoder.next_frame() == expected
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
    assert decoder.next_frame() == expected
    assert decoder.next_frame() is NEED_DATA
    assert decoder.buffered == 0

    # With trailing bytes: they stay buffered and become the next frame once it is complete.
    decoder = FrameDecoder()
    decoder.feed(data + TRAILING)
    assert decoder.next_frame() == expected
    assert decoder.next_frame() is NEED_DATA
    assert decoder.buffered == len(TRAILING)
    decoder.feed(NEXT_FRAME[len(TRAILING) :])
    assert decoder.next_frame() == NEXT_MESSAGE
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
    assert encode_frame(message) == expected


def test_encode_frame_refuses_a_body_over_the_maximum():
    with pytest.raises(FrameError, match="exceeds the maximum"):
        encode_frame({"p": b"x" * MAX_FRAME_SIZE})


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
    tr(encode_frame(message), message)


def test_decoded_bytes_stay_bytes_and_strings_stay_strings():
    decoder = FrameDecoder()
    decoder.feed(encode_frame({"data": b"ab", "s": "ab"}))
    frame = decoder.next_frame()
    assert isinstance(frame, dict)
    assert type(frame["data"]) is bytes
    assert type(frame["s"]) is str


@pytest.mark.parametrize("split", range(1, 4))
def test_split_inside_the_length_prefix(split):
    data = encode_frame({"data": b"hello"})
    decoder = FrameDecoder()
    decoder.feed(data[:split])
    assert decoder.next_frame() is NEED_DATA
    assert decoder.buffered == split
    decoder.feed(data[split:])
    assert decoder.next_frame() == {"data": b"hello"}


@pytest.mark.parametrize("split", range(4, len(encode_frame({"data": b"hello"}))))
def test_split_inside_the_body(split):
    data = encode_frame({"data": b"hello"})
    decoder = FrameDecoder()
    decoder.feed(data[:split])
    assert decoder.next_frame() is NEED_DATA
    decoder.feed(data[split:])
    assert decoder.next_frame() == {"data": b"hello"}
    assert decoder.next_frame() is NEED_DATA


def test_two_frames_in_one_feed():
    decoder = FrameDecoder()
    decoder.feed(encode_frame({"t": 3}) + encode_frame({"t": 4, "data": b"x"}))
    assert decoder.next_frame() == {"t": 3}
    assert decoder.next_frame() == {"t": 4, "data": b"x"}
    assert decoder.next_frame() is NEED_DATA
    assert decoder.buffered == 0


def test_many_frames_fed_one_byte_at_a_time_come_out_in_order():
    messages = [{"i": i, "data": bytes([i]) * i} for i in range(5)]
    data = b"".join(encode_frame(message) for message in messages)
    decoder = FrameDecoder()
    received = []
    for i in range(len(data)):
        decoder.feed(data[i : i + 1])
        received.extend(drain(decoder))
    assert received == messages


def test_a_frame_split_across_three_feeds_with_the_next_frame_in_the_last():
    first, second = encode_frame({"a": 1}), encode_frame({"b": 2})
    decoder = FrameDecoder()
    decoder.feed(first[:2])
    decoder.feed(first[2:6])
    assert decoder.next_frame() is NEED_DATA
    decoder.feed(first[6:] + second[:5])
    assert drain(decoder) == [{"a": 1}]
    decoder.feed(second[5:])
    assert drain(decoder) == [{"b": 2}]


def test_zero_length_frame_is_not_a_map():
    decoder = FrameDecoder()
    decoder.feed(b"\x00\x00\x00\x00")
    with pytest.raises(FrameError, match="undecodable"):
        decoder.next_frame()


# --- end of stream ---------------------------------------------------------------------------------------------


def test_eof_before_any_frame_is_a_clean_end():
    decoder = FrameDecoder()
    decoder.feed(b"")
    assert decoder.next_frame() is None
    assert decoder.next_frame() is None


def test_eof_cleanly_between_frames_gives_the_frames_then_none():
    decoder = FrameDecoder()
    decoder.feed(encode_frame({"a": 1}) + encode_frame({"b": 2}))
    decoder.feed(b"")  # the peer closed before we read anything
    assert decoder.next_frame() == {"a": 1}
    assert decoder.next_frame() == {"b": 2}
    assert decoder.next_frame() is None
    assert decoder.next_frame() is None


def test_repeated_eof_is_harmless():
    decoder = FrameDecoder()
    decoder.feed(b"")
    decoder.feed(b"")
    assert decoder.next_frame() is None


@pytest.mark.parametrize("cut", range(1, len(encode_frame({"data": b"hello"}))))
def test_eof_inside_a_frame_is_an_error(cut):
    data = encode_frame({"data": b"hello"})
    decoder = FrameDecoder()
    decoder.feed(data[:cut])
    assert decoder.next_frame() is NEED_DATA
    decoder.feed(b"")
    with pytest.raises(FrameError, match=rf"stream ended inside a frame \({cut} bytes pending\)"):
        decoder.next_frame()


def test_eof_inside_the_second_frame_gives_the_first_then_an_error():
    decoder = FrameDecoder()
    decoder.feed(encode_frame({"a": 1}) + encode_frame({"b": 2})[:-1])
    decoder.feed(b"")
    assert decoder.next_frame() == {"a": 1}
    with pytest.raises(FrameError, match="stream ended inside a frame"):
        decoder.next_frame()


def test_data_after_eof_is_refused_every_time():
    decoder = FrameDecoder()
    decoder.feed(b"")
    with pytest.raises(FrameError, match="data after end of stream"):
        decoder.feed(b"x")
    with pytest.raises(FrameError, match="data after end of stream"):
        decoder.feed(encode_frame({}))
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
    data = encode_frame(message)
    decoder = FrameDecoder(max_frame_size=len(data) - 4)
    decoder.feed(data)
    assert decoder.next_frame() == message


def test_the_maximum_can_be_raised_between_frames():
    # The supervisor's TCP listener reads a stranger's first frame (its Hello) under a small maximum, then raises it;
    # a large frame that came in the same read as the Hello is measured against the new maximum.
    small, large = encode_frame({"token": "t"}), encode_frame({"d": b"x" * 100})
    decoder = FrameDecoder(max_frame_size=len(small) - 4)
    decoder.feed(small + large)
    assert decoder.next_frame() == {"token": "t"}
    decoder.max_frame_size = len(large) - 4
    assert decoder.next_frame() == {"d": b"x" * 100}


def test_a_large_frame_under_the_small_maximum_fails():
    decoder = FrameDecoder(max_frame_size=16)
    decoder.feed(encode_frame({"d": b"x" * 100}))
    with pytest.raises(FrameError, match="exceeds the maximum of 16"):
        decoder.next_frame()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xc1", "undecodable"),  # 0xc1 is never used in msgpack
        (b"\x81\xa1", "undecodable"),  # the map is cut short inside the frame
        (b"\x80\x80", "undecodable"),  # two objects in one frame
        (b"\x81\x01\x02", "undecodable"),  # a map key that is not a string
        (b"\x81\x80\x01", "undecodable"),  # a map key that is a map
        (b"\x81\xa1k\xa1\xff", "undecodable"),  # a str that is not UTF-8
        (b"\x81\xa1k\xd4\xff\x00", "undecodable"),  # a malformed timestamp extension
        (b"\x91" * 100_000 + b"\x80", "undecodable"),  # nested too deep
        (b"\x01", "frame body is a int, not a map"),
        (b"\x91\x80", "frame body is a list, not a map"),
        (b"\xa3abc", "frame body is a str, not a map"),
        (b"\xc4\x01a", "frame body is a bytes, not a map"),
        (b"\xc0", "frame body is a NoneType, not a map"),
    ],
    ids=[
        "reserved-byte",
        "truncated-map",
        "extra-data",
        "int-key",
        "map-key",
        "bad-utf8",
        "bad-timestamp",
        "too-deep",
        "int",
        "array",
        "str",
        "bin",
        "nil",
    ],
)
def test_a_body_that_is_not_one_msgpack_map_is_an_error(body, reason):
    decoder = FrameDecoder()
    decoder.feed(frame_of(body))
    with pytest.raises(FrameError, match=reason):
        decoder.next_frame()


def test_a_bad_frame_after_a_good_one_still_delivers_the_good_one():
    decoder = FrameDecoder()
    decoder.feed(encode_frame({"ok": True}) + frame_of(b"\x01"))
    assert decoder.next_frame() == {"ok": True}
    with pytest.raises(FrameError):
        decoder.next_frame()


# --- errors are final ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [frame_of(b"\xc1"), frame_of(b"\x01"), b"\xff\xff\xff\xff"],
    ids=["undecodable", "not-a-map", "oversize"],
)
def test_errors_are_final(bad):
    decoder = FrameDecoder()
    decoder.feed(bad + encode_frame({"after": 1}))
    with pytest.raises(FrameError) as first:
        decoder.next_frame()
    # The decoder keeps raising the same error: from next_frame, and from feed whatever it is given.
    for _ in range(2):
        with pytest.raises(FrameError) as again:
            decoder.next_frame()
        assert str(again.value) == str(first.value)
    with pytest.raises(FrameError):
        decoder.feed(encode_frame({"more": 1}))
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


@pytest.mark.parametrize(
    "message",
    [
        {"t": 4, "data": b"x" * 65536},
        {"t": 4, "data": b"x" * 65535},
        {"t": 4, "data": b"\x00\xff" * 600_000},
        {"t": 1, "function": "function", "payload": b"p" * 6_000_000, "qualifier": None, "stream": True},
        {"t": 5, "outcome": "function_error", "body": b"b" * 100_000, "headers": {"Retry-After": "1"}},
        {f"k{i}": (b"v" * 70_000 if i % 3 == 0 else [i, str(i)]) for i in range(20)},
    ],
    ids=["64 KiB", "just under", "1.2 MB", "6 MB payload", "large body", "many fields"],
)
def test_large_bytes_values_are_framed_exactly_as_msgpack_packs_them(message: dict[str, Any]) -> None:
    # encode_frame joins the frame around a large bytes value instead of copying it twice: the bytes must be the ones
    # msgpack itself produces, and decode back to the message.
    body = msgpack.packb(message, use_bin_type=True)
    assert encode_frame(message) == len(body).to_bytes(4, "big") + body
    decoder = FrameDecoder()
    decoder.feed(encode_frame(message))
    assert decoder.next_frame() == message


def test_a_spliced_frame_over_the_maximum_is_refused() -> None:
    with pytest.raises(FrameError):
        encode_frame({"t": 4, "data": b"x" * (MAX_FRAME_SIZE + 1)})
