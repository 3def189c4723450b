"""HTTP/1.1 chunked transfer coding for streamed responses: bytes in, bytes out, no I/O.

A streamed ``/response`` body is a sequence of chunks (``<hex size>\\r\\n<data>\\r\\n``) ended by the last chunk
``0\\r\\n``, an optional trailer section (``Name: value\\r\\n`` lines) and ``\\r\\n``. The Runtime API reads the
error trailers ``Lambda-Runtime-Function-Error-Type`` and ``Lambda-Runtime-Function-Error-Body`` (base64).
"""

import base64
import re
from collections.abc import Iterable

ERROR_TYPE_TRAILER = "Lambda-Runtime-Function-Error-Type"
ERROR_BODY_TRAILER = "Lambda-Runtime-Function-Error-Body"
# The value of the `Trailer` request header announcing both error trailers.
TRAILER_HEADER_VALUE = f"{ERROR_TYPE_TRAILER}, {ERROR_BODY_TRAILER}"

LAST_CHUNK = b"0\r\n\r\n"
"""The end of a body without trailers."""

_UNSAFE_IN_FIELD_VALUE = re.compile(r"[^\t\x20-\x7e\x80-\xff]")


def encode_chunk(data: bytes) -> bytes:
    """Frame one non-empty piece of body as one chunk (a zero-length chunk would end the body)."""
    if not data:
        raise ValueError("a chunk must not be empty: a zero-length chunk ends the body")
    return b"%x\r\n%b\r\n" % (len(data), data)


def field_value(value: str) -> str:
    """``value`` made safe as an HTTP field value: control and non-Latin-1 characters become ``?``."""
    return _UNSAFE_IN_FIELD_VALUE.sub("?", value).strip()


def encode_trailers(fields: Iterable[tuple[str, str]]) -> bytes:
    """The end of a body: the last chunk, then ``fields`` as trailers, then the empty line."""
    lines = b"".join(f"{name}: {field_value(value)}\r\n".encode("latin-1") for name, value in fields)
    return b"0\r\n" + lines + b"\r\n"


def encode_error_trailers(error_type: str, error_body: bytes) -> bytes:
    """The end of a body that failed part way: the error type and the base64 of the JSON error body."""
    return encode_trailers(
        (
            (ERROR_TYPE_TRAILER, error_type),
            (ERROR_BODY_TRAILER, base64.b64encode(error_body).decode("ascii")),
        )
    )
