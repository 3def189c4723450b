"""The front door under broken and hostile requests, over raw sockets: requests cut short, stalled, malformed, with
too many headers, an invalid JSON payload or the wrong method. Each gets Lambda's answer (or, when it stalls, the
connection closed at its deadline) and one line in pyrie's log, never a traceback, and none of them runs anything:
no START line, no execution environment."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.config
import pytest

from tests.conftest import StartPyrie
from tests.cpu_wait import assert_on_time
from tests.harness import INVOKE_PATH, RAW_RUNTIME, Pyrie, free_port, wait_until
from tests.test_json_payload import RECORDED, SOURCE

FUNCTIONS = Path(__file__).parent / "functions"
STREAM_PATH = "/2021-11-15/functions/function/response-streaming-invocations"
SETTLE_S = 0.3  # how long to wait for a second log line that must not come


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def parse(raw: bytes) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split()[1]), headers, body)


def read_to_end(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def exchange(port: int, data: bytes, *, timeout: float = 10) -> tuple[bytes, int]:
    """Send ``data``, end the sending side (the request is all there is), read to the end; the answer and the
    client's port (which pyrie's log line names)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        client_port = sock.getsockname()[1]
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        return read_to_end(sock), client_port


class StderrLines:
    """pyrie's stderr from now on."""

    def __init__(self, pyrie: Pyrie) -> None:
        self.pyrie = pyrie
        # pyrie may answer before it has logged that it listens (its front end starts first): count from there
        pyrie.wait_for_stderr("pyrie listening on")
        self.start = len(pyrie.stderr().splitlines())

    def new(self) -> list[str]:
        return self.pyrie.stderr().splitlines()[self.start :]

    def one(self, text: str) -> str:
        """The one new line, which contains ``text``: wait for it, then check that no other came with it."""
        wait_until(lambda: any(text in line for line in self.new()), what=repr(text))
        time.sleep(SETTLE_S)
        lines = self.new()
        assert len(lines) == 1 and text in lines[0], lines
        return lines[0]


def assert_nothing_ran(pyrie: Pyrie) -> None:
    assert "START" not in pyrie.stdout()
    assert "Traceback" not in pyrie.stderr()
    assert pyrie.session.get(pyrie.url + "/healthz", timeout=10).json()["environments"] == []


@pytest.fixture
def echo(start_pyrie: StartPyrie) -> Pyrie:
    return start_pyrie(sys.executable, RAW_RUNTIME, extra_env={"RAW_SCENARIO": "echo"})


@pytest.fixture
def impatient(start_pyrie: StartPyrie) -> Pyrie:
    """pyrie whose front end gives a client one second to send a whole request."""
    return start_pyrie(
        sys.executable, RAW_RUNTIME, extra_env={"RAW_SCENARIO": "echo", "PYRIE_REQUEST_READ_TIMEOUT": "1"}
    )


def head(path: str = INVOKE_PATH, *fields: str, method: str = "POST") -> bytes:
    return "".join(f"{line}\r\n" for line in (f"{method} {path} HTTP/1.1", "Host: pyrie", *fields)).encode() + b"\r\n"


# --- cut short ------------------------------------------------------------------------------------------------------

HEADERS_CUT = "The connection ended in the middle of the request's headers."


@pytest.mark.parametrize(
    ("request_bytes", "reason"),
    [
        pytest.param(f"POST {INVOKE_PATH} HTTP/1.1\r\n".encode(), HEADERS_CUT, id="request-line-only"),
        pytest.param(f"POST {INVOKE_PATH} HTTP/1.1\r\nHost: pyrie\r\n".encode(), HEADERS_CUT, id="no-empty-line"),
        pytest.param(f"POST {INVOKE_PATH} HTTP/1.1\r\nHost: py".encode(), HEADERS_CUT, id="mid-header"),
        pytest.param(
            f"POST {INVOKE_PATH} HT".encode(), "The connection ended in the middle of the request line.", id="mid-line"
        ),
        pytest.param(
            head(INVOKE_PATH, "Content-Length: 100") + b'{"a":',
            "The request's body ended after 5 of its 100 bytes.",
            id="short-body",
        ),
        pytest.param(
            head(STREAM_PATH, "Content-Length: 10") + b"{}",
            "The request's body ended after 2 of its 10 bytes.",
            id="short-body-stream-invoke",
        ),
    ],
)
def test_a_request_cut_short_is_refused_and_runs_nothing(echo: Pyrie, request_bytes: bytes, reason: str) -> None:
    log = StderrLines(echo)
    raw, client_port = exchange(echo.port, request_bytes)
    answer = parse(raw)
    assert answer.status == 400
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-amzn-errortype"] == "InvalidRequestContentException"
    assert answer.headers["connection"] == "close"
    assert answer.headers["x-amzn-requestid"]
    assert answer.json() == {"Type": "User", "message": reason}
    line = log.one(f"request from 127.0.0.1:{client_port} refused: 400 InvalidRequestContentException: {reason}")
    assert "[INFO] (pyrie)" in line
    assert_nothing_ran(echo)


def test_a_chunked_body_cut_short_is_refused(echo: Pyrie) -> None:
    log = StderrLines(echo)
    raw, _ = exchange(echo.port, head(INVOKE_PATH, "Transfer-Encoding: chunked") + b'10\r\n{"a":')
    answer = parse(raw)
    assert answer.status == 400
    assert answer.headers["x-amzn-errortype"] == "InvalidRequestContentException"
    message = answer.json()["message"]  # type: ignore[index]
    assert message.startswith("The request's chunked body is malformed or cut short: ")
    log.one(message)
    assert_nothing_ran(echo)


def test_twenty_half_sent_requests_start_no_environment(echo: Pyrie) -> None:
    log = StderrLines(echo)
    answers: list[bytes] = []

    def half_send() -> None:
        answers.append(exchange(echo.port, f"POST {INVOKE_PATH} HTTP/1.1\r\n".encode())[0])

    threads = [threading.Thread(target=half_send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [parse(raw).status for raw in answers] == [400] * 20
    wait_until(lambda: len(log.new()) == 20, what="20 log lines")
    time.sleep(SETTLE_S)
    assert len(log.new()) == 20 and all(HEADERS_CUT in line for line in log.new())
    assert_nothing_ran(echo)
    assert echo.invoke(b'{"still": "serving"}').content == b'{"still": "serving"}'


# --- the read deadline -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(f"POST {INVOKE_PATH} HTTP/1.1\r\nHost: pyrie\r\n".encode(), id="in-the-headers"),
        pytest.param(head(INVOKE_PATH, "Content-Length: 100") + b'{"a":', id="in-the-body"),
        pytest.param(b"P", id="after-one-byte"),
    ],
)
def test_a_stalled_request_is_dropped_at_its_deadline(impatient: Pyrie, request_bytes: bytes) -> None:
    log = StderrLines(impatient)
    with socket.create_connection(("127.0.0.1", impatient.port), timeout=10) as sock, impatient.run_queue() as queue:
        client_port = sock.getsockname()[1]
        sock.sendall(request_bytes)  # and then nothing, the connection kept open
        sent = time.time()
        received = read_to_end(sock)
        waited = time.time() - sent
    assert received == b""  # dropped without an answer
    assert waited > 0.9, waited
    assert_on_time("the drop", waited - 0.9, 1.6, queue.waited(sent, sent + waited))
    log.one(f"request from 127.0.0.1:{client_port} dropped: not read within 1 s of its first byte")
    assert_nothing_ran(impatient)


def test_the_deadline_runs_from_a_requests_first_byte_not_from_an_idle_connection(impatient: Pyrie) -> None:
    request = head(INVOKE_PATH, "Content-Length: 2") + b"{}"
    with socket.create_connection(("127.0.0.1", impatient.port), timeout=10) as sock:
        time.sleep(1.5)  # idle, past the deadline: a keep-alive connection waiting for its next request
        for byte in request[:-2]:  # a slow client, one byte at a time, well within the deadline
            sock.sendall(bytes([byte]))
            time.sleep(0.002)
        sock.sendall(request[-2:])
        received = b""
        while b"\r\n\r\n" not in received or not received.endswith(b"{}"):
            data = sock.recv(65536)
            assert data, f"pyrie closed the connection after {received!r}"
            received += data
    assert parse(received).status == 200
    assert "dropped" not in impatient.stderr()


def test_an_idle_keep_alive_connection_is_closed_after_keepalive_seconds(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(
        sys.executable, RAW_RUNTIME, extra_env={"RAW_SCENARIO": "echo", "GUNICORN_CMD_ARGS": "--keep-alive 1"}
    )
    request = head(INVOKE_PATH, "Content-Length: 2") + b"{}"
    with socket.create_connection(("127.0.0.1", pyrie.port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while not received.endswith(b"{}"):
            data = sock.recv(65536)
            assert data, f"pyrie closed the connection after {received!r}"
            received += data
        assert parse(received).status == 200
        with pyrie.run_queue() as queue:
            answered = time.time()
            assert read_to_end(sock) == b""  # then idle: closed by pyrie, not by this client
            idle = time.time() - answered
    assert idle > 0.9, idle
    assert_on_time("the close", idle - 0.9, 1.6, queue.waited(answered, answered + idle))


def test_an_oversize_body_is_refused_and_its_rest_is_not_waited_for(impatient: Pyrie) -> None:
    log = StderrLines(impatient)
    with socket.create_connection(("127.0.0.1", impatient.port), timeout=10) as sock:
        sock.sendall(head(INVOKE_PATH, "Content-Length: 7000000") + b" " * 6_500_000)  # and the rest never comes
        received = read_to_end(sock)
    answer = parse(received)
    assert answer.status == 413
    assert answer.headers["x-amzn-errortype"] == "RequestEntityTooLargeException"
    wait_until(lambda: any("not read within 1 s" in line for line in log.new()), what="the connection's close")
    assert [line.split("(pyrie) ")[1].split(":")[0] for line in log.new()] == [
        "invoke refused",
        "request from 127.0.0.1",
    ]
    assert_nothing_ran(impatient)


# --- malformed -------------------------------------------------------------------------------------------------------


def test_a_hundred_header_fields_are_taken_and_more_are_refused(echo: Pyrie) -> None:
    fields = [f"X-Field-{n}: {n}" for n in range(97)]  # with Host, Content-Length and Connection: 100
    raw, _ = exchange(echo.port, head(INVOKE_PATH, *fields, "Content-Length: 2", "Connection: close") + b"{}")
    assert parse(raw).status == 200
    log = StderrLines(echo)
    more = head(INVOKE_PATH, *fields, "X-One-More: 1", "Content-Length: 2", "Connection: close") + b"{}"
    raw, _ = exchange(echo.port, more)
    answer = parse(raw)
    assert answer.status == 400
    assert answer.headers["x-amzn-errortype"] == "InvalidRequestContentException"
    assert answer.json() == {"Type": "User", "message": "The request has more than 100 header fields."}
    log.one("refused: 400 InvalidRequestContentException: The request has more than 100 header fields.")
    assert "Traceback" not in echo.stderr()


@pytest.mark.parametrize(
    ("request_bytes", "status", "reason"),
    [
        (b"GARBAGE\r\n\r\n", 400, "The request is malformed: Invalid HTTP method: 'GARBAGE\\r\\n'"),
        (head(INVOKE_PATH, "Content-Length: many"), 400, "The request's Content-Length 'many' is not a number"),
        (head(INVOKE_PATH, "Content-Length: 1_0"), 400, "The request's Content-Length '1_0' is not a number"),
        (head(INVOKE_PATH, "Content-Length: +4"), 400, "The request's Content-Length '+4' is not a number"),
        (
            head(INVOKE_PATH, "Content-Length: 4", "Content-Length: 40") + b"{}{}" + head("/smuggled", method="GET"),
            400,
            "The request's Content-Length headers disagree: 4, 40.",
        ),
        (
            head(INVOKE_PATH, "Transfer-Encoding: chunked", "Transfer-Encoding: chunked") + b"2\r\n{}\r\n0\r\n\r\n",
            400,
            "The request's Transfer-Encoding chunked, chunked is not supported: only chunked is.",
        ),
        (
            head(INVOKE_PATH, "Transfer-Encoding: gzip, chunked") + b"2\r\n{}\r\n0\r\n\r\n",
            400,
            "The request's Transfer-Encoding gzip, chunked is not supported: only chunked is.",
        ),
        (
            head(INVOKE_PATH, "Content-Length: 2", "Transfer-Encoding: chunked") + b"2\r\n{}\r\n0\r\n\r\n",
            400,
            "The request has both a Content-Length and a Transfer-Encoding.",
        ),
        (f"POST {INVOKE_PATH} HTTP/1\r\n\r\n".encode(), 400, "The request is malformed: "),
        (f"POST /{'x' * 9000} HTTP/1.1\r\n\r\n".encode(), 414, "The request line is longer than 8192 bytes."),
        (head(INVOKE_PATH, "X-Long: " + "x" * 70000), 400, "A header line of the request is longer than 65536 bytes."),
    ],
    ids=[
        "request-line",
        "content-length",
        "content-length-underscore",
        "content-length-plus",
        "content-lengths-disagree",
        "transfer-encoding-twice",
        "transfer-encoding-gzip-chunked",
        "both-lengths",
        "http-version",
        "long-request-line",
        "long-header-line",
    ],
)
def test_a_malformed_request_is_refused(echo: Pyrie, request_bytes: bytes, status: int, reason: str) -> None:
    log = StderrLines(echo)
    answer = parse(exchange(echo.port, request_bytes)[0])
    assert answer.status == status
    assert answer.headers["x-amzn-errortype"] == "InvalidRequestContentException"
    assert answer.json()["message"].startswith(reason)  # type: ignore[index]
    log.one(f"refused: {status} InvalidRequestContentException: {reason}")
    assert_nothing_ran(echo)


@pytest.mark.parametrize(
    "request_bytes",
    [
        head(INVOKE_PATH, "Content-Length: 8", "Content-Length: 8", "Connection: close") + b'{"a": 1}',
        head(INVOKE_PATH, "Transfer-Encoding: Chunked", "Connection: close") + b'8\r\n{"a": 1}\r\n0\r\n\r\n',
    ],
    ids=["content-length-repeated", "chunked"],
)
def test_a_body_whose_length_is_told_one_way_is_taken(echo: Pyrie, request_bytes: bytes) -> None:
    answer = parse(exchange(echo.port, request_bytes)[0])
    assert (answer.status, answer.body) == (200, b'{"a": 1}')


def test_a_body_announced_with_expect_100_continue_is_asked_for_and_read(echo: Pyrie) -> None:
    with socket.create_connection(("127.0.0.1", echo.port), timeout=10) as sock:
        sock.sendall(head(INVOKE_PATH, "Content-Length: 8", "Expect: 100-continue", "Connection: close"))
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b'{"a": 1}')
        answer = parse(read_to_end(sock))
    assert (answer.status, answer.body) == (200, b'{"a": 1}')


# --- Lambda's answers to a wrong method and to a payload that is not JSON ------------------------------------------

NO_OPERATION = {"Message": "Unable to determine service/operation name to be authorized"}


@pytest.mark.parametrize("path", [INVOKE_PATH, STREAM_PATH])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_the_invoke_paths_take_post_only(echo: Pyrie, method: str, path: str) -> None:
    log = StderrLines(echo)
    response = echo.session.request(method, echo.url + path, data=b"{}", timeout=10)
    assert response.status_code == 403
    assert response.headers["X-Amzn-ErrorType"] == "AccessDeniedException"
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Amzn-RequestId"]
    assert response.json() == NO_OPERATION
    log.one(f"{method} '{path}' refused: 403 AccessDeniedException: the Invoke API takes POST only")
    assert_nothing_ran(echo)


@pytest.mark.parametrize("invocation_type", ["RequestResponse", "Event", "DryRun"])
@pytest.mark.parametrize(("payload", "message"), RECORDED)
def test_a_payload_that_is_not_json_is_lambdas_400(
    echo: Pyrie, payload: bytes, message: str, invocation_type: str
) -> None:
    log = StderrLines(echo)
    response = echo.invoke(payload, headers={"X-Amz-Invocation-Type": invocation_type})
    assert response.status_code == 400
    assert response.headers["X-Amzn-ErrorType"] == "InvalidRequestContentException"
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"Type": "User", "message": message}
    log.one("invoke refused: 400 InvalidRequestContentException: " + message.replace("\n", " "))
    assert_nothing_ran(echo)


def test_the_sdk_raises_invalid_request_content_for_both_invoke_apis(echo: Pyrie) -> None:
    client = boto3.client(
        "lambda",
        endpoint_url=echo.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )
    payload, message = RECORDED[0]
    with pytest.raises(client.exceptions.InvalidRequestContentException) as invoke:
        client.invoke(FunctionName="function", Payload=payload)
    assert invoke.value.response["Error"]["Message"] == message
    with pytest.raises(client.exceptions.InvalidRequestContentException) as stream:
        client.invoke_with_response_stream(FunctionName="function", Payload=b'{"unfinished": ')
    assert stream.value.response["Error"]["Message"].endswith(f"[Source: {SOURCE}; line: 1, column: 16]")
    assert_nothing_ran(echo)


# --- Function URLs ---------------------------------------------------------------------------------------------------


@pytest.fixture
def url(start_pyrie: StartPyrie) -> Iterator[tuple[Pyrie, int]]:
    port = free_port()
    yield start_pyrie("--function-url-address", f"127.0.0.1:{port}", "web.echo_event", cwd=FUNCTIONS), port


def test_a_function_url_takes_any_method_and_any_body(url: tuple[Pyrie, int]) -> None:
    pyrie, port = url
    response = pyrie.session.put(
        f"http://127.0.0.1:{port}/x", data=b"not json {", headers={"Content-Type": "text/plain"}, timeout=30
    )
    assert response.status_code == 200
    assert response.json()["body"] == "not json {"
    assert response.json()["requestContext"]["http"]["method"] == "PUT"


def test_a_function_url_request_cut_short_is_refused_in_the_urls_shape(url: tuple[Pyrie, int]) -> None:
    pyrie, port = url
    log = StderrLines(pyrie)
    answer = parse(exchange(port, head("/x", "Content-Length: 10") + b"abc")[0])
    assert answer.status == 400
    assert answer.headers["x-amzn-errortype"] == "InvalidRequestContentException"
    assert answer.json() == {"Message": "The request's body ended after 3 of its 10 bytes."}
    log.one("refused: 400 InvalidRequestContentException: The request's body ended after 3 of its 10 bytes.")
    assert_nothing_ran(pyrie)
