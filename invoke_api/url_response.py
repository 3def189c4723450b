"""What a function's answer means to a Function URL caller: status, headers and body (lambda-protocols.md §c, §d).

Pure: bytes in, an ``HttpResponse`` out (or ``BadResponse``, which the caller turns into Lambda's 502).

- A buffered result (https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html, "Response payload format"):
  a JSON object with ``statusCode`` is a response (``headers``, ``multiValueHeaders``, ``cookies`` as one
  ``Set-Cookie`` each, ``body``, ``isBase64Encoded``); any other JSON value is the body of a 200
  ``application/json`` response. How that body is written follows what AWS answered in the recordings of
  LocalStack's AWS-validated ``test_lambda_url_invocation`` cases: a string is sent as its text (``"hello"`` gives
  ``hello``), anything else as compact JSON (``{"hello": "world"}`` gives the 17 bytes ``{"hello":"world"}``,
  ``["hello", 3, True]`` gives ``["hello",3,true]``), and a response without a ``content-type`` header is
  ``application/json``. A result that is not JSON, or a ``statusCode`` that is not a status, is a 502 as an invalid
  proxy response is for API Gateway (https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html).
- A streamed result of content type ``application/vnd.awslambda.http-integration-response`` starts with a JSON
  prelude and 8 NUL bytes (aws-lambda-ric's ``HttpResponseStream.from``): the prelude gives the status (default 200),
  headers and cookies, the rest is the body.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "FAILURE",
    "HTTP_INTEGRATION_CONTENT_TYPE",
    "PRELUDE_END",
    "BadResponse",
    "HttpResponse",
    "from_buffered",
    "from_prelude",
    "split_prelude",
]

HTTP_INTEGRATION_CONTENT_TYPE: Final = "application/vnd.awslambda.http-integration-response"
PRELUDE_END: Final = b"\0" * 8
DEFAULT_CONTENT_TYPE: Final = "application/json"
# A streamed body's content type when its prelude names none: the runtime's own default for a stream. (What Lambda
# sends here is not documented; this is pyrie's choice.)
STREAM_CONTENT_TYPE: Final = "application/octet-stream"

# Headers the function cannot set: pyrie frames the body itself (RFC 9110 §7.6.1 and the length or chunking).
_FRAMING: Final = frozenset(
    {"connection", "content-length", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
)
_TOKEN: Final = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_FIELD_VALUE: Final = re.compile(r"^[\t\x20-\x7e\x80-\xff]*$")  # what gunicorn can write (latin-1)


class BadResponse(ValueError):
    """The function's answer cannot be turned into an HTTP response: the caller gets Lambda's 502."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


# Lambda's answer when the function failed (error, timeout, crash) or answered something that is no response:
# 502 and the text "Internal Server Error", as AWS answered in LocalStack's AWS-validated
# test_lambda_url_invocation_exception. The content type is pyrie's choice (not recorded).
FAILURE: Final = HttpResponse(502, [("Content-Type", DEFAULT_CONTENT_TYPE)], b"Internal Server Error")


def from_buffered(payload: bytes) -> HttpResponse:
    """The response for a buffered result."""
    try:
        result = json.loads(payload)
    except ValueError:
        raise BadResponse("the result is not JSON") from None
    if isinstance(result, dict) and "statusCode" in result:
        status, headers = _head(result, DEFAULT_CONTENT_TYPE)
        return HttpResponse(status, headers, _body(result))
    body = result if isinstance(result, str) else _compact(result)
    return HttpResponse(200, [("Content-Type", DEFAULT_CONTENT_TYPE)], body.encode())


def split_prelude(data: bytes) -> tuple[bytes, bytes] | None:
    """``(prelude, rest)`` once ``data`` holds the 8 NUL bytes that end the prelude, else ``None``."""
    prelude, separator, rest = data.partition(PRELUDE_END)
    return (prelude, rest) if separator else None


def from_prelude(prelude: bytes) -> HttpResponse:
    """The status and headers of a streamed response from its prelude (the body follows separately)."""
    try:
        fields = json.loads(prelude) if prelude.strip() else {}
    except ValueError:
        raise BadResponse("the HTTP prelude is not JSON") from None
    if not isinstance(fields, dict):
        raise BadResponse("the HTTP prelude is not a JSON object")
    status, headers = _head(fields, STREAM_CONTENT_TYPE)
    return HttpResponse(status, headers)


def _head(fields: dict[str, Any], default_content_type: str) -> tuple[int, list[tuple[str, str]]]:
    status = _status(fields.get("statusCode", 200))
    # API Gateway's rule for both kinds (set-up-lambda-proxy-integrations.html, "Output format"): the lists are
    # merged; a name given in multiValueHeaders takes its values from there only.
    multi = _mapping(fields.get("multiValueHeaders"), "multiValueHeaders")
    multi_names = {name.lower() for name in multi}
    headers = [
        (name, _value(value))
        for name, value in _mapping(fields.get("headers"), "headers").items()
        if name.lower() not in multi_names
    ]
    for name, values in multi.items():
        if not isinstance(values, list):
            raise BadResponse(f"multiValueHeaders[{name!r}] is not a list")
        headers += [(name, _value(value)) for value in values]
    cookies = fields.get("cookies") or []
    if not isinstance(cookies, list):
        raise BadResponse("cookies is not a list")
    headers += [("Set-Cookie", _value(cookie)) for cookie in cookies]
    for name, value in headers:
        if not _TOKEN.match(name) or not _FIELD_VALUE.match(value):
            raise BadResponse(f"invalid header {name!r}: {value!r}")
    headers = [(name, value) for name, value in headers if name.lower() not in _FRAMING]
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.insert(0, ("Content-Type", default_content_type))
    return status, headers


def _status(value: Any) -> int:
    # AWS accepts the status as a number or a numeric string (LocalStack's AWS-validated
    # test_lambda_url_headers_and_status: "418" gives 418).
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadResponse(f"statusCode {value!r} is not a number")
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise BadResponse(f"statusCode {value!r} is not a number")
    status = int(value)
    if not 200 <= status <= 599:
        raise BadResponse(f"statusCode {status} is not a final HTTP status")
    return status


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadResponse(f"{what} is not a JSON object")
    return value


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    raise BadResponse(f"header value {value!r} is not a string")


def _body(result: dict[str, Any]) -> bytes:
    body = result.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        return _compact(body).encode()
    if result.get("isBase64Encoded") is True:
        try:
            return base64.b64decode(body, validate=True)
        except binascii.Error:
            raise BadResponse("body is not valid base64") from None
    return body.encode()


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
