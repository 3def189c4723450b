"""The pure pieces of extensions, telemetry and the log tail, byte for byte: event bodies, the buffering policy,
subscription and registration parsing, the extension state table, discovery, the extension environment."""

from __future__ import annotations

import base64
import itertools
import json
from pathlib import Path

import pytest

from pyrie_core.address import Address
from pyrie_core.machine import InvalidTransition
from runtime_api.extension_states import EXTENSION_TRANSITIONS, ExtensionState, extension_machine
from runtime_api.registration import ExtensionError, parse_register_body
from runtime_api.subscription import Category, SubscriptionError, parse_subscription
from supervisor import cli
from supervisor.environment.extension_set import ShutdownReason, discover, invoke_event, shutdown_event
from supervisor.log_tail import LogTail
from supervisor.observe.telemetry_events import (
    Status,
    encode_event,
    init_report,
    init_runtime_done,
    init_start,
    iso_time,
    log_line,
    logs_api_events,
    platform_start,
    report,
    restore_report,
    restore_runtime_done,
    restore_start,
    runtime_done,
    span,
    telemetry_api_events,
)
from supervisor.observe.telemetry_hub import HELD_BATCHES, BatchBuffer

RID = "6d68ca91-49c9-448d-89b8-7ca3e6dc66aa"
TRACE = "Root=1-62e900b2-710d76f009d6e7785905449a;Parent=0efbd19962d95b05;Sampled=1"


# -- events --------------------------------------------------------------------------------------------------------


def test_time_format_has_milliseconds_and_z():
    assert iso_time(0.5) == "1970-01-01T00:00:00.500Z"
    assert iso_time(1665532815.064) == "2022-10-12T00:00:15.064Z"


def test_go_json_escapes_html_characters():
    assert encode_event({"record": "<a&b>", "n": "é"}) == '{"record":"\\u003ca\\u0026b\\u003e","n":"é"}'.encode()


def test_invoke_event_bytes():
    arn = "arn:aws:lambda:us-east-1:012345678912:function:f"
    assert (
        invoke_event(1700000000000, RID, arn, TRACE)
        == (
            f'{{"eventType":"INVOKE","deadlineMs":1700000000000,"requestId":"{RID}","invokedFunctionArn":"{arn}",'
            f'"tracing":{{"type":"X-Amzn-Trace-Id","value":"{TRACE}"}}}}'
        ).encode()
    )
    assert b"tracing" not in invoke_event(1, RID, arn, None)


@pytest.mark.parametrize("reason", list(ShutdownReason))
def test_shutdown_event_bytes(reason):
    assert (
        shutdown_event(1700000002000, reason)
        == (f'{{"eventType":"SHUTDOWN","deadlineMs":1700000002000,"shutdownReason":"{reason.value}"}}').encode()
    )
    assert {reason.value for reason in ShutdownReason} == {"spindown", "timeout", "failure"}


def test_platform_start_and_runtime_done_records():
    start = platform_start(RID, "$LATEST", TRACE, "54565fb41ac79632")
    assert start["type"] == "platform.start"
    assert json.dumps(start["record"]) == json.dumps(
        {
            "requestId": RID,
            "version": "$LATEST",
            "tracing": {"spanId": "54565fb41ac79632", "type": "X-Amzn-Trace-Id", "value": TRACE},
        }
    )
    done = runtime_done(
        RID,
        Status.SUCCESS,
        duration_ms=140.0004,
        produced_bytes=16,
        spans=[span("responseLatency", 0.25, 23.0219)],
        trace_id=None,
        span_id=None,
    )
    assert (
        encode_event(done["record"])
        == (
            f'{{"requestId":"{RID}","status":"success","metrics":{{"durationMs":140.0,"producedBytes":16}},'
            '"spans":[{"name":"responseLatency","start":"1970-01-01T00:00:00.250Z","durationMs":23.022}]}'
        ).encode()
    )


def test_report_record():
    event = report(
        RID,
        Status.TIMEOUT,
        duration_ms=693.92,
        memory_mb=128,
        max_memory_used_mb=84,
        init_duration_ms=None,
        spans=[],
        trace_id=None,
        span_id=None,
        error_type="Sandbox.Timedout",
    )
    assert (
        encode_event(event["record"])
        == (
            f'{{"requestId":"{RID}","status":"timeout","metrics":{{"durationMs":693.92,"billedDurationMs":694,'
            '"memorySizeMB":128,"maxMemoryUsedMB":84},"errorType":"Sandbox.Timedout"}'
        ).encode()
    )
    with_init = report(
        RID,
        Status.SUCCESS,
        duration_ms=1.0,
        memory_mb=128,
        max_memory_used_mb=84,
        init_duration_ms=397.68,
        spans=[],
        trace_id=None,
        span_id=None,
    )
    assert with_init["record"]["metrics"]["initDurationMs"] == 397.68


def test_init_report_record():
    assert init_report(125.33, Status.SUCCESS)["record"] == {
        "initializationType": "on-demand",
        "phase": "init",
        "status": "success",
        "metrics": {"durationMs": 125.33},
    }


def test_snapstart_init_events_say_snap_start():
    assert init_start("f", "$LATEST", init_type="snap-start")["record"]["initializationType"] == "snap-start"
    assert init_runtime_done(Status.SUCCESS, init_type="snap-start")["record"]["initializationType"] == "snap-start"
    assert init_report(1.0, Status.SUCCESS, init_type="snap-start")["record"]["initializationType"] == "snap-start"


def test_restore_records_follow_the_schema_reference():
    assert restore_start("f", "$LATEST")["type"] == "platform.restoreStart"
    assert restore_start("f", "$LATEST")["record"] == {"functionName": "f", "functionVersion": "$LATEST"}
    done = restore_runtime_done(Status.SUCCESS)
    assert (done["type"], done["record"]) == ("platform.restoreRuntimeDone", {"status": "success"})
    failed = restore_runtime_done(Status.ERROR, "Runtime.AfterRestoreError")
    assert failed["record"] == {"status": "error", "errorType": "Runtime.AfterRestoreError"}
    reported = restore_report(15.1904, Status.SUCCESS)
    assert (reported["type"], encode_event(reported["record"])) == (
        "platform.restoreReport",
        b'{"status":"success","metrics":{"durationMs":15.19}}',
    )
    assert encode_event(restore_report(2.0, Status.TIMEOUT, "Runtime.Unknown")["record"]) == (
        b'{"status":"timeout","errorType":"Runtime.Unknown","metrics":{"durationMs":2.0}}'
    )
    # like init's, the restore's events are the Telemetry API's only
    assert logs_api_events(restore_report(1.0, Status.SUCCESS)) == []
    assert logs_api_events(restore_start("f", "1")) == []


def test_report_record_after_a_restore():
    event = report(
        RID,
        Status.SUCCESS,
        duration_ms=306.34,
        memory_mb=128,
        max_memory_used_mb=84,
        init_duration_ms=None,
        spans=[],
        trace_id=None,
        span_id=None,
        restore_duration_ms=511.25,
    )
    assert event["record"]["metrics"] == {
        "durationMs": 306.34,
        "billedDurationMs": 307 + 512,  # the billed restore counts, as in REPORT's text
        "memorySizeMB": 128,
        "maxMemoryUsedMB": 84,
        "restoreDurationMs": 511.25,
    }


def test_log_lines_lose_their_line_break():
    event = log_line(Category.FUNCTION, b"[INFO] hello\n", 0)
    assert event == {"time": "1970-01-01T00:00:00.000Z", "type": "function", "record": "[INFO] hello"}


def test_logs_api_view():
    done = report(
        RID,
        Status.SUCCESS,
        duration_ms=1.5,
        memory_mb=128,
        max_memory_used_mb=20,
        init_duration_ms=None,
        spans=[],
        trace_id=TRACE,
        span_id="1",
    )
    end, logs_report = logs_api_events(done)
    assert end == {"time": done["time"], "type": "platform.end", "record": {"requestId": RID}}
    assert logs_report["record"] == {"requestId": RID, "metrics": done["record"]["metrics"]}
    assert logs_api_events(init_report(1.0, Status.SUCCESS)) == []
    line = log_line(Category.EXTENSION, b"x")
    assert logs_api_events(line) == [line] == telemetry_api_events(line)


# -- the log tail --------------------------------------------------------------------------------------------------


def test_log_tail_keeps_the_last_4096_bytes():
    tail = LogTail()
    for n in range(300):
        tail.append(f"{n:05d} {'y' * 44}\n".encode())  # 300 lines of 51 bytes
    data = tail.tail()
    assert len(data) == 4096
    assert data.endswith(b"00299 " + b"y" * 44 + b"\n")
    assert base64.b64decode(tail.result()) == data
    short = LogTail()
    short.append(b"START\n")
    assert short.result() == base64.b64encode(b"START\n").decode()


# -- buffering -----------------------------------------------------------------------------------------------------


def test_batch_is_full_at_max_items_or_max_bytes():
    buffer = BatchBuffer(max_items=3, max_bytes=100, timeout_s=0.025)
    for n in range(2):
        assert buffer.add(b"x" * 10, now=5.0 + n)
    assert not buffer.full
    assert buffer.due == 5.025  # from the oldest event
    buffer.add(b"x", now=7.0)
    assert buffer.full
    assert len(buffer.take()) == 3
    assert not buffer
    buffer.add(b"y" * 60, now=8.0)
    buffer.add(b"z" * 60, now=8.0)
    assert buffer.full  # 120 bytes
    assert buffer.take() == [b"y" * 60]  # a batch stays within max_bytes
    assert buffer.take() == [b"z" * 60]


def test_an_overfull_buffer_drops_and_says_so():
    buffer = BatchBuffer(max_items=2, max_bytes=1_000_000, timeout_s=1)
    for _ in range(HELD_BATCHES * 2 + 3):
        buffer.add(b"{}", now=0)
    assert len(buffer) == HELD_BATCHES * 2
    batch = buffer.take()
    dropped = json.loads(batch[0])
    assert dropped["type"] == "platform.logsDropped"
    assert dropped["record"]["droppedRecords"] == 3
    assert dropped["record"]["droppedBytes"] == 6
    assert batch[1:] == [b"{}", b"{}"]


# -- subscriptions -------------------------------------------------------------------------------------------------


def subscription_body(**overrides):
    body = {
        "schemaVersion": "2022-12-13",
        "types": ["platform", "function"],
        "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:8080/lambda"},
    }
    body.update(overrides)
    return json.dumps(body).encode()


def test_a_subscription_with_defaults():
    sub = parse_subscription("telemetry", subscription_body())
    assert sub.types == {Category.PLATFORM, Category.FUNCTION}
    assert (sub.destination.protocol, sub.destination.port, sub.destination.path) == ("HTTP", 8080, "/lambda")
    assert (sub.max_items, sub.max_bytes, sub.timeout_ms) == (10_000, 262_144, 1_000)
    tcp = parse_subscription("telemetry", subscription_body(destination={"protocol": "TCP", "port": 4243}))
    assert (tcp.destination.protocol, tcp.destination.port) == ("TCP", 4243)
    logs = parse_subscription("logs", subscription_body(schemaVersion="2020-08-15", buffering={"timeoutMs": 25}))
    assert logs.timeout_ms == 25


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"types": []}, "types should not be empty"),
        ({"destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain/"}}, "URI port is not provided"),
        ({"destination": {"protocol": "HTTP", "URI": "http://example.com:80/"}}, "host must be sandbox.localdomain"),
        ({"destination": {"protocol": "UDP", "URI": "x"}}, "destination.protocol must be HTTP or TCP"),
        ({"buffering": {"timeoutMs": 10}}, "buffering.timeoutMs must be a whole number from 25 to 30000"),
        ({"buffering": {"maxItems": 20_000}}, "buffering.maxItems must be a whole number from 1000 to 10000"),
        ({"schemaVersion": "2020-08-15"}, "schemaVersion '2020-08-15' is not one of"),
    ],
)
def test_subscription_validation_errors(overrides, message):
    with pytest.raises(SubscriptionError) as refused:
        parse_subscription("telemetry", subscription_body(**overrides))
    assert refused.value.status == 400
    assert refused.value.error_type == "ValidationError"
    assert message in str(refused.value)


def test_every_problem_is_named():
    body = json.dumps({"types": [], "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain/"}})
    with pytest.raises(SubscriptionError, match=r"^types should not be empty; URI port is not provided$"):
        parse_subscription("telemetry", body.encode())


# -- registration --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "unexpected end of JSON input"),
        (b"{nope", "invalid character 'n' looking for beginning of value"),
        (b"[]", "json: cannot unmarshal array into Go value of type struct"),
        (b'{"events":"INVOKE"}', "json: cannot unmarshal string into Go struct field RegisterRequest.events"),
        (b'{"configurationKeys":["k"]}', "configurationKeys are deprecated; use environment variables instead"),
    ],
)
def test_register_body_errors(body, message):
    with pytest.raises(ExtensionError) as refused:
        parse_register_body(body)
    assert refused.value.error_type == "InvalidRequestFormat"
    assert str(refused.value).startswith(message)


def test_register_body():
    assert parse_register_body(b'{"events":["INVOKE","SHUTDOWN"]}') == ["INVOKE", "SHUTDOWN"]
    assert parse_register_body(b"{}") == []


# -- the extension state table (rie-behaviour.md §7; Go's core/externalagent_states.go) ---------------------------

X = ExtensionState
LEGAL_EXTENSION = {
    (X.STARTED, X.REGISTERED),
    (X.STARTED, X.LAUNCH_ERROR),
    (X.REGISTERED, X.READY),
    (X.REGISTERED, X.INIT_ERROR),
    (X.REGISTERED, X.EXIT_ERROR),
    (X.READY, X.RUNNING),
    (X.READY, X.EXIT_ERROR),
    (X.RUNNING, X.READY),
    (X.RUNNING, X.EXIT_ERROR),
    (X.RUNNING, X.SHUTDOWN_FAILED),
    (X.RUNNING, X.EXITED),
    (X.INIT_ERROR, X.INIT_ERROR),
    (X.EXIT_ERROR, X.EXIT_ERROR),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(X, X)), ids=lambda s: s.name)
def test_extension_transitions(current, target):
    machine = extension_machine("my-ext")
    machine._state = current  # place it; every transition below goes through transition()
    if (current, target) in LEGAL_EXTENSION:
        machine.transition(target)
        assert machine.state is target
    else:
        with pytest.raises(InvalidTransition) as refused:
            machine.transition(target)
        assert machine.state is current
        assert str(refused.value) == (
            f"State transition from {current.value} to {target.value} failed for extension my-ext. "
            "Error: State transition is not allowed"
        )
    assert set(EXTENSION_TRANSITIONS) == set(X)


# -- discovery, environment, options -------------------------------------------------------------------------------


def test_discover_lists_files_by_name(tmp_path: Path):
    (tmp_path / "b-ext").write_text("")
    (tmp_path / "a-ext").write_text("")
    (tmp_path / "a-dir").mkdir()
    assert discover(str(tmp_path)) == [str(tmp_path / "a-ext"), str(tmp_path / "b-ext")]
    assert discover(str(tmp_path / "missing")) is None


def test_extension_environment(tmp_path: Path):
    environ = {"PATH": "/bin", "_SECRET": "x", "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR", "KEEP": "1"}
    config = cli.parse(["app.handler"], environ=environ, cwd=str(tmp_path))
    runtime_env = config.function.runtime_env(Address("127.0.0.1", 9001))
    extension_env = config.function.extension_env(Address("127.0.0.1", 9001))
    assert runtime_env["_HANDLER"] == "app.handler"
    assert "_HANDLER" not in extension_env
    assert "_SECRET" not in extension_env
    assert "AWS_XRAY_CONTEXT_MISSING" not in extension_env
    assert extension_env["KEEP"] == "1"
    assert extension_env["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:9001"
    assert extension_env["AWS_ACCESS_KEY_ID"] == ""


def test_extensions_dir_option(tmp_path: Path):
    assert cli.parse(["app.handler"], environ={}, cwd=str(tmp_path)).extensions_dir == "/opt/extensions"
    from_env = cli.parse(["app.handler"], environ={"PYRIE_EXTENSIONS_DIR": "/e"}, cwd=str(tmp_path))
    assert from_env.extensions_dir == "/e"
    flag = cli.parse(
        ["app.handler", "--extensions-dir", "/f"], environ={"PYRIE_EXTENSIONS_DIR": "/e"}, cwd=str(tmp_path)
    )
    assert flag.extensions_dir == "/f"
    assert "--extensions-dir DIR" in cli.help_text()
    json_format = cli.parse(["app.handler"], environ={"AWS_LAMBDA_LOG_FORMAT": "json"}, cwd=str(tmp_path))
    assert json_format.function.log_format == "JSON"
