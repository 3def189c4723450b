"""pyrie_runtime_client as a real process against a small Runtime API written here (h11 on raw sockets, so that chunk
boundaries, arrival times and trailers can be seen), and side by side with awslambdaric for the buffered paths."""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import itertools
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import h11
import pytest

from tests.cpu_wait import MachineWait, assert_one_by_one

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 5.0
ARN = "arn:aws:lambda:us-east-1:012345678912:function:fn"


class Recorded:
    """One request the runtime made (other than /next), as it arrived."""

    def __init__(self, method: str, target: str, headers: list[tuple[bytes, bytes]], connection: int) -> None:
        self.method = method
        self.target = target
        self.headers = [(name.decode().lower(), value.decode()) for name, value in headers]
        self.connection = connection
        self.chunks: list[bytes] = []
        self.chunk_times: list[float] = []
        self.trailers: list[tuple[str, str]] = []
        self._partial = b""
        self.body = b""

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[-1] if values else None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name.lower()]

    def trailer(self, name: str) -> str | None:
        return next((value for key, value in self.trailers if key == name.lower()), None)

    def json(self) -> object:
        return json.loads(self.body)


Early = Callable[[Recorded], "tuple[int, bytes] | str | None"]


class FakeRuntimeApi:
    """Serves queued events on /next (blocking until one is queued), records every other request, answers 202.

    ``early`` is asked after each streamed chunk; it may answer the request before its end (``(status, body)``)
    or drop the connection (``"drop"``)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self.events: queue.Queue[tuple[bytes, list[tuple[str, str]]]] = queue.Queue()
        self.requests: queue.Queue[Recorded] = queue.Queue()
        self.next_calls: queue.Queue[int] = queue.Queue()
        self.early: Early | None = None
        self._closed = threading.Event()
        self._connections = itertools.count(1)
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def add_event(
        self,
        body: bytes = b"{}",
        *,
        request_id: str | None = None,
        deadline_ms: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> str:
        request_id = request_id or str(uuid.uuid4())
        deadline = deadline_ms if deadline_ms is not None else int(time.time() * 1000) + 30_000
        fields = [
            ("Content-Type", "application/json"),
            ("Lambda-Runtime-Aws-Request-Id", request_id),
            ("Lambda-Runtime-Deadline-Ms", str(deadline)),
            ("Lambda-Runtime-Invoked-Function-Arn", ARN),
            *(headers or {}).items(),
        ]
        self.events.put((body, fields))
        return request_id

    def next_request(self, timeout: float = TIMEOUT) -> Recorded:
        return self.requests.get(timeout=timeout)

    def wait_for_next(self, count: int = 1, timeout: float = TIMEOUT) -> None:
        """Wait until the runtime has called /next ``count`` more times."""
        for _ in range(count):
            self.next_calls.get(timeout=timeout)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            self._sockets.append(sock)
            threading.Thread(target=self._serve, args=(sock, next(self._connections)), daemon=True).start()

    def _serve(self, sock: socket.socket, connection_id: int) -> None:
        conn = h11.Connection(h11.SERVER)
        recorded: Recorded | None = None
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    if conn.they_are_waiting_for_100_continue:
                        sock.sendall(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
                    conn.receive_data(sock.recv(65536))
                    continue
                if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    return
                if isinstance(event, h11.Request):
                    recorded = Recorded(event.method.decode(), event.target.decode(), event.headers, connection_id)
                elif isinstance(event, h11.Data):
                    assert recorded is not None
                    recorded.body += event.data
                    recorded._partial += event.data
                    if event.chunk_end:
                        recorded.chunks.append(recorded._partial)
                        recorded.chunk_times.append(time.monotonic())
                        recorded._partial = b""
                        if self.early is not None:
                            answer = self.early(recorded)
                            if answer == "drop":
                                self.requests.put(recorded)
                                return
                            if isinstance(answer, tuple):
                                self._respond(sock, conn, *answer)
                                self.requests.put(recorded)
                                return
                elif isinstance(event, h11.EndOfMessage):
                    assert recorded is not None
                    recorded.trailers = [(k.decode().lower(), v.decode()) for k, v in event.headers]
                    if recorded.target.endswith("/invocation/next"):
                        self.next_calls.put(connection_id)
                        served = self._serve_next(sock, conn)
                        if not served:
                            return
                    else:
                        self.requests.put(recorded)
                        self._respond(sock, conn, 202, b'{"status":"OK"}')
                    conn.start_next_cycle()
        except (OSError, h11.ProtocolError):
            return
        finally:
            sock.close()

    def _serve_next(self, sock: socket.socket, conn: h11.Connection) -> bool:
        while not self._closed.is_set():
            try:
                body, fields = self.events.get(timeout=0.05)
            except queue.Empty:
                continue
            headers = [*fields, ("Content-Length", str(len(body)))]
            sock.sendall(conn.send(h11.Response(status_code=200, headers=headers)))
            sock.sendall(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
            return True
        return False

    @staticmethod
    def _respond(sock: socket.socket, conn: h11.Connection, status: int, body: bytes) -> None:
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        sock.sendall(conn.send(h11.Response(status_code=status, headers=headers)))
        sock.sendall(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))


@pytest.fixture
def api() -> Iterator[FakeRuntimeApi]:
    server = FakeRuntimeApi()
    yield server
    server.close()


class Runtime:
    """A runtime process whose output is drained as it comes (a full pipe would block it)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self._output: list[bytes] = []
        self._readers = [
            threading.Thread(target=self._drain, args=(stream,), daemon=True) for stream in (proc.stdout, proc.stderr)
        ]
        for reader in self._readers:
            reader.start()

    def _drain(self, stream: IO[bytes] | None) -> None:
        assert stream is not None
        for line in stream:
            self._output.append(line)

    @property
    def output(self) -> str:
        # Decoded here rather than with text=True, which would turn the \r of error log lines into \n.
        return b"".join(self._output).decode("utf-8", "replace")

    def stop(self) -> int:
        """SIGTERM, and the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait()

    def wait(self) -> int:
        try:
            self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for reader in self._readers:
            reader.join(TIMEOUT)
        return self.proc.returncode


@pytest.fixture
def start(api: FakeRuntimeApi, tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    started: list[Runtime] = []

    def start(
        code: str,
        handler: str | None = "app.handler",
        *,
        env: dict[str, str] | None = None,
        command: list[str] | None = None,
        module: str = "app.py",
    ) -> Runtime:
        (tmp_path / module).write_text(textwrap.dedent(code))
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(REPO),
            "PYTHONDONTWRITEBYTECODE": "1",
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "AWS_LAMBDA_FUNCTION_NAME": "fn",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
            "AWS_LAMBDA_LOG_STREAM_NAME": "stream",
            **(env or {}),
        }
        argv = command or [sys.executable, "-m", "pyrie_runtime_client"]
        if handler is not None:
            argv = [*argv, handler]
        proc = subprocess.Popen(argv, cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        runtime = Runtime(proc)
        started.append(runtime)
        return runtime

    yield start
    for runtime in started:
        if runtime.proc.poll() is None:
            runtime.proc.kill()
        runtime.wait()


def invocation_path(request_id: str, what: str) -> str:
    return f"/2018-06-01/runtime/invocation/{request_id}/{what}"


# --- buffered ---------------------------------------------------------------------------------------------------


def test_buffered_result_on_one_kept_alive_connection(api: FakeRuntimeApi, start: Callable[..., Runtime]) -> None:
    runtime = start(
        """
        def handler(event, context):
            return {"echo": event, "name": context.function_name, "memory": context.memory_limit_in_mb}
        """
    )
    first = api.add_event(b'{"a": 1}')
    second = api.add_event(b'"text"')
    one = api.next_request()
    two = api.next_request()
    assert (one.method, one.target) == ("POST", invocation_path(first, "response"))
    assert one.header("content-type") == "application/json"
    assert one.json() == {"echo": {"a": 1}, "name": "fn", "memory": "128"}
    assert two.target == invocation_path(second, "response")
    assert two.json() == {"echo": "text", "name": "fn", "memory": "128"}
    assert {one.connection, two.connection} == {1}
    api.wait_for_next(3)
    assert runtime.stop() == 0


def test_bytes_result_is_sent_as_is(api: FakeRuntimeApi, start: Callable[..., Runtime]) -> None:
    start("def handler(event, context):\n    return b'\\x00raw'\n")
    request_id = api.add_event()
    request = api.next_request()
    assert request.target == invocation_path(request_id, "response")
    assert request.body == b"\x00raw"
    assert request.header("content-type") == "application/unknown"


def test_exception_is_posted_to_error(api: FakeRuntimeApi, start: Callable[..., Runtime], tmp_path: Path) -> None:
    runtime = start(
        """
        def helper():
            raise ValueError("boom")

        def handler(event, context):
            helper()
        """
    )
    request_id = api.add_event()
    request = api.next_request()
    assert request.target == invocation_path(request_id, "error")
    assert request.header("lambda-runtime-function-error-type") == "ValueError"
    assert request.header("content-type") == "application/json"
    app = tmp_path / "app.py"
    assert request.json() == {
        "errorMessage": "boom",
        "errorType": "ValueError",
        "requestId": request_id,
        "stackTrace": [
            f'  File "{app}", line 6, in handler\n    helper()\n',
            f'  File "{app}", line 3, in helper\n    raise ValueError("boom")\n',
        ],
    }
    cause = json.loads(request.header("lambda-runtime-function-xray-error-cause") or "")
    assert cause["exceptions"][0]["type"] == "ValueError"
    assert cause["paths"] == [str(app)]
    api.wait_for_next(2)  # the runtime carries on
    assert runtime.stop() == 0
    assert "[ERROR] ValueError: boom\rTraceback (most recent call last):\r" in runtime.output


def test_undecodable_event_is_an_unmarshal_error(api: FakeRuntimeApi, start: Callable[..., Runtime]) -> None:
    start("def handler(event, context):\n    return event\n")
    request_id = api.add_event(b"{not json")
    request = api.next_request()
    assert request.target == invocation_path(request_id, "error")
    body = request.json()
    assert isinstance(body, dict)
    assert body["errorType"] == "Runtime.UnmarshalError"
    assert body["errorMessage"].startswith("Unable to unmarshal input: Expecting property name")


def test_import_error_is_posted_to_init_error_and_the_runtime_exits(
    api: FakeRuntimeApi, start: Callable[..., Runtime]
) -> None:
    runtime = start("import not_there\n")
    request = api.next_request()
    assert (request.method, request.target) == ("POST", "/2018-06-01/runtime/init/error")
    assert request.header("lambda-runtime-function-error-type") == "Runtime.ImportModuleError"
    assert request.json() == {
        "errorMessage": "Unable to import module 'app': No module named 'not_there'",
        "errorType": "Runtime.ImportModuleError",
        "requestId": "",
        "stackTrace": [],
    }
    assert runtime.wait() == 1
    assert api.next_calls.empty()
    assert "[ERROR] Runtime.ImportModuleError: Unable to import module 'app'" in runtime.output


def test_handler_from_env_in_a_subdirectory_module(
    api: FakeRuntimeApi, start: Callable[..., Runtime], tmp_path: Path
) -> None:
    (tmp_path / "pkg").mkdir()
    start(
        "def handler(event, context):\n    return __name__\n",
        handler=None,
        module="pkg/mod.py",
        env={"_HANDLER": "pkg/mod.handler"},
    )
    api.add_event()
    assert api.next_request().json() == "pkg.mod"


# --- context, logging ---------------------------------------------------------------------------------------------


def test_context_from_the_next_headers(api: FakeRuntimeApi, start: Callable[..., Runtime]) -> None:
    start(
        """
        import os

        def handler(event, context):
            cc = context.client_context
            return {
                "remaining": context.get_remaining_time_in_millis(),
                "request_id": context.aws_request_id,
                "arn": context.invoked_function_arn,
                "client": cc and cc.client.installation_id,
                "custom": cc and cc.custom,
                "env": cc and cc.env,
                "w3c": context.w3c(),
                "identity": [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id],
                "tenant": context.tenant_id,
                "trace": os.environ.get("_X_AMZN_TRACE_ID"),
                "repr": repr(context),
            }
        """
    )
    client_context = {
        "client": {"installation_id": "install-1"},
        "custom": {"k": "v"},
        "env": {"platform": "test"},
        "w3c": {"traceparent": "00-abc-def-01", "other": "x"},
    }
    request_id = api.add_event(
        deadline_ms=int(time.time() * 1000) + 20_000,
        headers={
            "Lambda-Runtime-Client-Context": json.dumps(client_context),
            "Lambda-Runtime-Cognito-Identity": '{"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}',
            "Lambda-Runtime-Aws-Tenant-Id": "tenant-1",
            "Lambda-Runtime-Trace-Id": "Root=1-abc",
        },
    )
    result = api.next_request().json()
    assert isinstance(result, dict)
    assert 18_000 < result.pop("remaining") <= 20_000
    assert result.pop("repr").startswith(f"LambdaContext([aws_request_id={request_id},log_group_name=/aws/lambda/fn")
    assert result == {
        "request_id": request_id,
        "arn": ARN,
        "client": "install-1",
        "custom": {"k": "v"},
        "env": {"platform": "test"},
        "w3c": {"traceparent": "00-abc-def-01"},
        "identity": ["id-1", "pool-1"],
        "tenant": "tenant-1",
        "trace": "Root=1-abc",
    }
    # Without those headers: no client context, an empty identity, no trace id, a deadline in the past → 0.
    api.add_event(deadline_ms=int(time.time() * 1000) - 5_000)
    result = api.next_request().json()
    assert isinstance(result, dict)
    assert result["remaining"] == 0
    assert result["identity"] == [None, None]
    assert (result["client"], result["trace"], result["tenant"]) == (None, None, None)


def test_logging_and_print(api: FakeRuntimeApi, start: Callable[..., Runtime]) -> None:
    runtime = start(
        """
        import logging

        def handler(event, context):
            print("printed")
            logging.warning("warned %d", 1)
            logging.info("not shown at the default level")
            return None
        """
    )
    request_id = api.add_event()
    assert api.next_request().body == b"null"
    api.wait_for_next(2)
    assert runtime.stop() == 0
    lines = runtime.output.splitlines()
    assert "printed" in lines
    warning = next(line for line in lines if line.startswith("[WARNING]"))
    _level, timestamp, logged_id, message = warning.split("\t")
    assert (logged_id, message) == (request_id, "warned 1")
    assert time.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S") and timestamp.endswith("Z")
    assert "not shown" not in runtime.output


def test_json_log_format(api: FakeRuntimeApi, start: Callable[..., Runtime]) -> None:
    runtime = start(
        "import logging\n\ndef handler(event, context):\n    logging.getLogger('app').info('hi')\n",
        env={"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO"},
    )
    request_id = api.add_event()
    api.next_request()
    api.wait_for_next(2)
    runtime.stop()
    record = json.loads(next(line for line in runtime.output.splitlines() if '"hi"' in line))
    assert record["level"] == "INFO"
    assert record["message"] == "hi"
    assert record["logger"] == "app"
    assert record["requestId"] == request_id


# --- streaming ----------------------------------------------------------------------------------------------------

SSE_APP = """
    import time
    from pyrie_runtime_client import streaming

    @streaming(content_type="text/event-stream")
    def handler(event, context):
        yield "data: 1\\n\\n"
        time.sleep(event["pause"])
        yield b""  # skipped: a zero-length chunk would end the body
        yield "data: 2\\n\\n".encode()
        time.sleep(event["pause"])
        yield "data: é\\n\\n"
"""


def test_generator_is_streamed_chunk_by_chunk(api: FakeRuntimeApi, start: Callable[..., Runtime]) -> None:
    start(SSE_APP)
    with MachineWait() as machine:
        request_id = api.add_event(b'{"pause": 0.3}')
        request = api.next_request()
    assert request.target == invocation_path(request_id, "response")
    assert request.header("lambda-runtime-function-response-mode") == "streaming"
    assert request.header("transfer-encoding") == "chunked"
    assert request.header("content-type") == "text/event-stream"
    assert request.all("trailer") == ["Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body"]
    assert request.header("content-length") is None
    assert request.chunks == [b"data: 1\n\n", b"data: 2\n\n", "data: é\n\n".encode()]
    assert request.trailers == []
    # each chunk arrived when it was yielded (0.3 s apart), not at the end
    assert_one_by_one(request.chunk_times, 0.3, machine.waited)


def test_plain_generator_streams_as_octet_stream(api: FakeRuntimeApi, start: Callable[..., Runtime]) -> None:
    start(
        """
        class Chunks:
            def __iter__(self):
                return iter([b"a", "b"])

        def handler(event, context):
            if event == "iterable":
                return Chunks()
            return (str(n) for n in range(3))
        """
    )
    api.add_event()
    request = api.next_request()
    assert request.header("content-type") == "application/octet-stream"
    assert request.chunks == [b"0", b"1", b"2"]
    api.add_event(b'"iterable"')
    assert api.next_request().chunks == [b"a", b"b"]


def test_streaming_response_value_and_empty_stream(api: FakeRuntimeApi, start: Callable[..., Runtime]) -> None:
    start(
        """
        from pyrie_runtime_client import StreamingResponse

        def handler(event, context):
            if event == "empty":
                return StreamingResponse(iter(()), content_type="text/plain")
            return StreamingResponse(["x", "y"], content_type="application/x-ndjson")
        """
    )
    api.add_event()
    request = api.next_request()
    assert (request.header("content-type"), request.chunks) == ("application/x-ndjson", [b"x", b"y"])
    api.add_event(b'"empty"')
    request = api.next_request()
    assert request.header("lambda-runtime-function-response-mode") == "streaming"
    assert (request.header("content-type"), request.chunks, request.body) == ("text/plain", [], b"")


def test_prelude_is_sent_just_before_the_first_body_chunk(api: FakeRuntimeApi, start: Callable[..., Runtime]) -> None:
    start(
        """
        from pyrie_runtime_client import StreamingResponse

        def body(fail):
            if fail:
                raise ValueError("no body")
            yield "hello"

        def handler(event, context):
            prelude = [b'{"statusCode": 201}', bytes(8)]
            content_type = "application/vnd.awslambda.http-integration-response"
            return StreamingResponse(body(event == "fail"), content_type=content_type, prelude=prelude)
        """
    )
    api.add_event()
    request = api.next_request()
    assert request.header("content-type") == "application/vnd.awslambda.http-integration-response"
    assert request.chunks == [b'{"statusCode": 201}', b"\0" * 8, b"hello"]
    request_id = api.add_event(b'"fail"')
    request = api.next_request()  # nothing was sent before the error: a plain error response
    assert request.target == invocation_path(request_id, "error")


def test_exception_mid_stream_ends_with_error_trailers(
    api: FakeRuntimeApi, start: Callable[..., Runtime], tmp_path: Path
) -> None:
    runtime = start(
        """
        def handler(event, context):
            yield "partial"
            raise RuntimeError("exploded after first chunk")
        """
    )
    request_id = api.add_event()
    request = api.next_request()
    assert request.target == invocation_path(request_id, "response")
    assert request.chunks == [b"partial"]
    assert request.trailer("lambda-runtime-function-error-type") == "RuntimeError"
    error = json.loads(base64.b64decode(request.trailer("lambda-runtime-function-error-body") or ""))
    app = tmp_path / "app.py"
    assert error == {
        "errorMessage": "exploded after first chunk",
        "errorType": "RuntimeError",
        "requestId": request_id,
        "stackTrace": [f'  File "{app}", line 4, in handler\n    raise RuntimeError("exploded after first chunk")\n'],
    }
    api.wait_for_next(2)
    assert runtime.stop() == 0
    assert "[ERROR] RuntimeError: exploded after first chunk" in runtime.output


def test_exception_before_the_first_item_is_a_plain_error(api: FakeRuntimeApi, start: Callable[..., Runtime]) -> None:
    start(
        """
        from pyrie_runtime_client import streaming

        @streaming(content_type="text/event-stream")
        def handler(event, context):
            if event.get("bad_item"):
                yield 42
            raise KeyError("missing")
        """
    )
    request_id = api.add_event()
    request = api.next_request()
    assert request.target == invocation_path(request_id, "error")
    assert request.header("lambda-runtime-function-response-mode") is None
    body = request.json()
    assert isinstance(body, dict)
    assert (body["errorType"], body["errorMessage"]) == ("KeyError", "'missing'")
    request_id = api.add_event(b'{"bad_item": true}')
    body = api.next_request().json()
    assert isinstance(body, dict)
    assert body["errorType"] == "TypeError"
    assert body["errorMessage"] == "streamed items must be str or bytes-like objects, not int"


def test_early_answer_mid_stream_is_logged_and_the_runtime_carries_on(
    api: FakeRuntimeApi, start: Callable[..., Runtime], tmp_path: Path
) -> None:
    answered = threading.Event()

    def too_large(request: Recorded) -> tuple[int, bytes] | None:
        if len(request.chunks) == 2:
            answered.set()
            return 413, b'{"errorType":"RequestEntityTooLarge"}'
        return None

    api.early = too_large
    runtime = start(
        """
        import os, time

        def handler(event, context):
            try:
                for n in range(1000):
                    yield "x" * 1000
                    time.sleep(event["pause"])
            finally:
                open("closed", "w").close()
        """
    )
    api.add_event(b'{"pause": 0.002}')
    request = api.next_request()
    assert answered.wait(TIMEOUT)
    assert len(request.chunks) == 2
    api.early = None
    request_id = api.add_event(b'{"pause": 0}')
    after = api.next_request()
    assert after.target == invocation_path(request_id, "response")
    assert len(after.chunks) == 1000
    assert runtime.stop() == 0
    assert "answered 413" in runtime.output
    assert (tmp_path / "closed").exists()  # the abandoned generator was closed


def test_dropped_connection_mid_stream(api: FakeRuntimeApi, start: Callable[..., Runtime]) -> None:
    api.early = lambda request: "drop"
    runtime = start(
        """
        import time

        def handler(event, context):
            for n in range(100):
                yield "chunk"
                time.sleep(0.005)
        """
    )
    api.add_event()
    assert api.next_request().chunks == [b"chunk"]
    api.early = None
    api.add_event()
    assert api.next_request().chunks == [b"chunk"] * 100
    assert runtime.stop() == 0
    assert "closed the connection before the end of the stream" in runtime.output


# --- process life ------------------------------------------------------------------------------------------------


def test_runtime_api_gone_exits_with_an_error_line(api: FakeRuntimeApi, start: Callable[..., Runtime]) -> None:
    runtime = start("def handler(event, context):\n    return 1\n")
    api.wait_for_next()
    api.close()
    assert runtime.wait() == 1
    assert "Failed to get next invocation" in runtime.output
    assert "Traceback" not in runtime.output


def test_installed_beside_awslambdaric_both_work(
    api: FakeRuntimeApi, start: Callable[..., Runtime], tmp_path: Path
) -> None:
    """pyrie's runtime client has a name of its own: installed into one environment with awslambdaric, neither
    shadows the other (awslambdaric's C extension module is called ``runtime_client``)."""
    theirs = subprocess.run(
        [sys.executable, "-c", "import runtime_client; print(hasattr(runtime_client, 'initialize_client'))"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        check=True,
    )
    assert theirs.stdout.strip() == "True"
    start(
        "import sys\n\ndef handler(event, context):\n    return sys.path[:1]\n",
        command=[sys.executable, "-m", "pyrie_runtime_client"],
        env={"PYTHONPATH": ""},
    )
    api.add_event()
    assert api.next_request().json() == [str(tmp_path)]  # -m puts the task root first, nothing of pyrie's


def test_no_handler_exits_1(start: Callable[..., Runtime]) -> None:
    runtime = start("", handler=None)
    assert runtime.wait() == 1
    assert "no handler" in runtime.output


# --- the same bytes as awslambdaric -------------------------------------------------------------------------------

CROSS_CHECK_CASES = {
    "dict": ("def handler(event, context):\n    return {'a': [1, 2.5, None, True], 'é': 'ü'}\n", b"{}"),
    "str": ("def handler(event, context):\n    return 'hello'\n", b"{}"),
    "nan": ("def handler(event, context):\n    return float('nan')\n", b"{}"),
    "decimal": ("import decimal\ndef handler(event, context):\n    return decimal.Decimal('12')\n", b"{}"),
    "exception": ("def handler(event, context):\n    raise ValueError('bad value')\n", b"{}"),
    "marshal": ("def handler(event, context):\n    return {1, 2}\n", b"{}"),
    "unmarshal": ("def handler(event, context):\n    return event\n", b"[1,"),
    "import": ("import nope\n", None),
    "missing": ("x = 1\n", None),
    "syntax": ("def handler(:\n", None),
    "raise_at_import": ("raise RuntimeError('at import')\n", None),
}


def _first_answer(
    api: FakeRuntimeApi, start: Callable[..., Runtime], code: str, event: bytes | None, command: list[str]
) -> Recorded:
    env = {"PYTHONPATH": ""} if command[-1] == "awslambdaric" else {}
    runtime = start(code, command=command, env=env)
    if event is not None:
        api.add_event(event, request_id="11111111-2222-3333-4444-555555555555")
    request = api.next_request()
    runtime.stop()
    return request


@pytest.mark.skipif(importlib.util.find_spec("awslambdaric") is None, reason="awslambdaric is not installed")
@pytest.mark.parametrize("case", sorted(CROSS_CHECK_CASES))
def test_same_answer_as_awslambdaric(api: FakeRuntimeApi, start: Callable[..., Runtime], case: str) -> None:
    code, event = CROSS_CHECK_CASES[case]
    ours = _first_answer(api, start, code, event, [sys.executable, "-m", "pyrie_runtime_client"])
    theirs = _first_answer(api, start, code, event, [sys.executable, "-m", "awslambdaric"])
    assert ours.target == theirs.target
    if case == "raise_at_import":
        # A deliberate difference: awslambdaric's stack trace starts with the import machinery's frames.
        theirs_body = json.loads(theirs.body)
        theirs_body["stackTrace"] = [frame for frame in theirs_body["stackTrace"] if "importlib" not in frame]
        assert json.loads(ours.body) == theirs_body
        assert len(json.loads(ours.body)["stackTrace"]) == 1
    else:
        assert ours.body == theirs.body


# --- the examples -------------------------------------------------------------------------------------------------


def test_sse_example(api: FakeRuntimeApi, start: Callable[..., Runtime]) -> None:
    start((REPO / "examples" / "python-sse" / "app.py").read_text())
    with MachineWait() as machine:
        request_id = api.add_event(b'{"count": 3, "interval_ms": 100}')
        request = api.next_request()
    assert request.header("content-type") == "text/event-stream"
    assert request.chunks == [
        f'id: {n}\nevent: tick\ndata: {{"n": {n}, "requestId": "{request_id}"}}\n\n'.encode() for n in (1, 2, 3)
    ]
    assert_one_by_one(request.chunk_times, 0.1, machine.waited)


def test_buffered_example(api: FakeRuntimeApi, start: Callable[..., Runtime]) -> None:
    start((REPO / "examples" / "python-buffered" / "app.py").read_text())
    request_id = api.add_event(b'{"hello": "world"}')
    result = api.next_request().json()
    assert isinstance(result, dict)
    assert 0 < result.pop("remainingTimeInMillis") <= 30_000
    assert result == {
        "event": {"hello": "world"},
        "requestId": request_id,
        "functionName": "fn",
        "functionVersion": "$LATEST",
        "memoryLimitInMB": "128",
    }


def test_deep_recursion_error_is_still_reported(api: FakeRuntimeApi, start: Callable[..., Runtime]) -> None:
    start("def handler(event, context):\n    return handler(event, context)\n")
    request_id = api.add_event()
    request = api.next_request()
    assert request.target == invocation_path(request_id, "error")
    assert request.header("lambda-runtime-function-xray-error-cause") is None  # too large for a header
    body = request.json()
    assert isinstance(body, dict)
    assert body["errorType"] == "RecursionError"
    assert len(body["stackTrace"]) > 100
