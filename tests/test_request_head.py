"""Reading a request's head whole (invoke_api.worker.read_head): up to its empty line, within pywsgi's limits."""

from __future__ import annotations

import io

import pytest

from invoke_api.worker import MAX_HEADER_FIELDS, RequestRefused, read_head


def test_a_head_is_read_up_to_its_empty_line_and_not_beyond() -> None:
    stream = io.BytesIO(b"Host: x\r\nContent-Length: 2\r\n\r\n{}")
    assert read_head(stream) == b"Host: x\r\nContent-Length: 2\r\n\r\n"
    assert stream.read() == b"{}"
    assert read_head(io.BytesIO(b"\r\n")) == b"\r\n"  # no fields at all
    assert read_head(io.BytesIO(b"Host: x\n\n")) == b"Host: x\n\n"


@pytest.mark.parametrize("head", [b"", b"Host: x\r\n", b"Host: x\r\nX-Cut: sh", b"Host: x\r\n\r"])
def test_a_head_cut_short_is_refused(head: bytes) -> None:
    with pytest.raises(RequestRefused, match="ended in the middle of the request's headers"):
        read_head(io.BytesIO(head))


def test_header_fields_are_counted_and_lines_measured() -> None:
    fields = b"".join(b"X-%d: v\r\n" % n for n in range(MAX_HEADER_FIELDS))
    assert read_head(io.BytesIO(fields + b"\r\n")).count(b"\r\n") == MAX_HEADER_FIELDS + 1
    with pytest.raises(RequestRefused, match="more than 100 header fields"):
        read_head(io.BytesIO(fields + b"X-More: v\r\n\r\n"))
    with pytest.raises(RequestRefused, match="longer than 65536 bytes"):
        read_head(io.BytesIO(b"X-Long: " + b"v" * 65536 + b"\r\n\r\n"))
