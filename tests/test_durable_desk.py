"""The supervisor's side of durable functions without processes: settings, the pool invoker's outcomes, the desk.

The desk runs over a scripted pool that answers each invoke as a durable handler would (checkpointing through the
desk's own engine), so what the desk answers a caller can be checked frame by frame.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import pytest

from pyrie_core.pipe.messages import (
    ApiRequest,
    Chunk,
    End,
    EnvironmentStatus,
    Head,
    Invoke,
    Message,
    Outcome,
    Status,
)
from pyrie_durable import DurableInvocation, OutcomeKind, SqliteStore
from pyrie_durable.model import OperationUpdate
from pyrie_durable.states import OperationAction, OperationType
from supervisor import cli
from supervisor.config import Config, ConfigError
from supervisor.durable.desk import ARN_HEADER, Desk
from supervisor.durable.front_desk import open_durable_api
from supervisor.durable.pool_invoker import CollectingSink, PoolInvoker, outcome_of
from supervisor.durable.settings import DUMMY_ACCESS_KEY_ID, durable_config, durable_runtime_env
from supervisor.invocation import Invocation, ResponseSink
from tests.cpu_wait import Stopwatch, assert_on_time

# --- settings -----------------------------------------------------------------------------------------------------


def test_a_function_is_durable_only_with_an_execution_timeout(tmp_path: Path) -> None:
    assert durable_config({}, None, str(tmp_path)) is None
    config = durable_config({"AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT": "120"}, None, str(tmp_path))
    assert config is not None
    assert (config.execution_timeout_s, config.retention_days, config.store_path) == (120, 14, None)
    env = {"AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT": "5", "AWS_LAMBDA_DURABLE_RETENTION_PERIOD_IN_DAYS": "3"}
    stored = durable_config(env, "d.db", str(tmp_path))
    assert stored is not None and stored.retention_days == 3 and stored.store_path == str(tmp_path / "d.db")


@pytest.mark.parametrize(
    ("env", "store", "message"),
    [
        ({"AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT": "abc"}, None, "is not a whole number of seconds"),
        ({"AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT": "0"}, None, "is not between 1 and 31622400"),
        ({"AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT": "31622401"}, None, "is not between 1 and 31622400"),
        (
            {"AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT": "60", "AWS_LAMBDA_DURABLE_RETENTION_PERIOD_IN_DAYS": "91"},
            None,
            "is not between 1 and 90",
        ),
        ({"AWS_LAMBDA_DURABLE_RETENTION_PERIOD_IN_DAYS": "3"}, None, "the function is not durable"),
        ({}, "d.db", "--durable-store: the function is not durable"),
        ({"AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT": "60"}, "missing/d.db", "does not exist"),
        ({"AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT": "60"}, ".", "is a directory"),
        ({"AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT": "60"}, "not-a-db", "cannot be used as a SQLite database"),
    ],
)
def test_wrong_durable_settings_stop_pyrie_with_one_line(
    tmp_path: Path, env: dict[str, str], store: str | None, message: str
) -> None:
    (tmp_path / "not-a-db").write_bytes(b"this is no database, just text that is long enough" * 4)
    with pytest.raises(ConfigError, match=message) as caught:
        durable_config(env, store, str(tmp_path))
    assert "\n" not in str(caught.value)


def test_a_store_another_pyrie_has_open_is_refused_at_once_with_one_line(tmp_path: Path) -> None:
    held = SqliteStore(tmp_path / "d.db")
    with Stopwatch() as refusal, pytest.raises(ConfigError, match="is in use by another pyrie") as caught:
        durable_config({"AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT": "60"}, "d.db", str(tmp_path))
    assert_on_time("the refusal", refusal.took, 1.0, refusal.waited)
    assert "\n" not in str(caught.value)
    held.close()
    assert durable_config({"AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT": "60"}, "d.db", str(tmp_path)) is not None


def test_a_store_file_is_created_and_kept_as_sqlite(tmp_path: Path) -> None:
    config = durable_config({"AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT": "60"}, "d.db", str(tmp_path))
    assert config is not None and config.store_path == str(tmp_path / "d.db")
    sqlite3.connect(config.store_path).execute("PRAGMA schema_version").fetchone()


def test_the_runtime_gets_a_region_and_dummy_credentials() -> None:
    base = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": ""}
    env = durable_runtime_env(base, {})
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_ACCESS_KEY_ID"] == DUMMY_ACCESS_KEY_ID and env["AWS_SECRET_ACCESS_KEY"]
    assert "AWS_SESSION_TOKEN" not in env and "AWS_ENDPOINT_URL_LAMBDA" not in env


def test_the_users_endpoint_region_and_credentials_are_kept(tmp_path: Path) -> None:
    mine = {
        "AWS_ENDPOINT_URL_LAMBDA": "http://elsewhere:1",
        "AWS_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "AKIA",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_SESSION_TOKEN": "t",
    }
    env = durable_runtime_env(mine, mine)
    assert env == {**mine, "AWS_DEFAULT_REGION": "eu-west-1"}
    listener, config = open_durable_api(parse(tmp_path, {**mine, "AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT": "60"}))
    assert listener is not None
    listener.stop()
    assert config.function.base_env["AWS_ENDPOINT_URL_LAMBDA"] == "http://elsewhere:1"


def parse(tmp_path: Path, env: dict[str, str], *args: str) -> Config:
    argv = ["--runtime-interface-emulator-address", "127.0.0.1:8080", *args, "/bin/sh"]
    return cli.parse(argv, environ={"PATH": "/usr/bin:/bin", **env}, cwd=str(tmp_path))


def test_the_command_line_makes_a_durable_function_and_points_its_runtime_at_pyrie(tmp_path: Path) -> None:
    plain = parse(tmp_path, {})
    assert plain.durable is None
    assert "AWS_ENDPOINT_URL_LAMBDA" not in plain.function.base_env
    assert plain.function.base_env["AWS_ACCESS_KEY_ID"] == ""  # as the Go emulator passes it
    assert open_durable_api(plain) == (None, plain)
    durable = parse(tmp_path, {"AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT": "60"}, "--durable-store", "d.db")
    assert durable.durable is not None and durable.durable.store_path == str(tmp_path / "d.db")
    # The supervisor binds the runtime's listener of the durable APIs at start-up, on loopback, and names it.
    assert "AWS_ENDPOINT_URL_LAMBDA" not in durable.function.base_env
    listener, served = open_durable_api(durable)
    assert listener is not None
    listener.stop()
    assert listener.address.host == "127.0.0.1" and listener.address.port > 0
    assert served.function.base_env["AWS_ENDPOINT_URL_LAMBDA"] == f"http://127.0.0.1:{listener.address.port}"
    # The Invoke API's port is no concern of the runtime's any more: 0 (any free port) will do.
    assert (
        parse(
            tmp_path,
            {"AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT": "60"},
            "--runtime-interface-emulator-address",
            "127.0.0.1:0",
        ).durable
        is not None
    )
    from_env = parse(tmp_path, {"AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT": "60", "PYRIE_DURABLE_STORE": "e.db"})
    assert from_env.durable is not None and from_env.durable.store_path == str(tmp_path / "e.db")
    assert "--durable-store PATH" in cli.help_text() and "PYRIE_DURABLE_STORE" in cli.help_text()


# --- the pool invoker ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("end", "kind"),
    [
        (End(outcome=Outcome.OK, request_id="r"), OutcomeKind.RESPONSE),
        (
            End(outcome=Outcome.FUNCTION_ERROR, request_id="r", error_type="Sandbox.Timedout"),
            OutcomeKind.FUNCTION_ERROR,
        ),
        (End(outcome=Outcome.SERVICE_ERROR, request_id="r", status=429), OutcomeKind.THROTTLED),
        (End(outcome=Outcome.SERVICE_ERROR, request_id="r", status=503), OutcomeKind.SERVICE_ERROR),
    ],
)
def test_how_an_invoke_ended_is_what_the_engine_is_told(end: End, kind: str) -> None:
    sink = CollectingSink()
    sink.send(Chunk(b'{"Status":'), Chunk(b'"PENDING"}'))
    outcome = outcome_of(end, sink)
    assert outcome.kind == kind and outcome.request_id == "r"
    if kind == OutcomeKind.RESPONSE:
        assert outcome.body == b'{"Status":"PENDING"}'


def test_a_response_over_the_limit_is_a_function_error() -> None:
    sink = CollectingSink(limit=4)
    sink.send(Chunk(b"abc"), Chunk(b"def"))
    outcome = outcome_of(End(outcome=Outcome.OK, request_id="r"), sink)
    assert outcome.kind == OutcomeKind.FUNCTION_ERROR and outcome.error_type == "Function.ResponseSizeTooLarge"


def test_the_invoker_gives_up_on_an_invoke_that_never_ends() -> None:
    class Stuck:
        def submit(self, request: Invoke, sink: ResponseSink) -> Invocation:
            return Invocation(request, sink, "$LATEST")  # never finished

    invoker = PoolInvoker(Stuck(), wait_s=0)
    invoker._wait_s = 0.05
    outcome = invoker.invoke(DurableInvocation("f", "arn", b"{}"))
    assert outcome.kind == OutcomeKind.FUNCTION_ERROR and outcome.error_type == "Sandbox.Timedout"


# --- the desk ------------------------------------------------------------------------------------------------------


class Frames:
    """A response sink that keeps what it is sent."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def send(self, *messages: Message) -> None:
        self.messages.extend(messages)

    def wait_for_room(self, abort: gevent.event.Event) -> None:
        return None

    @property
    def end(self) -> End | None:
        return next((m for m in self.messages if isinstance(m, End)), None)


class ScriptedPool:
    """Runs each invoke as ``handler(payload, desk) -> output`` would; counts them."""

    def __init__(self, handler: Callable[[dict[str, Any], Desk], dict[str, Any]]) -> None:
        self.handler = handler
        self.desk: Desk | None = None
        self.invokes: list[Invoke] = []

    def submit(self, request: Invoke, sink: ResponseSink) -> Invocation:
        assert self.desk is not None
        self.invokes.append(request)
        invocation = Invocation(request, sink, "$LATEST")
        payload = json.loads(request.payload)
        if "DurableExecutionArn" not in payload:  # not from the engine: a plain invoke
            invocation.respond("application/json", b"{}")
            return invocation
        output = self.handler(payload, self.desk)
        invocation.respond("application/json", json.dumps(output).encode())
        return invocation

    def status(self) -> Status:
        return Status("test_function", "$LATEST", 1, (EnvironmentStatus("environment-1", "idle", "Ready"),))


def waits_an_hour(payload: dict[str, Any], desk: Desk) -> dict[str, Any]:
    """A handler that checkpoints a one-hour wait and suspends."""
    update = OperationUpdate(id="w", type=OperationType.WAIT, action=OperationAction.START, wait_seconds=3600)
    desk.engine.checkpoint(payload["DurableExecutionArn"], payload["CheckpointToken"], [update], None)
    return {"Status": "PENDING"}


def succeeds(payload: dict[str, Any], desk: Desk) -> dict[str, Any]:
    return {"Status": "SUCCEEDED", "Result": json.dumps({"input": payload["InitialExecutionState"]["Operations"][0]})}


def make_desk(tmp_path: Path, handler: Callable[[dict[str, Any], Desk], dict[str, Any]], **kwargs: Any) -> Desk:
    pool = ScriptedPool(handler)
    desk = Desk(pool, parse(tmp_path, {"AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT": "3600"}), **kwargs)
    pool.desk = desk
    desk.start()
    return desk


def until(condition: Callable[[], Any], timeout: float = 5) -> Any:
    with gevent.Timeout(timeout, AssertionError("condition not met in time")):
        while not (value := condition()):
            gevent.sleep(0.01)
    return value


def test_a_sync_invoke_answers_with_the_result_and_the_arn_on_the_head(tmp_path: Path) -> None:
    desk = make_desk(tmp_path, succeeds)
    frames = Frames()
    invocation = desk.submit(Invoke(function="function", payload=b'{"a": 1}', durable_execution_name="n1"), frames)
    until(invocation.finished.is_set)
    head = next(m for m in frames.messages if isinstance(m, Head))
    assert head.headers[ARN_HEADER].split("/")[-2] == "n1"
    assert frames.end is not None and frames.end.outcome is Outcome.OK
    body = b"".join(m.data for m in frames.messages if isinstance(m, Chunk))
    assert json.loads(body)["input"]["ExecutionDetails"]["InputPayload"] == '{"a": 1}'
    desk.close()


def test_a_sync_invoke_answers_past_its_limit_and_the_execution_goes_on(tmp_path: Path) -> None:
    desk = make_desk(tmp_path, waits_an_hour, sync_limit_s=0.2)
    frames = Frames()
    invocation = desk.submit(Invoke(function="function", payload=b"{}"), frames)
    until(invocation.finished.is_set)
    end = frames.end
    assert end is not None and end.outcome is Outcome.FUNCTION_ERROR and end.error_type == "Sandbox.Timedout"
    arn = end.headers[ARN_HEADER]
    assert "still running after 0.20 seconds" in json.loads(end.body)["errorMessage"]
    assert desk.engine.execution(arn).running
    desk.close()


def test_an_event_invoke_is_acknowledged_at_once_with_the_arn(tmp_path: Path) -> None:
    desk = make_desk(tmp_path, waits_an_hour)
    frames = Frames()
    desk.submit(Invoke(function="function", payload=b"{}", invocation_type="Event"), frames)
    end = frames.end  # before anything yielded: 202 at once
    assert end is not None and end.status == 202 and ARN_HEADER in end.headers
    desk.close()


def test_closing_the_desk_answers_the_waiting_callers(tmp_path: Path) -> None:
    desk = make_desk(tmp_path, waits_an_hour)
    frames = Frames()
    desk.submit(Invoke(function="function", payload=b"{}"), frames)
    until(lambda: desk.engine.executions_of("test_function"))
    gevent.sleep(0.05)
    desk.close()
    end = frames.end
    assert end is not None and end.status == 503 and end.error_type == "ServiceException"
    refused = desk.answer(ApiRequest(method="GET", path="/2025-12-01/functions/test_function/durable-executions"))
    assert refused.status == 503 and refused.headers["X-Amzn-ErrorType"] == "ServiceException"


def test_a_closed_desk_refuses_a_durable_invoke_instead_of_running_it_plainly(tmp_path: Path) -> None:
    desk = make_desk(tmp_path, succeeds)
    pool = desk._pool
    assert isinstance(pool, ScriptedPool)
    desk.close()
    frames = Frames()
    desk.submit(Invoke(function="function", payload=b"{}"), frames)
    end = frames.end
    assert end is not None and end.status == 503 and end.error_type == "ServiceException"
    assert pool.invokes == []  # the handler never ran without its execution
    assert not desk.engine.executions_of("test_function")


def test_dry_runs_and_other_functions_go_to_the_pool(tmp_path: Path) -> None:
    desk = make_desk(tmp_path, succeeds)
    pool = desk._pool
    assert isinstance(pool, ScriptedPool)
    frames = Frames()
    desk.submit(Invoke(function="function", payload=b"{}", invocation_type="DryRun"), frames)
    desk.submit(Invoke(function="someone-else", payload=b"{}"), frames)
    assert [request.function for request in pool.invokes] == ["function", "someone-else"]
    assert not desk.engine.executions_of("test_function")
    desk.close()


def test_the_api_answers_through_the_desk(tmp_path: Path) -> None:
    desk = make_desk(tmp_path, succeeds)
    frames = Frames()
    desk.submit(Invoke(function="function", payload=b"{}", durable_execution_name="listed"), frames)
    until(lambda: frames.end)
    listed = desk.answer(ApiRequest(method="GET", path="/2025-12-01/functions/test_function/durable-executions"))
    assert listed.status == 200
    assert [item["DurableExecutionName"] for item in json.loads(listed.body)["DurableExecutions"]] == ["listed"]
    unknown = desk.answer(ApiRequest(method="GET", path="/2025-12-01/durable-executions/arn%3Anope"))
    assert unknown.status == 404 and unknown.headers["X-Amzn-ErrorType"] == "ResourceNotFoundException"
    desk.close()
