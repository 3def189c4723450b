"""Extensions as real processes: launched from --extensions-dir, registered, INVOKE and SHUTDOWN delivered, every
refusal of rie-behaviour.md §7 answered with its exact status and body, and the environment kept busy until the
INVOKE subscribers come back (the caller's response does not wait for them)."""

from __future__ import annotations

import json
import stat
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from tests.conftest import StartPyrie
from tests.cpu_wait import assert_on_time
from tests.harness import RAW_RUNTIME, Pyrie, wait_until

PROBE = str(Path(__file__).parent / "extensions" / "probe_extension.py")
ARN = "arn:aws:lambda:us-east-1:012345678912:function:test_function"


def extensions_dir(tmp_path: Path, *names: str) -> Path:
    """A directory of extensions: each a shim that execs the probe with its own path (so its name is its file's)."""
    directory = tmp_path / "extensions"
    directory.mkdir(exist_ok=True)
    for name in names:
        shim = directory / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{PROBE}" "$0"\n')
        shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    return directory


def start_with_extensions(
    start_pyrie: StartPyrie,
    tmp_path: Path,
    plan: dict[str, dict[str, Any]],
    scenario: str = "echo",
    *,
    flags: tuple[str, ...] = (),
    **env: str,
) -> Pyrie:
    """pyrie with the raw runtime in ``scenario`` and the extensions ``plan`` names; ``flags`` are more of pyrie's
    options."""
    directory = extensions_dir(tmp_path, *plan)
    return start_pyrie(
        sys.executable,
        RAW_RUNTIME,
        "--extensions-dir",
        str(directory),
        *flags,
        extra_env={"RAW_SCENARIO": scenario, "PROBE_PLAN": json.dumps(plan), **env},
    )


def observations(pyrie: Pyrie, ext: str | None = None, call: str | None = None) -> list[dict[str, Any]]:
    found = []
    for line in pyrie.stdout_lines():
        if line.startswith("OBSERVED "):
            record = json.loads(line.removeprefix("OBSERVED "))
            if (ext is None or record.get("ext") == ext) and (call is None or record["call"] == call):
                found.append(record)
    return found


def observed(pyrie: Pyrie, ext: str, call: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
    def enough() -> list[dict[str, Any]]:
        found = observations(pyrie, ext, call)
        return found if len(found) >= count else []

    return wait_until(enough, timeout, what=f"{count} observations of {ext} {call}")


def go_error(error_type: str, message: str) -> str:
    return json.dumps({"errorMessage": message, "errorType": error_type}, separators=(",", ":")) + "\n"


def events_of(pyrie: Pyrie, ext: str) -> list[dict[str, Any]]:
    return [{**record, "event": json.loads(record["body"])} for record in observations(pyrie, ext, "event")]


def test_register_invoke_and_shutdown_on_sigterm(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    pyrie = start_with_extensions(start_pyrie, tmp_path, {"probe": {}})
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    response = pyrie.invoke(b'{"n":1}', headers={"X-Amzn-Trace-Id": trace})
    assert response.status_code == 200
    assert response.content == b'{"n":1}'
    request_id = response.headers["X-Amzn-RequestId"]

    [registered] = observed(pyrie, "probe", "register")
    assert registered["status"] == 200
    handler = RAW_RUNTIME  # the last word of the bootstrap command
    assert (
        registered["body"]
        == json.dumps(
            {"functionName": "test_function", "functionVersion": "$LATEST", "handler": handler}, separators=(",", ":")
        )
        + "\n"
    )
    ident = registered["headers"]["lambda-extension-identifier"]
    assert str(uuid.UUID(ident)) == ident

    [invoke] = observed(pyrie, "probe", "event")
    assert invoke["status"] == 200
    assert invoke["headers"]["content-type"] == "application/json"
    uuid.UUID(invoke["headers"]["lambda-extension-event-identifier"])
    event = json.loads(invoke["body"])
    expected_prefix = f'{{"eventType":"INVOKE","deadlineMs":{event["deadlineMs"]},"requestId":"{request_id}",'
    assert invoke["body"] == (
        expected_prefix + f'"invokedFunctionArn":"{ARN}","tracing":{{"type":"X-Amzn-Trace-Id","value":"{trace}"}}}}'
    )
    assert 290_000 < event["deadlineMs"] - invoke["at_ms"] <= 300_000  # the default 300 s timeout
    [env] = observed(pyrie, "probe", "env")
    environment = json.loads(env["body"])
    assert "AWS_LAMBDA_RUNTIME_API" in environment["keys"]
    assert "AWS_LAMBDA_FUNCTION_NAME" in environment["keys"]
    assert not [key for key in environment["keys"] if key.startswith("_")]  # no _HANDLER (rie-behaviour.md §3.3)
    assert environment["argc"] == 2  # exec'd with no arguments: the shim passes only its own path on
    assert "EXTENSION\tName: probe\tState: Ready\tEvents: [INVOKE,SHUTDOWN]" in pyrie.stdout_lines()

    with pyrie.run_queue() as queue:
        assert pyrie.stop() == 0  # SIGTERM: the extension gets SHUTDOWN, exits, and nothing is left behind
    events = events_of(pyrie, "probe")
    assert [e["event"]["eventType"] for e in events] == ["INVOKE", "SHUTDOWN"]
    shutdown = events[1]
    assert shutdown["body"] == (
        f'{{"eventType":"SHUTDOWN","deadlineMs":{shutdown["event"]["deadlineMs"]},"shutdownReason":"spindown"}}'
    )
    assert "lambda-extension-event-identifier" not in shutdown["headers"]
    assert shutdown["headers"]["content-type"] == "text/plain; charset=utf-8"
    # 2 s from when it was sent; received soon after (give or take what pyrie waited for a CPU)
    deadline_s, received_s = shutdown["event"]["deadlineMs"] / 1000, shutdown["at_ms"] / 1000
    assert deadline_s - received_s <= 2
    assert_on_time("SHUTDOWN's arrival", received_s - (deadline_s - 2), 0.5, queue.waited(deadline_s - 2, received_s))
    assert "probe shutting down" in pyrie.stdout()


def test_shutdown_on_timeout_then_a_new_init(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    pyrie = start_with_extensions(
        start_pyrie, tmp_path, {"probe": {}}, scenario="hang_in_invoke", AWS_LAMBDA_FUNCTION_TIMEOUT="1"
    )
    response = pyrie.invoke(b"{}")
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    assert response.json()["errorType"] == "Sandbox.Timedout"
    request_id = response.headers["X-Amzn-RequestId"]
    observed(pyrie, "probe", "event", count=2)
    invoke, shutdown = (e["event"] for e in events_of(pyrie, "probe"))
    assert invoke["requestId"] == request_id
    assert shutdown["eventType"] == "SHUTDOWN"
    assert shutdown["shutdownReason"] == "timeout"
    pyrie.wait_for_output("probe shutting down")
    # the next invoke starts a new environment: the extension registers again
    assert pyrie.invoke(b"{}", timeout=30).json()["errorType"] == "Sandbox.Timedout"
    assert len(observed(pyrie, "probe", "register", count=2)) == 2


def test_every_refusal_of_the_extensions_api(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    pyrie = start_with_extensions(start_pyrie, tmp_path, {"probe": {"scenario": "errors"}})
    assert pyrie.invoke(b"{}").status_code == 200
    [registered] = observed(pyrie, "probe", "register")
    ident = registered["headers"]["lambda-extension-identifier"]
    observed(pyrie, "probe", "telemetry_late")

    def result(call: str) -> tuple[int, str]:
        [record] = observed(pyrie, "probe", call)
        return record["status"], record["body"]

    assert result("register_no_name") == (403, go_error("Extension.InvalidExtensionName", "Empty extension name"))
    assert result("register_bad_json") == (
        403,
        go_error("InvalidRequestFormat", "invalid character 'n' looking for beginning of value"),
    )
    assert result("register_empty_body") == (403, go_error("InvalidRequestFormat", "unexpected end of JSON input"))
    assert result("register_config_keys") == (
        403,
        go_error("InvalidRequestFormat", "configurationKeys are deprecated; use environment variables instead"),
    )
    assert result("register_bad_event") == (403, go_error("Extension.InvalidEventType", "FOO: ErrorInvalidEventType"))
    assert result("internal_shutdown") == (
        403,
        go_error("Extension.InvalidEventType", "SHUTDOWN: ShutdownEventNotSupportedForInternalExtension"),
    )
    assert result("register_again") == (
        403,
        go_error(
            "Extension.InvalidExtensionState",
            "State transition from Registered to Registered failed for extension probe. "
            "Error: State transition is not allowed",
        ),
    )
    assert result("register_internal-one")[0] == 200
    assert result("internal_duplicate") == (
        403,
        go_error("Extension.InvalidExtensionState", "Extension with this name already registered"),
    )
    missing = go_error("Extension.MissingExtensionIdentifier", "Missing Lambda-Extension-Identifier header")
    assert result("next_no_id") == (403, missing)
    assert result("telemetry_no_id") == (403, missing)
    assert result("next_bad_id") == (
        403,
        go_error("Extension.InvalidExtensionIdentifier", "Invalid Lambda-Extension-Identifier"),
    )
    [unknown] = observed(pyrie, "probe", "next_unknown")
    assert (unknown["status"], unknown["body"]) == (
        403,
        go_error("Extension.UnknownExtensionIdentifier", f"Unknown extension {unknown['stranger']}"),
    )
    assert result("init_error_unknown") == (
        403,
        go_error("Extension.UnknownExtensionIdentifier", "Unknown Lambda-Extension-Identifier"),
    )
    assert result("init_error_no_type") == (
        403,
        go_error("Extension.MissingHeader", "Lambda-Extension-Function-Error-Type not found"),
    )
    status, body = result("telemetry_invalid")
    assert status == 400
    assert json.loads(body)["errorType"] == "ValidationError"
    assert "destination.URI is required" in json.loads(body)["errorMessage"]
    # during the invoke (init is over)
    assert result("init_error_late") == (
        403,
        go_error(
            "Extension.InvalidExtensionState",
            f"State transition from Running to InitError failed for extension {ident}. "
            "Error: State transition is not allowed",
        ),
    )
    assert result("register_late") == (
        403,
        go_error("Extension.RegistrationClosed", "Extension registration closed already"),
    )
    assert result("telemetry_late") == (
        403,
        go_error("Telemetry.SubscriptionClosed", "Telemetry API subscription is closed"),
    )


def test_too_many_extensions(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    # The runtime's first /next closes registration: its init lasts long enough for all ten to try theirs.
    pyrie = start_with_extensions(start_pyrie, tmp_path, {"probe": {"scenario": "too_many"}}, RAW_INIT_S="1")
    assert pyrie.invoke(b"{}").status_code == 200  # nine internal extensions wait in /event/next; init completes
    for n in range(1, 10):
        assert observed(pyrie, "probe", f"register_internal-{n}")[0]["status"] == 200
    [refused] = observed(pyrie, "probe", "register_internal-10")
    assert (refused["status"], refused["body"]) == (
        403,
        go_error("Extension.TooManyExtensions", "Extension limit (10) reached"),
    )


def assert_function_error(response: Any, error_type: str, message: str) -> None:
    assert response.status_code == 200
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    request_id = response.headers["X-Amzn-RequestId"]
    assert response.json() == {"errorType": error_type, "errorMessage": f"RequestId: {request_id} Error: {message}"}


def test_extension_init_error_fails_the_init(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    pyrie = start_with_extensions(start_pyrie, tmp_path, {"probe": {"scenario": "init_error"}})
    response = pyrie.invoke(b"{}")
    assert_function_error(
        response, "Extension.InitError", "Extension probe reported Extension.InitError: Extension.Broken"
    )
    [accepted] = observed(pyrie, "probe", "init_error")
    assert (accepted["status"], accepted["body"]) == (202, '{"status":"OK"}\n')


def test_extension_exiting_before_it_registers(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    pyrie = start_with_extensions(start_pyrie, tmp_path, {"probe": {"scenario": "exit_before_register"}})
    assert_function_error(pyrie.invoke(b"{}"), "Extension.Crash", "Extension probe exited with error: exit status 4")


def test_extension_that_cannot_be_executed(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    directory = extensions_dir(tmp_path)
    (directory / "not-executable").write_text("#!/bin/sh\n")
    pyrie = start_pyrie(sys.executable, RAW_RUNTIME, "--extensions-dir", str(directory))
    message = f"fork/exec {directory / 'not-executable'}: Permission denied"
    assert_function_error(pyrie.invoke(b"{}"), "Extension.LaunchError", message)


def test_a_crash_is_reported_at_once_while_an_extension_waits_for_its_next_event(
    start_pyrie: StartPyrie, tmp_path: Path
) -> None:
    plan = {"probe": {"events": ["SHUTDOWN"]}}
    pyrie = start_with_extensions(start_pyrie, tmp_path, plan, "exit_mid_invoke", flags=("--init-eagerly",))
    pyrie.wait_for_output("probe initialised")
    healthz = f"{pyrie.url}/healthz"
    wait_until(lambda: requests.get(healthz, timeout=5).json()["environments"][0]["state"] == "idle", what="warm")
    with pyrie.run_queue() as queue:
        began = time.time()
        response = pyrie.invoke(b"{}")
        took = time.time() - began
    assert_function_error(response, "Runtime.ExitError", "Runtime exited with error: exit status 3")
    # the extension's connection, parked in /event/next, is nothing the runtime sent: no draining it (DRAIN_S, 1 s)
    assert_on_time("the crash's answer", took, 0.5, queue.waited(began, began + took))


def test_exit_error_then_exit_resets_the_environment(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    pyrie = start_with_extensions(start_pyrie, tmp_path, {"probe": {"scenario": "exit_error"}})
    pyrie.invoke(b"{}")
    [accepted] = observed(pyrie, "probe", "exit_error")
    assert (accepted["status"], accepted["body"]) == (202, '{"status":"OK"}\n')
    wait_until(lambda: "extension probe exited" in pyrie.stderr(), what="the extension's exit")
    assert pyrie.invoke(b'"again"').status_code == 200  # a new environment, the extension registered anew
    assert len(observed(pyrie, "probe", "register", count=2)) == 2


def test_environment_stays_busy_until_the_extension_comes_back(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    # one environment: with room for another, the second invoke would go there instead of waiting
    flags = ("--log-level", "debug", "--max-concurrency", "1")
    pyrie = start_with_extensions(
        start_pyrie, tmp_path, {"probe": {"scenario": "gate"}}, flags=flags, PROBE_GATE=str(gate)
    )
    first = pyrie.invoke(b'"one"')
    # the caller has its response while the extension still holds the INVOKE (its gate is closed)
    assert first.content == b'"one"'
    assert not gate.exists()
    first_id = first.headers["X-Amzn-RequestId"]
    second: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: second.update(response=pyrie.invoke(b'"two"')))
    thread.start()
    try:
        wait_until(lambda: "waits for the environment" in pyrie.stderr(), what="the second invoke to be waiting")
        assert f"RELEASED {first_id}" not in pyrie.stdout()
        assert not any(line.startswith("START") and first_id not in line for line in pyrie.stdout_lines())
        gate.touch()
    finally:
        thread.join(30)
    response = second["response"]
    assert response.content == b'"two"'
    lines = pyrie.stdout_lines()
    second_start = lines.index(f"START RequestId: {response.headers['X-Amzn-RequestId']} Version: $LATEST")
    assert lines.index(f"RELEASED {first_id}") < lines.index(f"END RequestId: {first_id}") < second_start
