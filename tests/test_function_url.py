"""Function URLs over real sockets: any method and path becomes a payload-2.0 event; buffered results map back as
Lambda maps them; streamed results with the HTTP prelude stream to the client as they are written."""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from supervisor import cli
from tests.conftest import StartPyrie
from tests.cpu_wait import MachineWait, assert_on_time, assert_one_by_one
from tests.harness import INVOKE_PATH, RAW_RUNTIME, Pyrie, free_port
from tests.streaming import stream_invoke
from tests.test_lifecycle import addresses, run_pyrie
from tests.test_streaming_node import NODE_RIC, NODE_SSE

FUNCTIONS = Path(__file__).parent / "functions"


class UrlPyrie:
    """pyrie with a Function URL listener on a free port."""

    def __init__(self, start_pyrie: StartPyrie, *args: str, **kwargs: Any) -> None:
        self.url_port = free_port()
        self.pyrie: Pyrie = start_pyrie("--function-url-address", f"127.0.0.1:{self.url_port}", *args, **kwargs)
        self.url = f"http://127.0.0.1:{self.url_port}"

    def request(self, method: str, path: str = "/", **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.pyrie.session.request(method, self.url + path, **kwargs)

    def result(self, result: object) -> requests.Response:
        """Have web.result_from_body return ``result``."""
        return self.request("POST", "/", data=json.dumps(result), headers={"Content-Type": "application/json"})


@pytest.fixture
def results(start_pyrie: StartPyrie) -> UrlPyrie:
    return UrlPyrie(start_pyrie, "web.result_from_body", cwd=FUNCTIONS)


def test_a_request_becomes_a_payload_2_0_event(start_pyrie: StartPyrie) -> None:
    server = UrlPyrie(start_pyrie, "web.echo_event", cwd=FUNCTIONS)
    before = time.time()
    response = server.request(
        "PATCH",
        "/some/path%2Fx?a=1&a=2&b=&c=%20d",
        data=b'{"hello": "url"}',
        headers={
            "Content-Type": "application/json",
            "User-Agent": "tester/1",
            "X-Custom": "Value",
            "Cookie": "k1=v1; k2=v2",
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Amzn-RequestId"]
    event = response.json()
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/some/path%2Fx"
    assert event["rawQueryString"] == "a=1&a=2&b=&c=%20d"
    assert event["queryStringParameters"] == {"a": "1,2", "b": "", "c": " d"}
    assert event["cookies"] == ["k1=v1", "k2=v2"]
    headers = event["headers"]
    assert headers["x-custom"] == "Value"
    assert headers["user-agent"] == "tester/1"
    assert headers["content-type"] == "application/json"
    assert headers["host"] == f"127.0.0.1:{server.url_port}"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-amzn-trace-id"].startswith("Root=1-")
    assert "cookie" not in headers
    assert all(name == name.lower() for name in headers)
    context = event["requestContext"]
    assert context["http"] == {
        "method": "PATCH",
        "path": "/some/path%2Fx",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "tester/1",
    }
    assert (context["routeKey"], context["stage"], context["domainName"]) == (
        "$default",
        "$default",
        f"127.0.0.1:{server.url_port}",
    )
    assert re.fullmatch(r"[0-9a-f-]{36}", context["requestId"])
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", context["time"])
    assert before * 1000 - 1000 <= context["timeEpoch"] <= time.time() * 1000 + 1000
    assert (event["body"], event["isBase64Encoded"]) == ('{"hello": "url"}', False)


def test_binary_bodies_reach_the_function_base64_encoded(start_pyrie: StartPyrie) -> None:
    server = UrlPyrie(start_pyrie, "web.echo_event", cwd=FUNCTIONS)
    data = bytes(range(256))
    event = server.request("PUT", "/upload", data=data, headers={"Content-Type": "application/octet-stream"}).json()
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == data
    event = server.request("GET", "/").json()
    assert "body" not in event and event["isBase64Encoded"] is False
    assert "queryStringParameters" not in event and "cookies" not in event


@pytest.mark.parametrize(
    ("result", "body"),
    [
        ({"hello": "world"}, b'{"hello":"world"}'),
        ({"statusCode": 200, "body": "body123"}, b"body123"),
        (["hello", 3, True], b'["hello",3,true]'),
        ("hello", b"hello"),
        (3.1, b"3.1"),
        (True, b"true"),
    ],
)
def test_results_without_a_status_are_200_json(results: UrlPyrie, result: object, body: bytes) -> None:
    response = results.result(result)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.content == body


def test_a_response_result_maps_to_status_headers_cookies_and_body(results: UrlPyrie) -> None:
    response = results.result(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "text/plain", "X-Custom": "yes"},
            "multiValueHeaders": {"X-Multi": ["one", "two"]},
            "cookies": ["a=1; Path=/", "b=2; HttpOnly"],
            "body": "created",
        }
    )
    assert response.status_code == 201
    assert response.content == b"created"
    assert response.headers["Content-Type"] == "text/plain"
    assert response.headers["X-Custom"] == "yes"
    assert response.raw.headers.getlist("X-Multi") == ["one", "two"]
    assert response.raw.headers.getlist("Set-Cookie") == ["a=1; Path=/", "b=2; HttpOnly"]
    assert response.cookies.get("a") == "1" and response.cookies.get("b") == "2"


def test_a_base64_body_is_decoded(results: UrlPyrie) -> None:
    data = bytes(range(256)) * 4
    body = base64.b64encode(data).decode()
    response = results.result(
        {"statusCode": 200, "headers": {"Content-Type": "image/png"}, "body": body, "isBase64Encoded": True}
    )
    assert response.headers["Content-Type"] == "image/png"
    assert response.content == data


@pytest.mark.parametrize("result", [{"statusCode": "teapot"}, {"statusCode": 200, "headers": {"X": "a\r\nb"}}])
def test_a_result_that_is_no_response_is_502(results: UrlPyrie, result: object) -> None:
    response = results.result(result)
    assert response.status_code == 502
    assert response.content == b"Internal Server Error"


def test_a_function_error_is_502(start_pyrie: StartPyrie) -> None:
    server = UrlPyrie(start_pyrie, "handlers.exception", cwd=FUNCTIONS)
    response = server.request("GET", "/")
    assert response.status_code == 502
    assert response.content == b"Internal Server Error"
    assert response.headers["X-Amzn-RequestId"]


def test_a_timeout_is_502(start_pyrie: StartPyrie) -> None:
    server = UrlPyrie(start_pyrie, "handlers.sleep", cwd=FUNCTIONS, extra_env={"AWS_LAMBDA_FUNCTION_TIMEOUT": "1"})
    response = server.request("GET", "/")
    assert response.status_code == 502
    assert response.content == b"Internal Server Error"


def test_a_throttle_is_429(start_pyrie: StartPyrie) -> None:
    server = UrlPyrie(start_pyrie, "--max-concurrency", "1", "handlers.sleep", cwd=FUNCTIONS)
    busy = threading.Thread(target=server.request, args=("GET", "/"))
    busy.start()
    try:
        server.pyrie.wait_for_output("START RequestId")
        response = server.request("GET", "/")
        assert response.status_code == 429
        assert response.headers["x-amzn-ErrorType"] == "TooManyRequestsException"
        assert response.json() == {"Message": "Rate Exceeded."}
    finally:
        busy.join(30)


def test_an_oversize_request_is_413(results: UrlPyrie) -> None:
    response = results.request("POST", "/", data=b"x" * (6_291_456 + 1))
    assert response.status_code == 413
    assert response.headers["x-amzn-ErrorType"] == "RequestEntityTooLargeException"
    assert "6291456" in response.json()["Message"]
    results.pyrie.wait_for_stderr("function URL request refused: 413 RequestEntityTooLargeException")


def test_a_prelude_stream_becomes_status_headers_and_a_streamed_body(start_pyrie: StartPyrie) -> None:
    server = UrlPyrie(start_pyrie, "web.http_ticks", cwd=FUNCTIONS)
    with MachineWait() as machine:
        received = stream_invoke(server.url_port, "/?count=4&interval=0.2&status=201")
    head = received.head.decode()
    assert head.startswith("HTTP/1.1 201 Created\r\n")
    assert "Content-Type: text/event-stream\r\n" in head
    assert "X-Tick: yes\r\n" in head
    assert "Set-Cookie: a=1; Path=/\r\nSet-Cookie: b=2\r\n" in head
    assert "Transfer-Encoding: chunked" in head
    assert received.complete
    assert b"\0" not in received.body and b"statusCode" not in received.body
    ticks = received.frames()
    assert [chunk.split()[1] for _, chunk in ticks] == [b"0", b"1", b"2", b"3"]
    assert_one_by_one([at for at, _ in ticks], 0.2, machine.waited)
    for at, chunk in ticks:
        assert_on_time("a tick's arrival", at - float(chunk.split()[2]), 0.1, machine.waited)


def test_a_prelude_stream_that_fails_before_its_body_is_502(start_pyrie: StartPyrie) -> None:
    server = UrlPyrie(start_pyrie, "web.http_ticks", cwd=FUNCTIONS)
    response = server.request("GET", "/?fail=before")
    assert response.status_code == 502
    assert response.content == b"Internal Server Error"


def test_a_prelude_stream_that_fails_after_its_body_started_is_cut_short(start_pyrie: StartPyrie) -> None:
    server = UrlPyrie(start_pyrie, "web.http_ticks", cwd=FUNCTIONS)
    received = stream_invoke(server.url_port, "/?count=2&interval=0.01&fail=after")
    assert received.head.startswith(b"HTTP/1.1 200 OK")
    assert received.body.count(b"data: ") == 2
    assert not received.complete


def test_a_stream_without_prelude_passes_through(start_pyrie: StartPyrie) -> None:
    server = UrlPyrie(start_pyrie, "web.plain_stream", cwd=FUNCTIONS)
    response = server.request("GET", "/")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain"
    assert response.content == b"one,two"


def test_every_path_on_the_url_listener_is_the_function(start_pyrie: StartPyrie) -> None:
    server = UrlPyrie(start_pyrie, "web.echo_event", cwd=FUNCTIONS)
    event = server.request("POST", INVOKE_PATH, data=b"{}").json()
    assert event["rawPath"] == INVOKE_PATH
    # and the Invoke API's listener is unchanged: its paths only
    invoke = server.pyrie.invoke(b'{"direct": true}')
    assert invoke.json() == {"direct": True}
    assert server.pyrie.session.get(server.pyrie.url + "/anything", timeout=10).status_code == 404


@pytest.mark.node
def test_a_node_http_response_stream_reaches_the_client_write_by_write(start_pyrie: StartPyrie) -> None:
    assert NODE_RIC.exists(), "the Node runtime client is missing: run `make node` (make test does)"
    server = UrlPyrie(
        start_pyrie, str(NODE_RIC), "index.handler", cwd=NODE_SSE, extra_env={"LAMBDA_TASK_ROOT": str(NODE_SSE)}
    )
    with MachineWait() as machine:
        received = stream_invoke(server.url_port, "/?count=4&interval_ms=200")
    assert received.head.startswith(b"HTTP/1.1 200 OK")
    assert b"Content-Type: text/event-stream\r\n" in received.head
    assert b"Cache-Control: no-cache\r\n" in received.head
    assert received.complete
    ticks = [(at, frame) for at, frame in received.frames() if b"event: tick" in frame]
    assert [chunk.split(b"\n")[0] for _, chunk in ticks] == [b"id: 1", b"id: 2", b"id: 3", b"id: 4"]
    assert_one_by_one([at for at, _ in ticks], 0.2, machine.waited)


def test_the_option_is_in_help_and_off_by_default() -> None:
    result = run_pyrie("--help")
    assert "--function-url-address HOST:PORT" in result.stdout
    assert "env PYRIE_FUNCTION_URL_ADDRESS" in result.stdout
    config = cli.parse(["app.handler"], environ={"PATH": "/usr/bin"}, cwd=str(FUNCTIONS))
    assert config.function_url_address is None
    config = cli.parse(["app.handler"], environ={"PYRIE_FUNCTION_URL_ADDRESS": "127.0.0.1:8081"}, cwd=str(FUNCTIONS))
    assert str(config.function_url_address) == "127.0.0.1:8081"


def test_the_environment_twin_turns_it_on(start_pyrie: StartPyrie) -> None:
    url_port = free_port()
    pyrie = start_pyrie(
        "web.echo_event", cwd=FUNCTIONS, extra_env={"PYRIE_FUNCTION_URL_ADDRESS": f"127.0.0.1:{url_port}"}
    )
    event = pyrie.session.get(f"http://127.0.0.1:{url_port}/from-env", timeout=10).json()
    assert event["rawPath"] == "/from-env"


def test_a_busy_url_port_stops_at_start_up_with_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_pyrie(*addresses(), "--function-url-address", f"127.0.0.1:{port}", RAW_RUNTIME)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"pyrie: error: cannot listen on 127.0.0.1:{port} for Function URLs: Address already in use"
    ]


def test_a_malformed_url_address_stops_at_start_up_with_one_line() -> None:
    result = run_pyrie("--function-url-address", "nowhere", RAW_RUNTIME)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "pyrie: error: --function-url-address: 'nowhere' is not HOST:PORT (for example 127.0.0.1:9001)"
    ]
