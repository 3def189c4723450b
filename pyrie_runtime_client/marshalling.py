"""Events in, results out: JSON as awslambdaric's ``LambdaMarshaller`` does it, with the standard library.

- An event whose ``Content-Type`` is JSON (or absent) is decoded with ``json.loads``; any other content type is
  handed to the handler as raw bytes. An undecodable event is a ``Runtime.UnmarshalError``.
- A ``bytes`` result is sent as is with content type ``application/unknown``; anything else is JSON-encoded
  (``allow_nan``; ``ensure_ascii`` except on the python3.12+ execution environments, as awslambdaric) and sent as
  ``application/json``. ``Decimal`` is encoded as a number. What cannot be encoded is a ``Runtime.MarshalError``.
"""

import json
import math
import os
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .function_errors import MARSHAL_ERROR, UNMARSHAL_ERROR, FaultError

JSON_CONTENT_TYPE = "application/json"
BYTES_CONTENT_TYPE = "application/unknown"

# The execution environments where awslambdaric writes non-ASCII characters as they are.
_UNESCAPED_UNICODE_ENVIRONMENTS = frozenset(
    {"AWS_Lambda_python3.12", "AWS_Lambda_python3.13", "AWS_Lambda_python3.14", "AWS_Lambda_python3.15"}
)


def _encode_other(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        if obj.is_nan():
            return math.nan
        exponent = obj.as_tuple().exponent  # "F" for infinities
        return int(obj) if isinstance(exponent, int) and exponent >= 0 else float(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _is_json(content_type: str | None) -> bool:
    if content_type is None or content_type == JSON_CONTENT_TYPE:
        return True
    return content_type.partition(";")[0].strip().lower() == JSON_CONTENT_TYPE


class Marshaller:
    """Decodes events and encodes results; one per process (the encoder is built once)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.ensure_ascii = env.get("AWS_EXECUTION_ENV") not in _UNESCAPED_UNICODE_ENVIRONMENTS
        self._encode = json.JSONEncoder(ensure_ascii=self.ensure_ascii, allow_nan=True, default=_encode_other).encode

    def unmarshal(self, body: bytes, content_type: str | None) -> Any:
        """The event given to the handler."""
        if not _is_json(content_type):
            return body
        try:
            return json.loads(body)
        except Exception as exc:
            raise FaultError(UNMARSHAL_ERROR, f"Unable to unmarshal input: {exc}") from None

    def marshal(self, result: Any) -> tuple[bytes, str]:
        """The ``/response`` body and content type of a buffered result."""
        if isinstance(result, bytes):
            return result, BYTES_CONTENT_TYPE
        try:
            return self._encode(result).encode("utf-8"), JSON_CONTENT_TYPE
        except Exception as exc:
            raise FaultError(MARSHAL_ERROR, f"Unable to marshal response: {exc}") from None

    def to_json(self, obj: Any) -> bytes:
        """``obj`` (an error body, a log record…) as JSON, never failing on odd values."""
        try:
            return self._encode(obj).encode("utf-8", "backslashreplace")
        except (TypeError, ValueError):
            return json.dumps(obj, default=repr).encode("utf-8", "backslashreplace")
