"""Telemetry and Logs API subscribers (an HTTP server and a TCP server run by the test) receive the platform events
and the log lines of each invoke in order; the log tail decodes to the invoke's lines; JSON platform lines."""

from __future__ import annotations

import base64
import http.server
import json
import socketserver
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.conftest import StartPyrie
from tests.harness import RAW_RUNTIME, Pyrie, free_port, wait_until
from tests.test_extensions import start_with_extensions


class Collector:
    """What a subscriber received, in arrival order."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.posts: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()

    def add(self, events: list[dict[str, Any]]) -> None:
        with self.lock:
            self.events.extend(events)

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.events)

    def wait_for(self, predicate: Any, what: str) -> list[dict[str, Any]]:
        return wait_until(lambda: predicate(self.snapshot()) and self.snapshot(), 15, what=what)


@pytest.fixture
def http_subscriber() -> Iterator[tuple[int, Collector]]:
    collector = Collector()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with collector.lock:
                collector.posts.append((self.path, dict(self.headers)))
            collector.add(json.loads(body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], collector
    server.shutdown()
    server.server_close()


@pytest.fixture
def tcp_subscriber() -> Iterator[tuple[int, Collector]]:
    collector = Collector()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            for line in self.rfile:
                collector.add([json.loads(line)])

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], collector
    server.shutdown()
    server.server_close()


def start(start_pyrie: StartPyrie, tmp_path: Path, plan: dict[str, Any]) -> Pyrie:
    return start_with_extensions(start_pyrie, tmp_path, plan, scenario="print")


def invoke_printing(pyrie: Pyrie, *lines: str, headers: dict[str, str] | None = None) -> Any:
    response = pyrie.invoke(json.dumps({"lines": list(lines)}), headers=headers)
    assert response.status_code == 200
    return response


def of_request(events: list[dict[str, Any]], request_id: str, lines: tuple[str, ...]) -> list[tuple[str, Any]]:
    """The events of one invoke: its platform events and its function lines, as (type, requestId or line)."""
    picked = []
    for event in events:
        record = event["record"]
        if event["type"] == "function" and record in lines:
            picked.append(("function", record))
        elif isinstance(record, dict) and record.get("requestId") == request_id:
            picked.append((event["type"], request_id))
    return picked


def has_report(request_id: str) -> Any:
    return lambda events: any(e["type"] == "platform.report" and e["record"]["requestId"] == request_id for e in events)


def test_http_subscriber_receives_each_invoke_in_order(
    start_pyrie: StartPyrie, tmp_path: Path, http_subscriber: tuple[int, Collector]
) -> None:
    port, collector = http_subscriber
    destination = {"protocol": "HTTP", "URI": f"http://sandbox.localdomain:{port}/telemetry"}
    pyrie = start(start_pyrie, tmp_path, {"probe": {"telemetry": destination}})
    first = invoke_printing(pyrie, "line one a", "line two a").headers["X-Amzn-RequestId"]
    second = invoke_printing(pyrie, "line one b", "line two b").headers["X-Amzn-RequestId"]
    # the second invoke's report comes once the extension is back in /event/next after its INVOKE
    events = collector.wait_for(has_report(second), "the second invoke's platform.report")

    types = [event["type"] for event in events]
    init = ["platform.initStart", "platform.initRuntimeDone", "platform.extension", "platform.initReport"]
    assert [t for t in types if t in init] == init
    assert types.index("platform.initReport") < types.index("platform.start")
    assert "platform.telemetrySubscription" in types
    for request_id, suffix in ((first, "a"), (second, "b")):
        lines = (f"line one {suffix}", f"line two {suffix}")
        assert of_request(events, request_id, lines) == [
            ("platform.start", request_id),
            ("function", lines[0]),
            ("function", lines[1]),
            ("platform.runtimeDone", request_id),
            ("platform.report", request_id),
        ]
    by_type = {event["type"]: event for event in events if event["record"] and isinstance(event["record"], dict)}
    assert by_type["platform.extension"]["record"] == {
        "name": "probe",
        "state": "Ready",
        "events": ["INVOKE", "SHUTDOWN"],
    }
    assert by_type["platform.telemetrySubscription"]["record"] == {
        "name": "probe",
        "state": "Subscribed",
        "types": ["platform", "function", "extension"],
    }
    done = next(e for e in events if e["type"] == "platform.runtimeDone" and e["record"]["requestId"] == first)
    assert done["record"]["status"] == "success"
    assert done["record"]["metrics"]["producedBytes"] == len(json.dumps({"lines": ["line one a", "line two a"]}))
    assert [span["name"] for span in done["record"]["spans"]] == ["responseLatency", "responseDuration"]
    assert done["record"]["tracing"]["type"] == "X-Amzn-Trace-Id"
    report = next(e for e in events if e["type"] == "platform.report" and e["record"]["requestId"] == first)
    assert report["record"]["status"] == "success"
    metrics = report["record"]["metrics"]
    assert set(metrics) == {"durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB", "initDurationMs"}
    assert metrics["memorySizeMB"] == 3008
    assert "extension" in types  # the extension's own output ("probe initialised"), as extension log lines
    assert all(event["time"].endswith("Z") and len(event["time"]) == 24 for event in events)
    assert {path for path, _ in collector.posts} == {"/telemetry"}
    assert all(headers["Content-Type"] == "application/json" for _, headers in collector.posts)


def test_tcp_and_logs_api_subscribers(
    start_pyrie: StartPyrie,
    tmp_path: Path,
    tcp_subscriber: tuple[int, Collector],
    http_subscriber: tuple[int, Collector],
) -> None:
    tcp_port, tcp = tcp_subscriber
    http_port, logs = http_subscriber
    plan = {
        "tcp-telemetry": {"telemetry": {"protocol": "TCP", "port": tcp_port}},
        "logs-http": {
            "logs": {"protocol": "HTTP", "URI": f"http://sandbox.localdomain:{http_port}/logs"},
            "logs_schema": "2020-08-15",
        },
    }
    pyrie = start(start_pyrie, tmp_path, plan)
    request_id = invoke_printing(pyrie, "hello tcp").headers["X-Amzn-RequestId"]
    events = tcp.wait_for(has_report(request_id), "platform.report over TCP")
    assert of_request(events, request_id, ("hello tcp",)) == [
        ("platform.start", request_id),
        ("function", "hello tcp"),
        ("platform.runtimeDone", request_id),
        ("platform.report", request_id),
    ]
    events = logs.wait_for(has_report(request_id), "platform.report over the Logs API")
    assert of_request(events, request_id, ("hello tcp",)) == [
        ("platform.start", request_id),
        ("function", "hello tcp"),
        ("platform.runtimeDone", request_id),
        ("platform.end", request_id),
        ("platform.report", request_id),
    ]
    types = {event["type"] for event in events}
    assert "platform.logsSubscription" in types
    assert not types & {"platform.initStart", "platform.initReport", "platform.telemetrySubscription"}
    report = next(e for e in events if e["type"] == "platform.report")
    assert set(report["record"]) == {"requestId", "metrics"}


def test_a_dead_subscriber_breaks_nothing(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    nobody = {"protocol": "HTTP", "URI": f"http://sandbox.localdomain:{free_port()}/"}
    pyrie = start(start_pyrie, tmp_path, {"probe": {"telemetry": nobody}})
    for n in range(3):
        assert invoke_printing(pyrie, f"line {n}").status_code == 200


def tail_lines(response: Any) -> list[str]:
    return base64.b64decode(response.headers["X-Amz-Log-Result"]).decode().splitlines()


def test_log_tail_holds_the_invokes_lines(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(sys.executable, RAW_RUNTIME, extra_env={"RAW_SCENARIO": "print"})
    plain = invoke_printing(pyrie, "not asked for")
    assert "X-Amz-Log-Result" not in plain.headers
    response = invoke_printing(pyrie, "hello", "world", headers={"X-Amz-Log-Type": "Tail"})
    request_id = response.headers["X-Amzn-RequestId"]
    lines = tail_lines(response)
    assert lines[:4] == [
        f"START RequestId: {request_id} Version: $LATEST",
        "hello",
        "world",
        f"END RequestId: {request_id}",
    ]
    assert len(lines) == 5
    assert lines[4].startswith(f"REPORT RequestId: {request_id}\tDuration: ")
    assert response.json() == {"lines": ["hello", "world"]}
    assert response.headers["Content-Length"] == str(len(response.content))

    many = [f"{n:04d} " + "x" * 94 for n in range(100)]  # 10,000 bytes of output
    tail = base64.b64decode(
        invoke_printing(pyrie, *many, headers={"X-Amz-Log-Type": "Tail"}).headers["X-Amz-Log-Result"]
    )
    assert len(tail) == 4096
    assert tail.endswith(b"\t\n")  # the REPORT line ends it
    assert b"0099 xxx" in tail
    assert b"0000 xxx" not in tail


def test_log_tail_through_boto3_and_on_a_timeout(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(
        sys.executable, RAW_RUNTIME, extra_env={"RAW_SCENARIO": "hang_in_invoke", "AWS_LAMBDA_FUNCTION_TIMEOUT": "1"}
    )
    client = boto3.client(
        "lambda",
        endpoint_url=pyrie.url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1}, read_timeout=30),
    )
    result = client.invoke(FunctionName="function", Payload=b"{}", LogType="Tail")
    assert result["FunctionError"] == "Unhandled"
    lines = base64.b64decode(result["LogResult"]).decode().splitlines()
    request_id = result["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert lines[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert lines[1] == "hanging"
    assert lines[2].endswith(f" {request_id} Task timed out after 1.00 seconds")
    assert lines[3] == f"END RequestId: {request_id}"
    assert lines[4].startswith(f"REPORT RequestId: {request_id}\t")


def test_json_log_format(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(
        sys.executable, RAW_RUNTIME, extra_env={"RAW_SCENARIO": "print", "AWS_LAMBDA_LOG_FORMAT": "JSON"}
    )
    response = invoke_printing(pyrie, "a plain line", headers={"X-Amz-Log-Type": "Tail"})
    request_id = response.headers["X-Amzn-RequestId"]
    pyrie.wait_for_output('"type":"platform.report"')
    records = [json.loads(line) for line in pyrie.stdout_lines() if line.startswith('{"time":')]
    assert [record["type"] for record in records] == [
        "platform.initStart",
        "platform.initRuntimeDone",
        "platform.initReport",
        "platform.start",
        "platform.runtimeDone",
        "platform.report",
    ]
    assert records[3]["record"]["requestId"] == request_id
    assert records[5]["record"]["status"] == "success"
    assert "START RequestId" not in pyrie.stdout()
    tail = tail_lines(response)
    assert [json.loads(tail[0])["type"], tail[1], json.loads(tail[2])["type"], json.loads(tail[3])["type"]] == [
        "platform.start",
        "a plain line",
        "platform.runtimeDone",
        "platform.report",
    ]
