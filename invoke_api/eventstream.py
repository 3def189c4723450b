"""The ``application/vnd.amazon.eventstream`` encoding of InvokeWithResponseStream (lambda-protocols.md §b).

Pure: bytes out, no I/O. A message is a 12-byte prelude (total length, headers length, CRC32 of those 8 bytes),
the headers, the payload and the CRC32 of everything before it (https://smithy.io/2.0/aws/amazon-eventstream.html;
botocore ``eventstream.py``). Lambda's stream has two events: ``PayloadChunk`` (raw bytes, one per runtime write)
and ``InvokeComplete`` (a JSON object with ``ErrorCode``, ``ErrorDetails`` and ``LogResult`` when they apply).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Mapping
from typing import Final

try:  # ISA-L's CRC32 is about three times zlib's: the checksum is most of what encoding a large chunk costs
    from isal.isal_zlib import crc32
except ImportError:  # pragma: no cover - isal is a dependency; zlib computes the same checksum
    from zlib import crc32

__all__ = [
    "CONTENT_TYPE",
    "MAX_PAYLOAD",
    "encode_message",
    "invoke_complete",
    "payload_chunks",
]

CONTENT_TYPE: Final = "application/vnd.amazon.eventstream"

# botocore refuses a message whose payload is over 24 MiB (_MAX_PAYLOAD_LENGTH): bigger writes are split.
MAX_PAYLOAD: Final = 24 * 1024 * 1024
_MAX_HEADERS: Final = 128 * 1024  # botocore's _MAX_HEADERS_LENGTH
_STRING: Final = 7  # the header value type of a UTF-8 string (uint16 length, then the bytes)
_PRELUDE: Final = struct.Struct(">II")
_CRC: Final = struct.Struct(">I")


def encode_headers(headers: Mapping[str, str]) -> bytes:
    """String-valued headers in their wire form: name length (uint8), name, type 7, value length (uint16), value."""
    parts = []
    for name, value in headers.items():
        name_bytes, value_bytes = name.encode(), value.encode()
        if not 0 < len(name_bytes) < 256 or len(value_bytes) > 0xFFFF:
            raise ValueError(f"event-stream header {name!r} does not fit its length fields")
        parts += [bytes((len(name_bytes),)), name_bytes, struct.pack(">BH", _STRING, len(value_bytes)), value_bytes]
    encoded = b"".join(parts)
    if len(encoded) > _MAX_HEADERS:
        raise ValueError(f"event-stream headers of {len(encoded)} bytes are over {_MAX_HEADERS}")
    return encoded


def encode_message(headers: Mapping[str, str] | bytes, payload: bytes) -> bytes:
    """One event-stream message; ``headers`` as a mapping of strings or already encoded (``encode_headers``)."""
    header_bytes = headers if isinstance(headers, bytes) else encode_headers(headers)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"an event-stream payload of {len(payload)} bytes is over {MAX_PAYLOAD}")
    lengths = _PRELUDE.pack(12 + len(header_bytes) + len(payload) + 4, len(header_bytes))
    prelude_crc = crc32(lengths)
    message_crc = crc32(payload, crc32(header_bytes, crc32(_CRC.pack(prelude_crc), prelude_crc)))
    return b"".join((lengths, _CRC.pack(prelude_crc), header_bytes, payload, _CRC.pack(message_crc)))


_PAYLOAD_CHUNK: Final = encode_headers(
    {":event-type": "PayloadChunk", ":content-type": "application/octet-stream", ":message-type": "event"}
)
_INVOKE_COMPLETE: Final = encode_headers(
    {":event-type": "InvokeComplete", ":content-type": "application/json", ":message-type": "event"}
)


def payload_chunks(data: bytes) -> Iterator[bytes]:
    """``PayloadChunk`` events carrying ``data``: one, or several when it is over ``MAX_PAYLOAD``."""
    if len(data) <= MAX_PAYLOAD:
        yield encode_message(_PAYLOAD_CHUNK, data)
        return
    view = memoryview(data)
    for start in range(0, len(data), MAX_PAYLOAD):
        yield encode_message(_PAYLOAD_CHUNK, bytes(view[start : start + MAX_PAYLOAD]))


def invoke_complete(
    error_code: str | None = None, error_details: str | None = None, log_result: str | None = None
) -> bytes:
    """The ``InvokeComplete`` event that ends every stream; ``{}`` for a success without a log tail."""
    fields = {"ErrorCode": error_code, "ErrorDetails": error_details, "LogResult": log_result}
    body = {name: value for name, value in fields.items() if value is not None}
    return encode_message(_INVOKE_COMPLETE, json.dumps(body, separators=(",", ":")).encode())
