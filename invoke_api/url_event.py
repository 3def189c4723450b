"""The payload-format-2.0 event a Function URL request becomes (lambda-protocols.md §d).

Pure: an ``UrlRequest`` in, the event (a JSON-ready dict) out. Field by field as
https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html ("Request payload format") shows it: header names
lower-cased with repeated headers comma-joined, the ``Cookie`` header moved to ``cookies``, repeated query
parameters comma-joined, a binary body base64-encoded. What the docs leave open follows what AWS answered in the
recordings of LocalStack's AWS-validated ``TestLambdaURL`` tests (``tests/aws/services/lambda_/test_lambda.py``):
the function sees ``host``, ``content-length`` and the ``x-forwarded-*`` headers, a ``text/plain`` or JSON body
as text and a multipart body base64-encoded, and no ``body`` key when the request has none.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl

__all__ = ["UrlRequest", "build_event", "is_text"]

# Not forwarded to the function: they describe the connection to pyrie, not the request (RFC 9110 §7.6.1).
HOP_BY_HOP: Final = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
)
_TEXT_SUBTYPES: Final = ("json", "xml", "javascript", "yaml", "csv", "html")
_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, slots=True)
class UrlRequest:
    method: str
    raw_path: str  # as the client sent it, still percent-encoded
    raw_query: str  # without the "?"
    headers: Sequence[tuple[str, str]]  # (name, value) as received; repeated names allowed
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"
    server_port: str = ""


def build_event(request: UrlRequest, *, request_id: str, trace_id: str, now: float | None = None) -> dict[str, Any]:
    """The event the function receives for ``request``; ``now`` is the arrival time (epoch seconds)."""
    arrived = time.time() if now is None else now
    headers: dict[str, str] = {}
    for name, value in request.headers:
        key = name.lower()
        if key in HOP_BY_HOP:
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    cookie_header = headers.pop("cookie", "")
    headers.setdefault("x-forwarded-for", request.source_ip)
    headers.setdefault("x-forwarded-proto", "http")
    if request.server_port:
        headers.setdefault("x-forwarded-port", request.server_port)
    headers["x-amzn-trace-id"] = trace_id
    host = headers.get("host", "")
    domain_prefix = _domain_prefix(host)

    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request.raw_path or "/",
        "rawQueryString": request.raw_query,
    }
    cookies = [cookie.strip() for cookie in cookie_header.split(";") if cookie.strip()]
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    query = _query_parameters(request.raw_query)
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": "anonymous",  # AuthType NONE
        "apiId": domain_prefix,
        "domainName": host,
        "domainPrefix": domain_prefix,
        "http": {
            "method": request.method,
            "path": request.raw_path or "/",
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": _clf_time(arrived),
        "timeEpoch": int(arrived * 1000),
    }
    if request.body:
        text = is_text(headers.get("content-type", ""), request.body)
        event["body"] = request.body.decode() if text else base64.b64encode(request.body).decode("ascii")
        event["isBase64Encoded"] = not text
    else:
        event["isBase64Encoded"] = False
    return event


def is_text(content_type: str, body: bytes) -> bool:
    """Whether a body goes to the function as text: a textual content type and valid UTF-8, else base64."""
    media = content_type.partition(";")[0].strip().lower()
    main, _, sub = media.partition("/")
    if main != "text" and not any(kind in sub for kind in _TEXT_SUBTYPES):
        return False
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


def _query_parameters(raw_query: str) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        parameters[name] = f"{parameters[name]},{value}" if name in parameters else value
    return parameters


def _domain_prefix(host: str) -> str:
    """``<url-id>`` of ``<url-id>.lambda-url.<region>.on.aws``: the host's first label (the whole host for an IP)."""
    name = host.rpartition(":")[0] if host.count(":") == 1 else host
    if not name or name.replace(".", "").isdigit() or name.startswith("["):
        return name
    return name.split(".")[0]


def _clf_time(epoch: float) -> str:
    """``12/Mar/2020:19:03:58 +0000``, whatever the locale."""
    t = time.gmtime(epoch)
    return f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
