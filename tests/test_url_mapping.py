"""Function URL mapping without processes: the payload-2.0 event, and results and preludes back to HTTP."""

from __future__ import annotations

import base64
import json

import pytest

from invoke_api.url_event import UrlRequest, build_event, is_text
from invoke_api.url_response import (
    FAILURE,
    BadResponse,
    HttpResponse,
    from_buffered,
    from_prelude,
    split_prelude,
)

NOW = 1583348638.390  # 2020-03-04T19:03:58.390Z


def request(**overrides: object) -> UrlRequest:
    fields: dict[str, object] = {
        "method": "POST",
        "raw_path": "/my/path%20x",
        "raw_query": "parameter1=value1&parameter1=value2&parameter2=value&empty=",
        "headers": [
            ("Host", "abc123.lambda-url.us-east-1.on.aws"),
            ("User-Agent", "agent"),
            ("X-Multi", "a"),
            ("x-multi", "b"),
            ("Cookie", "cookie1=1; cookie2=2"),
            ("Connection", "keep-alive"),
            ("Content-Type", "application/json"),
        ],
        "body": b'{"hello": "client"}',
        "source_ip": "123.123.123.123",
        "server_port": "8081",
    }
    fields.update(overrides)
    return UrlRequest(**fields)  # type: ignore[arg-type]


def test_event_fields() -> None:
    event = build_event(request(), request_id="req-1", trace_id="Root=1-x", now=NOW)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/my/path%20x"
    assert event["rawQueryString"] == "parameter1=value1&parameter1=value2&parameter2=value&empty="
    assert event["cookies"] == ["cookie1=1", "cookie2=2"]
    assert event["headers"] == {
        "host": "abc123.lambda-url.us-east-1.on.aws",
        "user-agent": "agent",
        "x-multi": "a,b",
        "content-type": "application/json",
        "x-forwarded-for": "123.123.123.123",
        "x-forwarded-proto": "http",
        "x-forwarded-port": "8081",
        "x-amzn-trace-id": "Root=1-x",
    }
    assert event["queryStringParameters"] == {"parameter1": "value1,value2", "parameter2": "value", "empty": ""}
    assert event["requestContext"] == {
        "accountId": "anonymous",
        "apiId": "abc123",
        "domainName": "abc123.lambda-url.us-east-1.on.aws",
        "domainPrefix": "abc123",
        "http": {
            "method": "POST",
            "path": "/my/path%20x",
            "protocol": "HTTP/1.1",
            "sourceIp": "123.123.123.123",
            "userAgent": "agent",
        },
        "requestId": "req-1",
        "routeKey": "$default",
        "stage": "$default",
        "time": "04/Mar/2020:19:03:58 +0000",
        "timeEpoch": 1583348638390,
    }
    assert event["body"] == '{"hello": "client"}'
    assert event["isBase64Encoded"] is False
    json.dumps(event)  # all of it is JSON


def test_no_body_no_query_no_cookies() -> None:
    event = build_event(
        request(method="GET", raw_query="", body=b"", headers=[("Host", "127.0.0.1:8081")]),
        request_id="r",
        trace_id="t",
        now=NOW,
    )
    assert "body" not in event
    assert "cookies" not in event
    assert "queryStringParameters" not in event
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["domainPrefix"] == "127.0.0.1"
    assert event["requestContext"]["http"]["method"] == "GET"


@pytest.mark.parametrize(
    ("content_type", "body", "text"),
    [
        ("text/plain", b"text", True),
        ("application/json; charset=utf-8", '{"é": 1}'.encode(), True),
        ("application/xml", b"<a/>", True),
        ("text/plain", b"\xff\xfe", False),  # not UTF-8
        ("application/octet-stream", b"abc", False),
        ("multipart/form-data; boundary=x", b"--x\r\n", False),
        ("", b"abc", False),
    ],
)
def test_binary_bodies_are_base64(content_type: str, body: bytes, text: bool) -> None:
    assert is_text(content_type, body) is text
    event = build_event(request(headers=[("Content-Type", content_type)], body=body), request_id="r", trace_id="t")
    assert event["isBase64Encoded"] is not text
    assert event["body"] == (body.decode() if text else base64.b64encode(body).decode())


# The cases AWS answered in LocalStack's AWS-validated test_lambda_url_invocation recordings (python3.12 handler
# returning the value): status 200, Content-Type application/json, this body.
@pytest.mark.parametrize(
    ("result", "body"),
    [
        ({"hello": "world"}, b'{"hello":"world"}'),
        ({"statusCode": 200, "body": "body123"}, b"body123"),
        ({"statusCode": 200, "body": '{"hello": "world"}'}, b'{"hello": "world"}'),
        (["hello", 3, True], b'["hello",3,true]'),
        ("hello", b"hello"),
        (3, b"3"),
        (3.1, b"3.1"),
        (True, b"true"),
    ],
)
def test_buffered_results_as_aws_answered_them(result: object, body: bytes) -> None:
    payload = json.dumps(result).encode()  # as a Python runtime marshals it, with spaces
    assert from_buffered(payload) == HttpResponse(200, [("Content-Type", "application/json")], body)


def test_a_full_response() -> None:
    result = {
        "statusCode": "418",
        "headers": {"Content-Type": "text/plain", "X-One": "1", "X-Both": "from headers", "X-Num": 7},
        "multiValueHeaders": {"X-Both": ["m1", "m2"], "X-List": ["a", "b"]},
        "cookies": ["a=1; Path=/", "b=2; HttpOnly"],
        "body": "i'm a teapot",
    }
    response = from_buffered(json.dumps(result).encode())
    assert response.status == 418
    assert response.body == b"i'm a teapot"
    assert response.headers == [
        ("Content-Type", "text/plain"),
        ("X-One", "1"),
        ("X-Num", "7"),
        ("X-Both", "m1"),
        ("X-Both", "m2"),
        ("X-List", "a"),
        ("X-List", "b"),
        ("Set-Cookie", "a=1; Path=/"),
        ("Set-Cookie", "b=2; HttpOnly"),
    ]


def test_base64_bodies_and_framing_headers() -> None:
    data = bytes(range(256))
    result = {
        "statusCode": 201,
        "headers": {"content-type": "image/png", "Content-Length": "1", "Transfer-Encoding": "chunked"},
        "body": base64.b64encode(data).decode(),
        "isBase64Encoded": True,
    }
    assert from_buffered(json.dumps(result).encode()) == HttpResponse(201, [("content-type", "image/png")], data)
    # a response without a body, and one whose body is not a string
    assert from_buffered(b'{"statusCode": 204}') == HttpResponse(204, [("Content-Type", "application/json")])
    assert from_buffered(b'{"statusCode": 200, "body": {"a": 1}}').body == b'{"a":1}'


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"",
        b'{"statusCode": "abc"}',
        b'{"statusCode": 99}',
        b'{"statusCode": true}',
        b'{"statusCode": 200, "headers": ["a"]}',
        b'{"statusCode": 200, "headers": {"X": {"nested": 1}}}',
        b'{"statusCode": 200, "headers": {"Bad Name": "v"}}',
        b'{"statusCode": 200, "headers": {"X": "line\\r\\nbreak"}}',
        b'{"statusCode": 200, "cookies": "a=1"}',
        b'{"statusCode": 200, "multiValueHeaders": {"X": "a"}}',
        b'{"statusCode": 200, "body": "!!", "isBase64Encoded": true}',
    ],
)
def test_what_is_no_response(payload: bytes) -> None:
    with pytest.raises(BadResponse):
        from_buffered(payload)


def test_failure_is_lambdas_502() -> None:
    assert FAILURE.status == 502
    assert FAILURE.body == b"Internal Server Error"


def test_preludes() -> None:
    assert split_prelude(b'{"statusCode":200}\0\0\0\0\0\0\0') is None  # seven NULs: not yet
    assert split_prelude(b'{"statusCode":201}' + bytes(8) + b"data: 1\n\n") == (b'{"statusCode":201}', b"data: 1\n\n")
    prelude = json.dumps(
        {"statusCode": 201, "headers": {"Content-Type": "text/event-stream"}, "cookies": ["probe=1; Path=/"]}
    ).encode()
    assert from_prelude(prelude) == HttpResponse(
        201, [("Content-Type", "text/event-stream"), ("Set-Cookie", "probe=1; Path=/")]
    )
    assert from_prelude(b"") == HttpResponse(200, [("Content-Type", "application/octet-stream")])
    assert from_prelude(b"{}") == HttpResponse(200, [("Content-Type", "application/octet-stream")])
    for bad in (b"[1]", b"{", b'{"statusCode": "x"}'):
        with pytest.raises(BadResponse):
            from_prelude(bad)
