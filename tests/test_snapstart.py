"""SnapStart as far as a process can have it (``--enable-init-caching``): the Runtime API's restore routes and
container credentials endpoint, and the real Python runtime interface client (awslambdaric) running real
``snapshot_restore_py`` hooks under pyrie."""

from __future__ import annotations

import calendar
import json
import math
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import pytest
import requests

from pyrie_core.address import Address
from runtime_api.credentials_routes import render_credentials
from runtime_api.host import ContainerCredentials
from runtime_api.http_connection import Request
from runtime_api.router import dispatch
from supervisor.cli import DUMMY_CREDENTIALS, parse
from supervisor.config import Config, ConfigError
from supervisor.durable.front_desk import open_durable_api
from supervisor.environment.snapstart_environment import SnapStartEnvironment
from tests.conftest import StartPyrie
from tests.cpu_wait import assert_on_time
from tests.harness import RAW_RUNTIME, Pyrie
from tests.test_states import SNAPSTART, RecordingConnection, environment

# --- the Runtime API's routes ----------------------------------------------------------------------------------


def answer(host: Any, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    conn = RecordingConnection()
    dispatch(host, Request(method, path, headers or {}, chunked=False), conn)
    [(status, head, body)] = conn.responses
    return status, dict(head), body


def snapstart_environment() -> Any:
    """A real SnapStart environment (no process): its only token is ``good``."""
    return environment(SnapStartEnvironment, snapstart=SNAPSTART)


SNAPSTART_PATHS = [
    ("GET", "/2018-06-01/runtime/restore/next"),
    ("POST", "/2018-06-01/runtime/restore/error"),
    ("GET", "/2021-04-23/credentials"),
]


@pytest.mark.parametrize(("method", "path"), SNAPSTART_PATHS)
def test_without_init_caching_the_snapstart_routes_are_not_there(method: str, path: str) -> None:
    assert answer(environment(), method, path) == (
        404,
        {"Content-Type": "text/plain; charset=utf-8"},
        b"404 page not found\n",
    )


@pytest.mark.parametrize(("method", "path"), SNAPSTART_PATHS)
def test_with_init_caching_a_wrong_method_is_405(method: str, path: str) -> None:
    wrong = "POST" if method == "GET" else "GET"
    status, head, _ = answer(snapstart_environment(), wrong, path)
    assert (status, head["Allow"]) == (405, method)


def test_credentials_for_the_right_token_as_the_go_emulator_renders_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("supervisor.environment.snapstart_environment.time.time", lambda: 1925089445.0 - 3600)
    status, head, body = answer(snapstart_environment(), "GET", "/2021-04-23/credentials", {"authorization": "good"})
    assert status == 200
    assert head["Content-Type"] == "text/plain; charset=utf-8"  # what Go's DetectContentType makes of the JSON
    assert body == (
        b'{"AccessKeyId":"AKID","SecretAccessKey":"secret","Token":"session","Expiration":"2031-01-02T03:04:05Z"}'
    )


@pytest.mark.parametrize("headers", [{"authorization": "bad"}, {}, {"authorization": "Bearer good"}])
def test_credentials_for_any_other_token_are_404_with_the_go_emulators_text(headers: dict[str, str]) -> None:
    status, head, body = answer(snapstart_environment(), "GET", "/2021-04-23/credentials", headers)
    assert (status, body) == (404, b"cannot get credentials for the provided token\n")
    assert head == {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"}


def test_expiration_is_rendered_in_utc() -> None:
    moment = time.time() + 3600
    rendered = json.loads(render_credentials(ContainerCredentials("a", "b", "c", moment)))["Expiration"]
    assert calendar.timegm(time.strptime(rendered, "%Y-%m-%dT%H:%M:%SZ")) == int(moment)


# --- the command line -------------------------------------------------------------------------------------------

KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def configure(tmp_path: Any, *flags: str, **environ: str) -> Config:
    bootstrap = tmp_path / "bootstrap"
    bootstrap.write_text("#!/bin/sh\n")
    bootstrap.chmod(0o755)
    return parse([*flags, str(bootstrap)], environ=environ, cwd=str(tmp_path))


def test_init_caching_gives_the_runtime_the_credentials_endpoint_instead_of_the_keys(tmp_path: Any) -> None:
    config = configure(
        tmp_path, "--enable-init-caching", AWS_ACCESS_KEY_ID="AKIAMINE", AWS_SECRET_ACCESS_KEY="s3cret", OTHER="kept"
    )
    snapstart = config.function.snapstart
    assert snapstart is not None
    env = config.function.runtime_env(Address("127.0.0.1", 9123))
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "snap-start"
    assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == "http://127.0.0.1:9123/2021-04-23/credentials"
    assert env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] == snapstart.token
    assert len(snapstart.token) == 36  # a UUID, as the Go emulator's
    assert not set(KEYS) & set(env)
    # "not available in Lambda SnapStart functions" (docs.aws.amazon.com/lambda/latest/dg/snapstart-monitoring.html)
    assert "AWS_LAMBDA_LOG_GROUP_NAME" not in env
    assert "AWS_LAMBDA_LOG_STREAM_NAME" not in env
    assert env["OTHER"] == "kept"
    # pyrie's own credentials are what the endpoint hands out; extensions get the endpoint too, as in the Go emulator
    assert (snapstart.access_key_id, snapstart.secret_access_key, snapstart.session_token) == ("AKIAMINE", "s3cret", "")
    extension_env = config.function.extension_env(Address("127.0.0.1", 9123))
    assert extension_env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] == snapstart.token
    assert "s3cret" not in repr(config)


def test_without_credentials_of_its_own_pyrie_hands_out_dummies(tmp_path: Any) -> None:
    snapstart = configure(tmp_path, "--enable-init-caching").function.snapstart
    assert snapstart is not None
    assert (snapstart.access_key_id, snapstart.secret_access_key, snapstart.session_token) == DUMMY_CREDENTIALS


def test_without_init_caching_nothing_changes(tmp_path: Any) -> None:
    function = configure(tmp_path, AWS_ACCESS_KEY_ID="AKIAMINE").function
    env = function.runtime_env(Address("127.0.0.1", 9123))
    assert function.snapstart is None
    assert env["AWS_ACCESS_KEY_ID"] == "AKIAMINE"
    assert "AWS_CONTAINER_CREDENTIALS_FULL_URI" not in env
    assert "AWS_LAMBDA_INITIALIZATION_TYPE" not in env
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == "$LATEST"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [({"AWS_LAMBDA_FUNCTION_TIMEOUT": "3"}, 130.0), ({"AWS_LAMBDA_FUNCTION_TIMEOUT": "900"}, 900.0), ({}, 300.0)],
)
def test_init_with_its_before_snapshot_hooks_may_take_the_larger_of_130_s_and_the_timeout(
    tmp_path: Any, environ: dict[str, str], expected: float
) -> None:
    assert configure(tmp_path, "--enable-init-caching", **environ).init_timeout_s == expected
    assert configure(tmp_path, "--enable-init-caching", "--init-timeout", "5", **environ).init_timeout_s == 5.0


def test_a_durable_snapstart_function_still_gets_its_credentials_from_the_endpoint(tmp_path: Any) -> None:
    listener, config = open_durable_api(
        configure(tmp_path, "--enable-init-caching", AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT="60")
    )
    assert listener is not None
    listener.stop()
    env = config.function.runtime_env(Address("127.0.0.1", 9123))
    assert config.durable is not None
    assert not set(KEYS) & set(env)  # not the durable mode's dummy variables
    assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == "http://127.0.0.1:9123/2021-04-23/credentials"
    assert env["AWS_ENDPOINT_URL_LAMBDA"] == listener.url  # the durable mode's own setting stays


def test_init_caching_is_refused_with_managed_instances(tmp_path: Any) -> None:
    with pytest.raises(ConfigError) as refused:
        configure(tmp_path, "--enable-init-caching", AWS_LAMBDA_MAX_CONCURRENCY="4")
    assert str(refused.value) == (
        "--enable-init-caching (SnapStart) cannot be combined with AWS_LAMBDA_MAX_CONCURRENCY (Managed Instances): "
        "pyrie runs SnapStart's hooks in environments that take one invoke at a time"
    )


# --- awslambdaric and real snapshot_restore_py hooks under pyrie ----------------------------------------------------

FUNCTIONS = Path(__file__).parent / "functions"
SNAPSTART_ERROR = {
    "Type": "User",
    "Message": "The afterRestore() runtime hook encountered an error. For more information, check the Amazon "
    "CloudWatch logs.",
}


def snapstart(start_pyrie: StartPyrie, handler: str = "handler", *flags: str, **env: str) -> Pyrie:
    command = (sys.executable, "-m", "awslambdaric", f"snapstart.{handler}")
    return start_pyrie("--enable-init-caching", *flags, *command, cwd=FUNCTIONS, extra_env=env)


def fields(line: str) -> dict[str, str]:
    """``REPORT RequestId: x\tDuration: 1.00 ms\t...`` as {"RequestId": "x", "Duration": "1.00 ms", ...}."""
    return dict(part.split(": ", 1) for part in line.split(" ", 1)[1].split("\t") if part)


def ms(text: str) -> float:
    assert text.endswith(" ms"), text
    return float(text.removesuffix(" ms"))


def calls(pyrie: Pyrie) -> list[str]:
    """The hooks and handler calls the function printed, in order, as ``what@pid``."""
    found = re.findall(r"^SNAPSTART (\w+) pid=(\d+)$", pyrie.stdout(), re.MULTILINE)
    return [f"{what}@{pid}" for what, pid in found]


def test_hooks_run_once_per_environment_before_its_first_handler_call_and_never_on_a_warm_invoke(
    start_pyrie: StartPyrie,
) -> None:
    pyrie = snapstart(start_pyrie)
    bodies = []
    for _ in range(3):
        bodies.append(pyrie.invoke("{}").json())
        pyrie.wait_idle()  # warm and back in /next for the next invoke
    pid = bodies[0]["pid"]
    assert [body["pid"] for body in bodies] == [pid] * 3  # one environment, warm after the first invoke
    assert bodies[0]["calls"] == ["before_snapshot", "after_restore", "handler"]
    assert bodies[2]["calls"] == ["before_snapshot", "after_restore", "handler", "handler", "handler"]
    reports = pyrie.wait_for_lines("REPORT", 3)
    assert calls(pyrie) == [f"{what}@{pid}" for what in ("before_snapshot", "after_restore", *["handler"] * 3)]
    # Lambda's order: the init's report, the restore's, then the first invoke
    lines = pyrie.stdout_lines()
    first = lines.index(next(line for line in lines if line.startswith("START RequestId: ")))
    order = [line.split(" ")[0] for line in lines[:first] if not line.startswith("[")]
    assert order == ["SNAPSTART", "INIT_REPORT", "SNAPSTART", "RESTORE_REPORT"]
    # the first REPORT shows the restore instead of the init; the warm ones neither
    cold = fields(reports[0])
    assert list(cold) == [
        "RequestId",
        "Duration",
        "Billed Duration",
        "Memory Size",
        "Max Memory Used",
        "Restore Duration",
        "Billed Restore Duration",
    ]
    assert reports[0].endswith(" ms\t")
    for warm in reports[1:]:
        assert list(fields(warm)) == ["RequestId", "Duration", "Billed Duration", "Memory Size", "Max Memory Used"]


def test_restore_duration_covers_the_after_restore_hooks_and_duration_the_handler_alone(
    start_pyrie: StartPyrie,
) -> None:
    pyrie = snapstart(start_pyrie, SNAPSTART_AFTER_RESTORE_S="0.4")
    with pyrie.run_queue() as queue:
        sent = time.time()
        assert pyrie.invoke("{}").status_code == 200
        waited = queue.waited(sent, time.time())
    [report] = pyrie.wait_for_lines("REPORT", 1)
    values = fields(report)
    restore, duration = ms(values["Restore Duration"]), ms(values["Duration"])
    # the hook's 0.4 s, and the runtime getting back to /next
    assert_on_time("the restore past its hook", restore / 1000 - 0.4, 1.0, waited)
    assert duration < 300 + waited * 1000  # the handler alone, not the hook
    billed_restore = int(ms(values["Billed Restore Duration"]))
    # pyrie's choice: the whole restore is billed (Lambda leaves out the snapshot's loading, which pyrie has none of)
    assert billed_restore == math.ceil(restore)
    # Lambda's formula: the handler's billed time plus the billed restore
    assert int(ms(values["Billed Duration"])) == math.ceil(duration) + billed_restore
    [restore_report] = [line for line in pyrie.stdout_lines() if line.startswith("RESTORE_REPORT")]
    assert restore_report == f"RESTORE_REPORT Restore Duration: {values['Restore Duration']}"
    [init_report] = [line for line in pyrie.stdout_lines() if line.startswith("INIT_REPORT")]
    assert re.fullmatch(r"INIT_REPORT Init Duration: \d+\.\d\d ms", init_report)


def test_a_failing_after_restore_hook_fails_the_invoke_with_snapstart_exception_and_the_next_gets_a_new_environment(
    start_pyrie: StartPyrie, tmp_path: Path
) -> None:
    pyrie = snapstart(start_pyrie, SNAPSTART_SCENARIO="fail_after_once", SNAPSTART_MARKER=str(tmp_path / "failed"))
    response = pyrie.invoke("{}")
    assert response.status_code == 400
    assert response.headers["X-Amzn-ErrorType"] == "SnapStartException"
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == SNAPSTART_ERROR
    pyrie.wait_for_output("RESTORE_REPORT")
    [failed] = [line for line in pyrie.stdout_lines() if line.startswith("RESTORE_REPORT")]
    assert re.fullmatch(
        r"RESTORE_REPORT Restore Duration: \d+\.\d\d ms\tStatus: error\tError Type: Runtime.AfterRestoreError", failed
    )
    # the next invoke gets a new environment: its own init and restore, then the handler
    body = pyrie.invoke("{}").json()
    assert body["calls"] == ["before_snapshot", "after_restore", "handler"]
    pyrie.wait_for_lines("REPORT", 1)
    first_pid = calls(pyrie)[0].split("@")[1]
    assert first_pid != str(body["pid"])
    assert calls(pyrie) == [
        f"before_snapshot@{first_pid}",
        f"after_restore@{first_pid}",
        f"before_snapshot@{body['pid']}",
        f"after_restore@{body['pid']}",
        f"handler@{body['pid']}",
    ]
    # the failed invoke never started: one START, the second invoke's
    assert [line for line in pyrie.stdout_lines() if line.startswith("START")] == [
        f"START RequestId: {pyrie_request_id(pyrie, 0)} Version: $LATEST"
    ]


def pyrie_request_id(pyrie: Pyrie, index: int) -> str:
    return [fields(line)["RequestId"] for line in pyrie.stdout_lines() if line.startswith("REPORT")][index]


def test_boto3_raises_the_modelled_snapstart_exception(start_pyrie: StartPyrie) -> None:
    pyrie = snapstart(start_pyrie, SNAPSTART_SCENARIO="fail_after")
    client = boto3.client(
        "lambda",
        endpoint_url=pyrie.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=botocore.config.Config(retries={"max_attempts": 0}),
    )
    with pytest.raises(client.exceptions.SnapStartException) as raised:
        client.invoke(FunctionName="function", Payload=b"{}")
    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"] == {"Code": "SnapStartException", "Message": SNAPSTART_ERROR["Message"]}
    assert error["Type"] == "User"
    assert "SNAPSTART handler" not in pyrie.stdout()


def test_a_failing_before_snapshot_hook_is_an_init_error_and_the_handler_never_runs(start_pyrie: StartPyrie) -> None:
    pyrie = snapstart(start_pyrie, SNAPSTART_SCENARIO="fail_before")
    response = pyrie.invoke("{}")
    assert response.status_code == 200
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    body = response.json()  # what the runtime posted to /init/error: the hook's exception
    assert (body["errorType"], body["errorMessage"]) == ("RuntimeError", "the connection pool cannot be closed")
    assert any("before_snapshot" in frame for frame in body["stackTrace"])
    pyrie.wait_for_lines("REPORT", 1)
    [init_report] = [line for line in pyrie.stdout_lines() if line.startswith("INIT_REPORT")]
    assert re.fullmatch(
        r"INIT_REPORT Init Duration: \d+\.\d\d ms\tPhase: init\tStatus: error\tError Type: Runtime.BeforeSnapshotError",
        init_report,
    )
    assert [call.split("@")[0] for call in calls(pyrie)] == ["before_snapshot"]  # no restore, no handler
    assert "RESTORE" not in pyrie.stdout()


@pytest.mark.parametrize("own", [True, False], ids=["pyries-credentials", "dummies"])
def test_botocore_in_the_function_gets_its_credentials_from_the_container_endpoint(
    start_pyrie: StartPyrie, tmp_path: Path, own: bool
) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") or k.startswith("AWS_LAMBDA_")}
    # nothing on this machine may answer for botocore first: no shared files, no profile
    environ.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none"))
    mine = {"AWS_ACCESS_KEY_ID": "AKIAPYRIETEST", "AWS_SECRET_ACCESS_KEY": "t0p/s3cret", "AWS_SESSION_TOKEN": "sess"}
    if own:
        environ.update(mine)
    command = (sys.executable, "-m", "awslambdaric", "snapstart.credentials")
    pyrie = start_pyrie("--enable-init-caching", *command, cwd=FUNCTIONS, env=environ, runtime_api_ports=1)
    found = pyrie.invoke("{}").json()
    expected = tuple(mine.values()) if own else DUMMY_CREDENTIALS
    assert found["method"] == "container-role"  # botocore's ContainerProvider
    assert (found["access_key"], found["secret_key"], found["token"]) == expected
    assert found["key_variables"] == []  # AWS_ACCESS_KEY_ID and co. are not in the runtime's environment
    assert found["initialization_type"] == "snap-start"
    assert found["uri"] == f"http://127.0.0.1:{pyrie.runtime_api_port}/2021-04-23/credentials"
    # the endpoint itself: the runtime's token gets the credentials, any other a 404
    right = requests.get(found["uri"], headers={"Authorization": found["authorization"]}, timeout=5)
    assert right.status_code == 200
    document = right.json()
    assert list(document) == ["AccessKeyId", "SecretAccessKey", "Token", "Expiration"]
    assert (document["AccessKeyId"], document["SecretAccessKey"], document["Token"]) == expected
    expires = calendar.timegm(time.strptime(document["Expiration"], "%Y-%m-%dT%H:%M:%SZ"))
    assert expires > time.time() + 600  # in the future, beyond the SDKs' refresh window
    wrong = requests.get(found["uri"], headers={"Authorization": "not-the-token"}, timeout=5)
    assert (wrong.status_code, wrong.text) == (404, "cannot get credentials for the provided token\n")


def test_init_eagerly_waits_in_restore_next_until_the_first_invoke_restores_it(start_pyrie: StartPyrie) -> None:
    pyrie = snapstart(start_pyrie, "handler", "--init-eagerly")
    pyrie.wait_for_output("INIT_REPORT")  # initialised at start, as at publish: the snapshot's moment
    time.sleep(0.3)
    assert [call.split("@")[0] for call in calls(pyrie)] == ["before_snapshot"]
    assert (
        pyrie.session.get(pyrie.url + "/healthz", timeout=5).json()["environments"][0]["runtimeState"] == "RestoreReady"
    )
    assert pyrie.invoke("{}").json()["calls"] == ["before_snapshot", "after_restore", "handler"]
    [report] = pyrie.wait_for_lines("REPORT", 1)
    assert "\tRestore Duration: " in report
    assert "Init Duration" not in report


def test_platform_records_in_json_say_snap_start_and_report_the_restore(start_pyrie: StartPyrie) -> None:
    pyrie = snapstart(start_pyrie, AWS_LAMBDA_LOG_FORMAT="JSON")
    assert pyrie.invoke("{}").status_code == 200
    pyrie.wait_for_output('"platform.report"')
    records = [json.loads(line) for line in pyrie.stdout_lines() if line.startswith('{"time"')]
    types = [record["type"] for record in records]
    assert types == [
        "platform.initStart",
        "platform.initRuntimeDone",
        "platform.initReport",
        "platform.restoreStart",
        "platform.restoreRuntimeDone",
        "platform.restoreReport",
        "platform.start",
        "platform.runtimeDone",
        "platform.report",
    ]
    by_type = {record["type"]: record["record"] for record in records}
    for init in ("platform.initStart", "platform.initRuntimeDone", "platform.initReport"):
        assert by_type[init]["initializationType"] == "snap-start"
    assert by_type["platform.restoreStart"] == {"functionName": "test_function", "functionVersion": "$LATEST"}
    assert by_type["platform.restoreRuntimeDone"] == {"status": "success"}
    restored = by_type["platform.restoreReport"]
    assert restored["status"] == "success"
    metrics = by_type["platform.report"]["metrics"]
    assert metrics["restoreDurationMs"] == restored["metrics"]["durationMs"]
    assert "initDurationMs" not in metrics
    assert metrics["billedDurationMs"] == math.ceil(metrics["durationMs"]) + math.ceil(metrics["restoreDurationMs"])


def raw_observations(pyrie: Pyrie, last: str) -> dict[str, dict[str, Any]]:
    pyrie.wait_for_output(f'"call": "{last}"')
    found = {}
    for line in pyrie.stdout_lines():
        if line.startswith("OBSERVED "):
            record = json.loads(line.removeprefix("OBSERVED "))
            found[record.pop("call")] = record
    return found


def refused(message: str) -> dict[str, Any]:
    text = f"State transition from {message} failed for runtime. Error: State transition is not allowed"
    body = json.dumps({"errorMessage": text, "errorType": "InvalidStateTransition"}, separators=(",", ":"))
    return {"status": 403, "body": body + "\n"}


def test_restore_calls_in_the_wrong_state_get_the_go_emulators_answers(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(
        "--enable-init-caching", sys.executable, RAW_RUNTIME, extra_env={"RAW_SCENARIO": "restore_states"}
    )
    assert pyrie.invoke(b'"hi"').content == b'"hi"'
    seen = raw_observations(pyrie, "response")
    assert seen["restore_error_in_init"] == refused("Started to RuntimeRestoreErrorState")
    assert seen["restore_next"] == {"status": 200, "body": ""}
    assert seen["restore_next_again"] == refused("Restoring to Ready")  # the Go emulator names the target Ready
    assert seen["restore_next_running"] == refused("Running to Ready")
    assert seen["restore_error_running"] == refused("Running to RuntimeRestoreErrorState")
    assert seen["response"]["status"] == 202


def test_a_runtime_that_skips_restore_next_is_restored_at_once(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("--enable-init-caching", sys.executable, RAW_RUNTIME, extra_env={"RAW_SCENARIO": "echo"})
    with pyrie.run_queue() as queue:
        sent = time.time()
        assert pyrie.invoke(b'"hi"').content == b'"hi"'
        waited = queue.waited(sent, time.time())
    [report] = pyrie.wait_for_lines("REPORT", 1)
    restore = ms(fields(report)["Restore Duration"]) / 1000
    assert_on_time("the restore", restore, 1.0, waited)  # restored at once: no wait for a /restore/next


@pytest.mark.slow
def test_an_after_restore_hook_past_ten_seconds_is_a_snapstart_timeout(start_pyrie: StartPyrie) -> None:
    pyrie = snapstart(start_pyrie, SNAPSTART_AFTER_RESTORE_S="30")
    with pyrie.run_queue() as queue:
        started = time.time()
        response = pyrie.invoke("{}")
        took = time.time() - started
    assert_on_time("the restore's timeout", took - 10.0, 1.0, queue.waited(started, started + took))
    assert response.status_code == 408
    assert response.headers["X-Amzn-ErrorType"] == "SnapStartTimeoutException"
    assert response.json() == {
        "Type": "User",
        "Message": "Lambda couldn't restore the snapshot within the timeout limit.",
    }
    pyrie.wait_for_output("RESTORE_REPORT")
    [line] = [line for line in pyrie.stdout_lines() if line.startswith("RESTORE_REPORT")]
    assert re.fullmatch(r"RESTORE_REPORT Restore Duration: 100\d\d\.\d\d ms\tStatus: timeout", line)
