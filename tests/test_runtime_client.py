"""Unit tests of pyrie_runtime_client's pure parts (chunk framing, error bodies, handler names, context, marshalling,
stream detection), and the exact bytes of a streamed response on a raw socket."""

from __future__ import annotations

import base64
import json
import logging
import math
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from pyrie_runtime_client import StreamingResponse, streaming
from pyrie_runtime_client.api import RuntimeApi, RuntimeApiError, StreamAborted, invocation_path
from pyrie_runtime_client.chunked import LAST_CHUNK, encode_chunk, encode_error_trailers, encode_trailers, field_value
from pyrie_runtime_client.context import FunctionInfo, make_context, parse_deadline
from pyrie_runtime_client.function_errors import (
    FaultError,
    error_from_exception,
    error_from_fault,
    format_error_log,
    format_frames,
    make_error,
)
from pyrie_runtime_client.handler import load_handler, parse_handler_name
from pyrie_runtime_client.logs import JsonFormatter, format_error_record, level_from_env
from pyrie_runtime_client.marshalling import Marshaller
from pyrie_runtime_client.streaming import (
    STREAMING_ATTRIBUTE,
    as_stream,
    first_chunk,
    is_stream_like,
    iterate_body,
    stream_content_type,
    to_bytes,
)

# --- chunk framing ------------------------------------------------------------------------------------------------


def test_chunk_framing_is_byte_exact() -> None:
    assert encode_chunk(b"hello") == b"5\r\nhello\r\n"
    assert encode_chunk(b"x" * 16) == b"10\r\n" + b"x" * 16 + b"\r\n"
    assert encode_chunk(b"\r\n" * 128) == b"100\r\n" + b"\r\n" * 128 + b"\r\n"
    assert LAST_CHUNK == b"0\r\n\r\n"
    with pytest.raises(ValueError, match="zero-length chunk"):
        encode_chunk(b"")


def test_trailers_are_byte_exact() -> None:
    assert encode_trailers([]) == b"0\r\n\r\n"
    assert encode_trailers([("A", "1"), ("B", "two")]) == b"0\r\nA: 1\r\nB: two\r\n\r\n"
    body = b'{"errorMessage": "x"}'
    assert encode_error_trailers("ValueError", body) == (
        b"0\r\n"
        b"Lambda-Runtime-Function-Error-Type: ValueError\r\n"
        b"Lambda-Runtime-Function-Error-Body: " + base64.b64encode(body) + b"\r\n"
        b"\r\n"
    )


def test_field_values_cannot_break_the_framing() -> None:
    assert field_value("Bad\r\nInjected: 1") == "Bad??Injected: 1"
    assert field_value("Ünïcode€") == "Ünïcode?"  # Latin-1 is fine, the rest is not
    assert encode_trailers([("T", "a\nb")]) == b"0\r\nT: a?b\r\n\r\n"


# --- error bodies -------------------------------------------------------------------------------------------------


def test_make_error_fills_in_blanks() -> None:
    assert make_error(None, None, None) == {"errorMessage": "", "errorType": "", "requestId": "", "stackTrace": []}
    assert make_error("m", "T", ["f"], "id") == {
        "errorMessage": "m",
        "errorType": "T",
        "requestId": "id",
        "stackTrace": ["f"],
    }


def test_format_frames_matches_traceback_format_list() -> None:
    frames = [("/a.py", 3, "f", "  x = 1  "), ("/b.py", 10, "<module>", None), ("/c.py", 1, "g", "")]
    assert format_frames(frames) == traceback.format_list(frames)
    assert format_frames(frames)[0] == '  File "/a.py", line 3, in f\n    x = 1\n'


def test_error_from_exception_leaves_out_runtime_frames() -> None:
    with pytest.raises(TypeError) as caught:
        to_bytes(42)  # raised inside runtime_client.streaming
    body, cause = error_from_exception(caught.value, "req-1")
    assert body["errorType"] == "TypeError"
    assert body["errorMessage"] == "streamed items must be str or bytes-like objects, not int"
    assert body["requestId"] == "req-1"
    assert len(body["stackTrace"]) == 1
    assert body["stackTrace"][0].startswith(f'  File "{__file__}", line ')
    assert "to_bytes(42)" in body["stackTrace"][0]
    assert cause["exceptions"][0]["type"] == "TypeError"
    assert cause["paths"] == [__file__]


def test_error_from_fault() -> None:
    body, cause = error_from_fault(FaultError("Runtime.MarshalError", "Unable to marshal response: x"), "id")
    assert body == {
        "errorMessage": "Unable to marshal response: x",
        "errorType": "Runtime.MarshalError",
        "requestId": "id",
        "stackTrace": [],
    }
    assert cause["exceptions"] == [
        {"message": "Unable to marshal response: x", "type": "LambdaValidationError", "stack": []}
    ]


def test_error_log_line() -> None:
    body = make_error("boom", "ValueError", ['  File "/a.py", line 3, in f\n    raise ValueError("boom")\n'])
    assert format_error_log(body) == (
        "[ERROR] ValueError: boom\rTraceback (most recent call last):\r"
        '\u00a0\u00a0File "/a.py", line 3, in f\r\u00a0\u00a0\u00a0\u00a0raise ValueError("boom")\n'
    )
    assert format_error_log(make_error("", "T", [])) == "[ERROR] T\rTraceback (most recent call last):\n"
    record = json.loads(format_error_record(body, json_format=True))
    assert record["level"] == "ERROR"
    assert record["errorType"] == "ValueError"
    assert record["timestamp"].endswith("Z")


# --- handler names ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [("app.handler", ("app", "handler")), ("a.b.c", ("a.b", "c")), ("dir/mod.fn", ("dir/mod", "fn"))],
)
def test_parse_handler_name(name: str, expected: tuple[str, str]) -> None:
    assert parse_handler_name(name) == expected


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("handler", "Bad handler 'handler': not enough values to unpack (expected 2, got 1)"),
        (".handler", "Bad handler '.handler': empty module name"),
    ],
)
def test_malformed_handler_names(name: str, message: str) -> None:
    with pytest.raises(FaultError) as caught:
        parse_handler_name(name)
    assert (caught.value.error_type, caught.value.message) == ("Runtime.MalformedHandlerName", message)


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A directory on sys.path and a module name not imported before."""
    monkeypatch.syspath_prepend(str(tmp_path))
    name = "rc_test_" + uuid.uuid4().hex[:8]
    yield tmp_path, name
    for module in [m for m in sys.modules if m.startswith(name)]:
        del sys.modules[module]


def test_load_handler(module_dir: tuple[Path, str]) -> None:
    directory, name = module_dir
    (directory / f"{name}.py").write_text("def handler(event, context):\n    return 'ok'\n")
    assert load_handler(f"{name}.handler")(None, None) == "ok"
    (directory / f"{name}_pkg").mkdir()
    (directory / f"{name}_pkg" / "inner.py").write_text("def fn(event, context):\n    return 'inner'\n")
    assert load_handler(f"{name}_pkg/inner.fn")(None, None) == "inner"
    assert load_handler(f"{name}_pkg.inner.fn")(None, None) == "inner"


@pytest.mark.parametrize(
    ("code", "error_type", "message"),
    [
        (None, "Runtime.ImportModuleError", "Unable to import module '{name}': No module named '{name}'"),
        ("x = 1\n", "Runtime.HandlerNotFound", "Handler 'handler' missing on module '{name}'"),
        ("def handler(:\n", "Runtime.UserCodeSyntaxError", "Syntax error in module '{name}': invalid syntax"),
    ],
)
def test_load_handler_faults(module_dir: tuple[Path, str], code: str | None, error_type: str, message: str) -> None:
    directory, name = module_dir
    if code is not None:
        (directory / f"{name}.py").write_text(code)
    with pytest.raises(FaultError) as caught:
        load_handler(f"{name}.handler")
    assert caught.value.error_type == error_type
    assert caught.value.message.startswith(message.format(name=name))
    if error_type == "Runtime.UserCodeSyntaxError":
        assert caught.value.stack_trace == [f'  File "{directory / name}.py" Line 1\n    def handler(:\n']


def test_builtin_module_conflict() -> None:
    with pytest.raises(FaultError) as caught:
        load_handler("sys.handler")
    assert caught.value.error_type == "Runtime.BuiltInModuleConflict"


# --- context ------------------------------------------------------------------------------------------------------

FUNCTION = FunctionInfo(
    {
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
        "AWS_LAMBDA_LOG_STREAM_NAME": "s",
    }
)


def test_context_from_headers() -> None:
    deadline = int(time.time() * 1000) + 10_000
    context = make_context(
        "id-1",
        "arn:aws:lambda:us-east-1:012345678912:function:fn",
        deadline,
        FUNCTION,
        client_context_json=json.dumps(
            {
                "client": {"installation_id": "i", "app_title": "t"},
                "custom": {"c": 1},
                "env": {"e": 2},
                "w3c": {"traceparent": "tp", "tracestate": 5},
            }
        ),
        cognito_identity_json='{"cognitoIdentityId": "cid", "cognitoIdentityPoolId": "pool"}',
        tenant_id="t-1",
    )
    assert (context.aws_request_id, context.function_name, context.function_version) == ("id-1", "fn", "$LATEST")
    assert (context.memory_limit_in_mb, context.log_group_name, context.log_stream_name) == (
        "256",
        "/aws/lambda/fn",
        "s",
    )
    assert context.tenant_id == "t-1"
    assert 9_000 < context.get_remaining_time_in_millis() <= 10_000
    client_context = context.client_context
    assert client_context is not None
    assert client_context.client is not None
    assert (client_context.client.installation_id, client_context.client.app_title) == ("i", "t")
    assert client_context.client.app_version_code is None
    assert (client_context.custom, client_context.env) == ({"c": 1}, {"e": 2})
    assert not hasattr(client_context, "w3c")
    assert context.w3c() == {"traceparent": "tp"}
    assert (context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id) == ("cid", "pool")
    assert repr(context) == (
        "LambdaContext([aws_request_id=id-1,log_group_name=/aws/lambda/fn,log_stream_name=s,function_name=fn,"
        "memory_limit_in_mb=256,function_version=$LATEST,"
        "invoked_function_arn=arn:aws:lambda:us-east-1:012345678912:function:fn,"
        "client_context=ClientContext([custom={'c': 1},env={'e': 2},client=Client([installation_id=i,app_title=t,"
        "app_version_name=None,app_version_code=None,app_package_name=None])]),"
        "identity=CognitoIdentity([cognito_identity_id=cid,cognito_identity_pool_id=pool]),tenant_id=t-1])"
    )


def test_context_without_optional_headers() -> None:
    context = make_context("id", None, 0, FUNCTION)
    assert context.client_context is None
    assert context.identity.cognito_identity_id is None
    assert context.tenant_id is None
    assert context.get_remaining_time_in_millis() == 0  # clamped
    assert context.w3c() == {}
    context.custom_attribute = 1  # type: ignore[attr-defined]  # libraries may set attributes


@pytest.mark.parametrize("text", ["{bad", "[1]"])
def test_unparsable_client_context(text: str) -> None:
    with pytest.raises(FaultError) as caught:
        make_context("id", None, 0, FUNCTION, client_context_json=text)
    assert caught.value.error_type == "Runtime.LambdaContextUnmarshalError"
    assert caught.value.message.startswith("Unable to parse Client Context JSON: ")


def test_parse_deadline() -> None:
    assert parse_deadline("1700000000123") == 1700000000123
    assert parse_deadline(None) == 0
    assert parse_deadline("soon") == 0


# --- marshalling --------------------------------------------------------------------------------------------------


def test_marshal_results() -> None:
    marshaller = Marshaller({})
    assert marshaller.marshal({"a": "é"}) == (b'{"a": "\\u00e9"}', "application/json")
    assert marshaller.marshal("s") == (b'"s"', "application/json")
    assert marshaller.marshal(None) == (b"null", "application/json")
    assert marshaller.marshal(b"\x00\xff") == (b"\x00\xff", "application/unknown")
    assert marshaller.marshal(math.inf) == (b"Infinity", "application/json")
    assert marshaller.marshal([Decimal("12"), Decimal("1.5"), Decimal("1E+2")]) == (
        b"[12, 1.5, 100]",
        "application/json",
    )
    assert Marshaller({"AWS_EXECUTION_ENV": "AWS_Lambda_python3.12"}).marshal("é") == (
        '"é"'.encode(),
        "application/json",
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({1}, "Unable to marshal response: Object of type set is not JSON serializable"),
        (bytearray(b"x"), "Unable to marshal response: Object of type bytearray is not JSON serializable"),
    ],
)
def test_marshal_errors(value: object, message: str) -> None:
    with pytest.raises(FaultError) as caught:
        Marshaller({}).marshal(value)
    assert (caught.value.error_type, caught.value.message) == ("Runtime.MarshalError", message)


def test_unmarshal_events() -> None:
    marshaller = Marshaller({})
    assert marshaller.unmarshal(b'{"a": [1]}', "application/json") == {"a": [1]}
    assert marshaller.unmarshal(b"1", None) == 1
    assert marshaller.unmarshal(b"1", "application/json; charset=utf-8") == 1
    assert marshaller.unmarshal(b"raw", "application/octet-stream") == b"raw"
    with pytest.raises(FaultError) as caught:
        marshaller.unmarshal(b"", "application/json")
    assert caught.value.error_type == "Runtime.UnmarshalError"
    assert caught.value.message == "Unable to unmarshal input: Expecting value: line 1 column 1 (char 0)"


# --- stream detection ---------------------------------------------------------------------------------------------


def _generator() -> Iterator[str]:
    yield "x"


class _Iterable:
    def __iter__(self) -> Iterator[str]:
        return iter(["x"])


@pytest.mark.parametrize(
    ("value", "streamed"),
    [
        (_generator(), True),
        (_Iterable(), True),
        (iter([1]), True),
        (range(3), True),
        (None, False),
        ("s", False),
        (b"b", False),
        (bytearray(b"b"), False),
        ({"a": 1}, False),
        ([1], False),
        ((1,), False),
        ({1}, False),
        (1.5, False),
    ],
)
def test_is_stream_like(value: object, streamed: bool) -> None:
    assert is_stream_like(value) is streamed


def test_streaming_decorator_marks_and_returns_the_handler() -> None:
    def handler(event: object, context: object) -> Iterator[str]:
        yield "a"

    assert streaming(content_type="text/event-stream")(handler) is handler
    assert getattr(handler, STREAMING_ATTRIBUTE) == "text/event-stream"
    assert getattr(streaming(handler), STREAMING_ATTRIBUTE) == "application/octet-stream"
    with pytest.raises(ValueError, match="invalid content type"):
        streaming(content_type="text/plain\r\nX: 1")


def test_as_stream_and_content_type() -> None:
    assert as_stream({"a": 1}, None) is None
    generator = _generator()
    stream = as_stream(generator, None)
    assert stream is not None
    assert stream.body is generator
    assert stream_content_type(stream, None) == "application/octet-stream"
    marked = as_stream("whole", "text/plain")
    assert marked is not None
    assert stream_content_type(marked, "text/plain") == "text/plain"
    explicit = StreamingResponse(["a"], content_type="text/csv")
    assert as_stream(explicit, "text/plain") is explicit
    assert stream_content_type(explicit, "text/plain") == "text/csv"
    assert StreamingResponse([], prelude=[b"{}", b"\0" * 8]).prelude == (b"{}", b"\0" * 8)


def test_chunks_of_a_body() -> None:
    assert list(iterate_body("one")) == ["one"]
    assert list(iterate_body(None)) == []
    assert list(iterate_body(["a", b"b"])) == ["a", b"b"]
    with pytest.raises(TypeError):
        iterate_body({"a": 1})
    assert to_bytes("é") == "é".encode()
    assert to_bytes(memoryview(b"mv")) == b"mv"
    chunks = iter(["", b"", "first", "second"])
    assert first_chunk(chunks) == b"first"
    assert list(chunks) == ["second"]
    assert first_chunk(iter(["", b""])) is None


# --- logging ------------------------------------------------------------------------------------------------------


def test_log_level_from_env() -> None:
    assert level_from_env({}) is None
    assert level_from_env({"AWS_LAMBDA_LOG_LEVEL": "trace"}) == logging.DEBUG
    assert level_from_env({"AWS_LAMBDA_LOG_LEVEL": "WARN"}) == logging.WARNING
    assert level_from_env({"AWS_LAMBDA_LOG_LEVEL": "nonsense"}) is None


def test_json_formatter() -> None:
    record = logging.LogRecord("app", logging.INFO, "/a.py", 3, "hello %s", ("you",), None)
    record.aws_request_id = "id"
    record.tenant_id = None
    record.order = 7
    line = JsonFormatter().format(record)
    assert line.endswith("\n")
    fields = json.loads(line)
    assert fields.pop("timestamp").endswith("Z")
    assert fields == {"level": "INFO", "message": "hello you", "logger": "app", "requestId": "id", "order": 7}


# --- a streamed response on the wire ------------------------------------------------------------------------------


class RawPeer:
    """Accepts one connection, reads one streamed request up to the end of its trailers, answers with ``answer``."""

    def __init__(self, answer: bytes = b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nOK") -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.answer = answer
        self.received = b""
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        sock, _ = self.listener.accept()
        with sock:
            while b"\r\n0\r\n" not in self.received or not self.received.endswith(b"\r\n\r\n"):
                data = sock.recv(65536)
                if not data:
                    break
                self.received += data
            sock.sendall(self.answer)
            self.done.set()
            sock.recv(1)  # until the client goes

    def close(self) -> None:
        self.listener.close()


def test_streamed_request_bytes() -> None:
    peer = RawPeer()
    api = RuntimeApi(peer.address)
    stream = api.open_stream("abc-123", "text/event-stream")
    stream.write(b"data: 1\n\n")
    stream.write(b"x" * 20)
    stream.fail("ValueError", b'{"errorMessage": "boom"}')
    api.close()
    peer.close()
    assert peer.done.wait(5)
    assert peer.received == (
        b"POST /2018-06-01/runtime/invocation/abc-123/response HTTP/1.1\r\n"
        b"Host: " + peer.address.encode() + b"\r\n"
        b"Lambda-Runtime-Function-Response-Mode: streaming\r\n"
        b"Transfer-Encoding: chunked\r\n"
        b"Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n"
        b"Content-Type: text/event-stream\r\n"
        b"User-Agent: " + api_user_agent() + b"\r\n"
        b"\r\n"
        b"9\r\ndata: 1\n\n\r\n"
        b"14\r\n" + b"x" * 20 + b"\r\n"
        b"0\r\n"
        b"Lambda-Runtime-Function-Error-Type: ValueError\r\n"
        b"Lambda-Runtime-Function-Error-Body: eyJlcnJvck1lc3NhZ2UiOiAiYm9vbSJ9\r\n"
        b"\r\n"
    )


def api_user_agent() -> bytes:
    from pyrie_runtime_client.api import USER_AGENT

    return USER_AGENT.encode()


def test_a_refused_stream_raises() -> None:
    peer = RawPeer(answer=b"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad")
    api = RuntimeApi(peer.address)
    stream = api.open_stream("id", "text/plain")
    stream.write(b"a")
    with pytest.raises(RuntimeApiError, match="answered 400 bad") as caught:
        stream.finish()
    assert not isinstance(caught.value, StreamAborted)
    api.close()
    peer.close()


def test_invocation_path_quotes_the_id() -> None:
    assert invocation_path("a/b c", "error") == "/2018-06-01/runtime/invocation/a%2Fb%20c/error"
