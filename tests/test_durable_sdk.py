"""The real Durable Execution SDK for Python against ``pyrie_durable``, end to end over HTTP.

The handler runs in a worker process (``tests/runtimes/durable_worker.py``) with ``AWS_ENDPOINT_URL_LAMBDA`` pointing at
the engine's REST API, served by a small gevent HTTP server; boto3 (in gevent's thread pool) reads and answers
executions as a user would. The same through a real pyrie (its pool and front end) is tests/test_durable_pyrie.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
import gevent
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from pyrie_durable import (
    DurableApi,
    DurableEngine,
    DurableFunction,
    DurableServiceError,
    EngineConfig,
    ErrorCode,
    Execution,
    SqliteStore,
    Store,
    invoke_answer,
)
from pyrie_durable.states import ExecutionStatus
from tests.durable_harness import CREDENTIALS, WorkerInvoker, in_thread, serve

pytestmark = pytest.mark.slow

FUNCTION_NAME = "test_function"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:012345678912:function:{FUNCTION_NAME}"


class Service:
    """One durable function, its engine and REST API, and a boto3 client for it."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.effects_file = tmp_path / "effects"
        self._exits = ExitStack()
        self.engine: DurableEngine | None = None
        self.invoker: WorkerInvoker | None = None
        self.url = ""

    def start(self, handler: str, *, store: Store | None = None, execution_timeout: int = 60) -> DurableEngine:
        self.invoker = WorkerInvoker(
            f"tests.functions.durable_handlers:{handler}", {"DURABLE_SIDE_EFFECTS": str(self.effects_file)}
        )
        self.engine = DurableEngine(self.invoker, store, config=EngineConfig(retry_backoff=0.2))
        self.engine.register(DurableFunction(FUNCTION_NAME, FUNCTION_ARN, execution_timeout=execution_timeout))
        self.url = self._exits.enter_context(serve(DurableApi(self.engine)))
        self.invoker.env["AWS_ENDPOINT_URL_LAMBDA"] = self.url
        return self.engine

    def stop_engine(self) -> None:
        assert self.engine is not None and self.invoker is not None
        self.engine.close()
        self.invoker.close()
        self._exits.close()
        self._exits = ExitStack()

    def client(self) -> Any:
        return boto3.client(
            "lambda",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=Config(retries={"max_attempts": 1}),
        )

    def lambda_call(self, operation: str, **params: Any) -> Any:
        client = self.client()
        return in_thread(getattr(client, operation), **params)

    def run(self, event: dict[str, Any], *, name: str | None = None, timeout: float = 30) -> Execution:
        assert self.engine is not None
        execution, created = self.engine.start(FUNCTION_NAME, json.dumps(event).encode(), name=name)
        assert created
        done = self.engine.wait(execution.arn, timeout)
        assert done is not None, f"{execution.arn} still {execution.status} after {timeout} s"
        return done

    def effects(self) -> list[str]:
        return self.effects_file.read_text().split() if self.effects_file.exists() else []

    def invocations(self) -> list[dict[str, Any]]:
        assert self.invoker is not None
        return self.invoker.payloads()

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
        if self.invoker is not None:
            self.invoker.close()
        self._exits.close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    running = Service(tmp_path)
    yield running
    running.close()


def until(condition: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        gevent.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_steps_run_once_and_a_wait_resumes_in_a_new_invocation(service: Service) -> None:
    service.start("steps_and_wait")
    done = service.run({"x": 1, "wait": 2})
    assert done.status is ExecutionStatus.SUCCEEDED
    assert json.loads(done.result or "") == {"one": 2, "two": 4}
    assert invoke_answer(done).body == done.result.encode()  # type: ignore[union-attr]
    assert service.effects() == ["one", "two"]  # "one" was replayed from its checkpoint, not run again
    first, second = service.invocations()
    assert [operation["Type"] for operation in first["InitialExecutionState"]["Operations"]] == ["EXECUTION"]
    replayed = {operation["Name"]: operation for operation in second["InitialExecutionState"]["Operations"][1:]}
    assert replayed["one"]["Status"] == "SUCCEEDED" and replayed["pause"]["Status"] == "SUCCEEDED"
    events = {event["EventType"]: event for event in done.events}
    waited = events["WaitSucceeded"]["EventTimestamp"] - events["WaitStarted"]["EventTimestamp"]
    assert waited >= 2
    second_started = [e for e in done.events if e["EventType"] == "InvocationCompleted"][1]
    assert second_started["InvocationCompletedDetails"]["StartTimestamp"] >= events["WaitStarted"]["EventTimestamp"] + 2


def test_a_map_whose_branches_wait_runs_each_branch_step_once(service: Service) -> None:
    service.start("fan_out")
    started = time.monotonic()
    done = service.run({"items": [1, 2, 3]})
    assert done.status is ExecutionStatus.SUCCEEDED
    assert json.loads(done.result or "") == [2, 4, 6]
    assert sorted(service.effects()) == ["item-1", "item-2", "item-3"]
    assert time.monotonic() - started >= 3  # the longest branch waits 3 s


def test_a_retried_step_follows_the_sdks_retry_strategy(service: Service) -> None:
    service.start("flaky")
    done = service.run({"succeed_on": 3})
    assert done.status is ExecutionStatus.SUCCEEDED
    assert done.result == "3"
    assert service.effects() == ["flaky", "flaky", "flaky"]
    assert len(service.invocations()) == 3  # each retry delay suspends the execution
    steps = [event for event in done.events if event["EventType"] in ("StepFailed", "StepSucceeded")]
    assert [event["EventType"] for event in steps] == ["StepFailed", "StepFailed", "StepSucceeded"]
    assert [event["StepFailedDetails"]["RetryDetails"] for event in steps[:2]] == [
        {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 1},
        {"CurrentAttempt": 2, "NextAttemptDelaySeconds": 2},
    ]


def test_retries_run_out_and_the_execution_fails(service: Service) -> None:
    service.start("flaky")
    done = service.run({"succeed_on": 10, "max_attempts": 2})
    assert done.status is ExecutionStatus.FAILED
    assert done.error is not None and "attempt 2 failed" in (done.error.message or "")
    answer = invoke_answer(done)
    assert answer.function_error == "Unhandled"
    assert json.loads(answer.body)["errorMessage"] == done.error.message


def test_a_handler_error_fails_the_execution(service: Service) -> None:
    service.start("failing")
    done = service.run({})
    assert done.status is ExecutionStatus.FAILED
    assert done.error is not None
    assert (done.error.type, done.error.message) == ("ValueError", "the order cannot be shipped")
    assert json.loads(invoke_answer(done).body) == {
        "errorType": "ValueError",
        "errorMessage": "the order cannot be shipped",
    }


def _callback_id(service: Service, path: Path) -> str:
    return until(lambda: path.exists() and path.read_text())


@pytest.mark.parametrize("answer", ["success", "failure"])
def test_a_callback_answered_with_boto3_resumes_the_execution(service: Service, answer: str) -> None:
    engine = service.start("approval")
    callback_file = service.tmp_path / "callback-id"
    execution, _ = engine.start(FUNCTION_NAME, json.dumps({"callback_file": str(callback_file)}).encode())
    callback_id = _callback_id(service, callback_file)
    until(lambda: not execution.invocation_id)  # the invocation suspended
    assert execution.status is ExecutionStatus.RUNNING
    if answer == "success":
        service.lambda_call("send_durable_execution_callback_success", CallbackId=callback_id, Result=b'"approved"')
    else:
        service.lambda_call(
            "send_durable_execution_callback_failure",
            CallbackId=callback_id,
            Error={"ErrorMessage": "denied by Alice", "ErrorType": "Rejected"},
        )
    done = engine.wait(execution.arn, 20)
    assert done is not None
    if answer == "success":
        assert done.status is ExecutionStatus.SUCCEEDED
        # The SDK hands the callback's result over as sent (its default serdes passes text through).
        assert json.loads(done.result or "") == {"answer": '"approved"', "after": "done"}
        assert service.effects() == ["submit", "after"]
    else:
        assert done.status is ExecutionStatus.FAILED
        assert done.error is not None and "denied by Alice" in (done.error.message or "")
        assert service.effects() == ["submit"]
    # A callback answered twice, or after its execution closed, is refused as Lambda documents.
    with pytest.raises(ClientError) as again:
        service.lambda_call("send_durable_execution_callback_success", CallbackId=callback_id, Result=b"1")
    assert again.value.response["Error"]["Code"] == "CallbackTimeoutException"
    assert again.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_history_list_get_and_stop_through_boto3(service: Service) -> None:
    engine = service.start("long_wait")
    first = service.run({"wait": 1}, name="first")
    running, _ = engine.start(FUNCTION_NAME, b'{"wait": 300}', name="second")
    until(lambda: any(event["EventType"] == "WaitStarted" for event in running.events))

    got = service.lambda_call("get_durable_execution", DurableExecutionArn=first.arn)
    assert got["Status"] == "SUCCEEDED" and got["Result"] == '"woke"' and got["DurableExecutionName"] == "first"
    assert got["InputPayload"] == '{"wait": 1}'
    assert got["DurableConfig"] == {"ExecutionTimeout": 60, "RetentionPeriodInDays": 14}
    compact = service.lambda_call("get_durable_execution", DurableExecutionArn=first.arn, IncludeExecutionData=False)
    assert "Result" not in compact and compact["ExecutionDataIncluded"] is False

    history = service.lambda_call("get_durable_execution_history", DurableExecutionArn=first.arn)
    kinds = [event["EventType"] for event in history["Events"]]
    assert kinds[0] == "ExecutionStarted" and kinds[-1] == "ExecutionSucceeded"
    assert kinds.count("InvocationCompleted") == 2
    paginator = service.client().get_paginator("get_durable_execution_history")
    pages = in_thread(lambda: list(paginator.paginate(DurableExecutionArn=first.arn, PaginationConfig={"PageSize": 2})))
    assert [event["EventType"] for page in pages for event in page["Events"]] == kinds

    listed = service.lambda_call("list_durable_executions_by_function", FunctionName=FUNCTION_NAME)
    assert [item["DurableExecutionName"] for item in listed["DurableExecutions"]] == ["second", "first"]
    only_running = service.lambda_call(
        "list_durable_executions_by_function", FunctionName=FUNCTION_ARN, Statuses=["RUNNING"]
    )
    assert [item["DurableExecutionArn"] for item in only_running["DurableExecutions"]] == [running.arn]

    stopped = service.lambda_call(
        "stop_durable_execution", DurableExecutionArn=running.arn, Error={"ErrorMessage": "not needed any more"}
    )
    assert engine.wait(running.arn, 5) is running
    assert running.status is ExecutionStatus.STOPPED
    got = service.lambda_call("get_durable_execution", DurableExecutionArn=running.arn)
    assert got["Status"] == "STOPPED" and got["Error"] == {"ErrorMessage": "not needed any more"}
    assert got["EndTimestamp"] == stopped["StopTimestamp"]
    assert invoke_answer(running).function_error == "Unhandled"

    unknown = running.arn.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    with pytest.raises(ClientError) as missing:
        service.lambda_call("get_durable_execution", DurableExecutionArn=unknown)
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_the_execution_timeout_is_enforced(service: Service) -> None:
    service.start("long_wait", execution_timeout=2)
    started = time.monotonic()
    done = service.run({"wait": 60})
    assert done.status is ExecutionStatus.TIMED_OUT
    assert 2 <= time.monotonic() - started < 4
    assert done.events[-1]["EventType"] == "ExecutionTimedOut"
    assert json.loads(invoke_answer(done).body)["errorMessage"] == "Execution timed out after 2 seconds."


def test_execution_names_are_idempotent_for_the_same_payload(service: Service) -> None:
    engine = service.start("long_wait")
    first, created = engine.start(FUNCTION_NAME, b'{"wait": 1}', name="once")
    again, created_again = engine.start(FUNCTION_NAME, b'{"wait": 1}', name="once")
    assert created and not created_again and again is first
    with pytest.raises(DurableServiceError) as conflict:
        engine.start(FUNCTION_NAME, b'{"wait": 2}', name="once")
    assert conflict.value.code is ErrorCode.ALREADY_STARTED and conflict.value.status == 409
    assert engine.wait(first.arn, 20) is first and first.status is ExecutionStatus.SUCCEEDED
    assert engine.start(FUNCTION_NAME, b'{"wait": 1}', name="once") == (first, False)


def test_a_handler_without_the_sdk_fails_the_execution_at_once(service: Service) -> None:
    service.start("not_durable")
    done = service.run({})
    assert done.status is ExecutionStatus.FAILED
    assert done.error is not None and "durable execution output" in (done.error.message or "")
    assert len(service.invocations()) == 1


def test_a_restarted_engine_resumes_a_pending_wait_from_its_store(service: Service, tmp_path: Path) -> None:
    path = tmp_path / "durable.sqlite"
    engine = service.start("long_wait", store=SqliteStore(path))
    execution, _ = engine.start(FUNCTION_NAME, b'{"wait": 2}', name="survivor")
    until(lambda: any(event["EventType"] == "InvocationCompleted" for event in execution.events))
    service.stop_engine()  # pyrie goes away in the middle of the wait

    restarted = service.start("long_wait", store=SqliteStore(path))
    assert restarted.recover() == 1
    resumed = restarted.execution(execution.arn)
    assert resumed is not execution and resumed.status is ExecutionStatus.RUNNING
    done = restarted.wait(execution.arn, 20)
    assert done is not None and done.status is ExecutionStatus.SUCCEEDED and done.result == '"woke"'
    assert service.effects() == ["before"]
    got = service.lambda_call("get_durable_execution", DurableExecutionArn=execution.arn)
    assert (got["Status"], got["DurableExecutionName"]) == ("SUCCEEDED", "survivor")
    kinds = [event["EventType"] for event in done.events]
    assert kinds == [
        "ExecutionStarted",
        "StepStarted",
        "StepSucceeded",
        "WaitStarted",
        "InvocationCompleted",
        "WaitSucceeded",
        "InvocationCompleted",
        "ExecutionSucceeded",
    ]
