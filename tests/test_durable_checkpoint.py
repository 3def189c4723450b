"""The durable execution service's rules, pure (``pyrie_durable.checkpoint``), against botocore's model and the SDK's
own parser of the invocation payload."""

from __future__ import annotations

import contextlib
import datetime
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from aws_durable_execution_sdk_python.execution import DurableExecutionInvocationInput
from aws_durable_execution_sdk_python.lambda_service import OperationStatus as SdkStatus

from pyrie_durable import checkpoint
from pyrie_durable.codec import parse_updates
from pyrie_durable.durable_errors import DurableServiceError, ErrorCode
from pyrie_durable.model import DurableFunction, ErrorObject, Execution
from pyrie_durable.states import ExecutionStatus, OperationStatus
from pyrie_durable.tokens import decode_callback_id
from tests.durable_shapes import check_output, check_shape, lambda_model

FUNCTION = DurableFunction(
    name="orders", arn="arn:aws:lambda:us-east-1:012345678912:function:orders", execution_timeout=300
)
T0 = 1_750_000_000.0


def start(now: float = T0) -> tuple[Execution, dict[str, Any]]:
    execution = checkpoint.new_execution(
        FUNCTION, name="order-1", execution_id="e-1", input_payload='{"order": 1}', now=now
    )
    return execution, checkpoint.begin_invocation(execution, "inv-1")


def send(
    execution: Execution, token: str, *updates: dict[str, Any], now: float = T0 + 1, client_token: str | None = None
):
    return checkpoint.apply_checkpoint(execution, token, parse_updates(list(updates)), client_token, now).response


def step(op_id: str, action: str, **extra: Any) -> dict[str, Any]:
    return {"Id": op_id, "Type": "STEP", "Action": action, "SubType": "Step", "Name": op_id, **extra}


@contextlib.contextmanager
def refused(code: ErrorCode, message: str | None = None) -> Iterator[None]:
    """The block raises ``DurableServiceError`` with ``code`` (and ``message`` in its text)."""
    with pytest.raises(DurableServiceError, match=re.escape(message) if message else None) as caught:
        yield
    assert caught.value.code is code, caught.value.code


def test_new_execution_and_its_invocation_payload_are_what_the_sdk_parses() -> None:
    execution, payload = start()
    pattern = lambda_model().shape_for("DurableExecutionArn").metadata["pattern"]
    assert re.fullmatch(pattern, execution.arn)
    assert execution.arn == (
        "arn:aws:lambda:us-east-1:012345678912:function:orders:$LATEST/durable-execution/order-1/e-1"
    )
    assert re.fullmatch(lambda_model().shape_for("CheckpointToken").metadata["pattern"], payload["CheckpointToken"])
    assert payload["InitialExecutionState"] == {
        "Operations": [
            {
                "Id": "e-1",
                "Name": "order-1",
                "Type": "EXECUTION",
                "StartTimestamp": int(T0 * 1000),
                "Status": "STARTED",
                "ExecutionDetails": {"InputPayload": '{"order": 1}'},
            }
        ],
        "NextMarker": "",
    }
    parsed = DurableExecutionInvocationInput.from_json_dict(json.loads(json.dumps(payload)))
    (operation,) = parsed.initial_execution_state.operations
    assert parsed.durable_execution_arn.split("/")[-1] == operation.operation_id == "e-1"
    assert operation.start_timestamp == datetime.datetime.fromtimestamp(T0, tz=datetime.UTC)
    assert operation.execution_details is not None and operation.execution_details.input_payload == '{"order": 1}'
    assert [event["EventType"] for event in execution.events] == ["ExecutionStarted"]


def test_a_checkpoint_answers_the_next_token_and_every_operation_changed() -> None:
    execution, payload = start()
    token = payload["CheckpointToken"]
    response = send(execution, token, step("s1", "START"), step("s1", "SUCCEED", Payload="42"))
    check_output("CheckpointDurableExecution", response)
    assert response["CheckpointToken"] != token
    (operation,) = response["NewExecutionState"]["Operations"]
    assert operation["Id"] == "s1"
    assert operation["Status"] == "SUCCEEDED"
    assert operation["StepDetails"] == {"Attempt": 1, "Result": "42"}
    assert operation["StartTimestamp"] == T0 + 1 and operation["EndTimestamp"] == T0 + 1
    # Nothing new: the next checkpoint's state is empty.
    again = send(execution, response["CheckpointToken"])
    assert again["NewExecutionState"] == {"Operations": []}


def test_only_the_latest_token_of_the_running_invocation_is_accepted() -> None:
    execution, payload = start()
    first = payload["CheckpointToken"]
    send(execution, first, step("s1", "START"))
    with refused(ErrorCode.INVALID_PARAMETER, "Invalid checkpoint token"):
        send(execution, first, step("s2", "START"))
    assert "s2" not in execution.operations
    # A new invocation supersedes the old one's tokens.
    latest = checkpoint.begin_invocation(execution, "inv-2")["CheckpointToken"]
    with refused(ErrorCode.INVALID_PARAMETER, "Invalid checkpoint token"):
        send(execution, first)
    send(execution, latest, step("s2", "START"))
    for garbage in ("", "not base64!", "e30="):
        with refused(ErrorCode.INVALID_PARAMETER, "Invalid checkpoint token"):
            send(execution, garbage)


def test_a_retried_checkpoint_with_its_client_token_gets_the_same_answer() -> None:
    execution, payload = start()
    token = payload["CheckpointToken"]
    first = send(execution, token, step("s1", "START"), client_token="c-1")
    assert send(execution, token, step("s1", "START"), client_token="c-1") == first
    assert [event["EventType"] for event in execution.events].count("StepStarted") == 1


@pytest.mark.parametrize(
    ("updates", "message"),
    [
        ([step("s1", "START"), step("s1", "START")], "Cannot checkpoint multiple operations with the same ID."),
        ([step("s1", "START", ParentId="nope")], "Invalid parent operation id."),
        ([step("s1", "FAIL", Payload="x")], "Cannot provide a Payload for FAIL action."),
        ([step("s1", "SUCCEED", Error={"ErrorMessage": "x"})], "Cannot provide an Error for SUCCEED action."),
        ([step("s1", "RETRY", Error={"ErrorMessage": "x"})], "Invalid StepOptions for the given action."),
        ([{"Id": "w", "Type": "WAIT", "Action": "CANCEL"}], "Invalid CANCEL for WAIT: not allowed on a new operation."),
        ([{"Id": "c", "Type": "CALLBACK", "Action": "SUCCEED"}], "Invalid SUCCEED for CALLBACK"),
        ([{"Id": "i", "Type": "CHAINED_INVOKE", "Action": "START"}], "requires ChainedInvokeOptions"),
        (
            [{"Id": "x", "Type": "EXECUTION", "Action": "SUCCEED"}, step("s1", "START")],
            "EXECUTION checkpoint must be the last update.",
        ),
        ([{"Id": "x", "Type": "EXECUTION", "Action": "START"}], "Invalid EXECUTION action."),
        ([{"Id": "bad id!", "Type": "STEP", "Action": "START"}], "failed to satisfy constraint"),
        ([{"Id": "s", "Type": "THING", "Action": "START"}], "Member must satisfy enum value set"),
        ([{"Id": "w", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": 0}}], "greater than or equal"),
    ],
)
def test_a_refused_checkpoint_changes_nothing(updates: list[dict[str, Any]], message: str) -> None:
    execution, payload = start()
    before = (dict(execution.operations), execution.seq, len(execution.events), execution.token_seq)
    with pytest.raises(DurableServiceError) as refusal:
        send(execution, payload["CheckpointToken"], step("ok", "START"), *updates)
    assert refusal.value.code is ErrorCode.INVALID_PARAMETER
    assert message in refusal.value.message
    assert (dict(execution.operations), execution.seq, len(execution.events), execution.token_seq) == before
    # The same token still works: nothing was consumed.
    send(execution, payload["CheckpointToken"], step("ok", "START"))


def test_operations_keep_their_identity() -> None:
    execution, payload = start()
    token = send(execution, payload["CheckpointToken"], step("s1", "START"))["CheckpointToken"]
    with refused(ErrorCode.INVALID_PARAMETER, "Inconsistent operation type."):
        send(execution, token, {"Id": "s1", "Type": "WAIT", "Action": "START"})
    with refused(ErrorCode.INVALID_PARAMETER, "Inconsistent operation name."):
        send(execution, token, step("s1", "SUCCEED", Name="other"))
    with refused(ErrorCode.INVALID_PARAMETER, "Invalid START for STEP: not allowed on an operation in status STARTED"):
        send(execution, token, step("s1", "START"))


def test_a_callback_gets_an_id_that_finds_it_and_can_be_answered_once() -> None:
    execution, payload = start()
    response = send(
        execution,
        payload["CheckpointToken"],
        {"Id": "c1", "Type": "CALLBACK", "Action": "START", "CallbackOptions": {"TimeoutSeconds": 30}},
    )
    (operation,) = response["NewExecutionState"]["Operations"]
    callback_id = operation["CallbackDetails"]["CallbackId"]
    assert re.fullmatch(lambda_model().shape_for("CallbackId").metadata["pattern"], callback_id)
    assert decode_callback_id(callback_id) == (execution.arn, "c1")
    assert checkpoint.next_due(execution) == T0 + 1 + 30
    checkpoint.answer_callback(execution, "c1", T0 + 5, result='"yes"')
    assert execution.operations["c1"].status is OperationStatus.SUCCEEDED
    assert execution.operations["c1"].result == '"yes"'
    assert execution.service_updated == ["c1"]
    with pytest.raises(DurableServiceError) as again:
        checkpoint.answer_callback(execution, "c1", T0 + 6, error=ErrorObject(message="no"), failed=True)
    assert again.value.code is ErrorCode.CALLBACK_TIMEOUT
    with pytest.raises(DurableServiceError) as unknown:
        checkpoint.answer_callback(execution, "nope", T0 + 6)
    assert unknown.value.code is ErrorCode.NOT_FOUND
    # The next invocation is told which operations the service changed.
    assert checkpoint.begin_invocation(execution, "inv-2")["UpdatedOperationIds"] == ["c1"]


def test_callbacks_time_out_and_heartbeats_keep_them_open() -> None:
    execution, payload = start()
    send(
        execution,
        payload["CheckpointToken"],
        {"Id": "c1", "Type": "CALLBACK", "Action": "START", "CallbackOptions": {"HeartbeatTimeoutSeconds": 10}},
        {"Id": "c2", "Type": "CALLBACK", "Action": "START", "CallbackOptions": {"TimeoutSeconds": 20}},
    )
    checkpoint.heartbeat_callback(execution, "c1", T0 + 8)  # c1 would have timed out at T0 + 11
    assert checkpoint.next_due(execution) == T0 + 18
    assert not checkpoint.complete_due(execution, T0 + 15)
    assert checkpoint.complete_due(execution, T0 + 18)  # 10 s after the heartbeat
    assert execution.operations["c1"].status is OperationStatus.TIMED_OUT
    assert execution.operations["c1"].error == checkpoint.CALLBACK_HEARTBEAT_ERROR
    assert execution.operations["c2"].status is OperationStatus.STARTED
    assert checkpoint.complete_due(execution, T0 + 21)
    assert execution.operations["c2"].error == checkpoint.CALLBACK_TIMEOUT_ERROR
    with pytest.raises(DurableServiceError) as late:
        checkpoint.answer_callback(execution, "c1", T0 + 30, result="1")
    assert late.value.code is ErrorCode.CALLBACK_TIMEOUT


def test_waits_elapse_and_retries_come_due() -> None:
    execution, payload = start()
    token = payload["CheckpointToken"]
    response = send(
        execution,
        token,
        {"Id": "w1", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": 2}},
        step("s1", "START"),
        step("s1", "RETRY", Error={"ErrorMessage": "flaky"}, StepOptions={"NextAttemptDelaySeconds": 5}),
    )
    states = {operation["Id"]: operation for operation in response["NewExecutionState"]["Operations"]}
    assert states["w1"]["WaitDetails"] == {"ScheduledEndTimestamp": T0 + 3}
    assert states["s1"]["Status"] == "PENDING"
    assert states["s1"]["StepDetails"]["NextAttemptTimestamp"] == T0 + 6
    assert states["s1"]["StepDetails"]["Attempt"] == 1
    checkpoint.end_invocation(execution)
    assert checkpoint.has_pending_work(execution) and not checkpoint.has_unseen_changes(execution)
    assert checkpoint.next_due(execution) == T0 + 3
    assert not checkpoint.complete_due(execution, T0 + 2.9)
    assert checkpoint.complete_due(execution, T0 + 3)
    assert execution.operations["w1"].status is OperationStatus.SUCCEEDED
    assert checkpoint.has_unseen_changes(execution)
    assert checkpoint.next_due(execution) == T0 + 6
    assert checkpoint.complete_due(execution, T0 + 6)
    assert execution.operations["s1"].status is OperationStatus.READY
    payload = checkpoint.begin_invocation(execution, "inv-2")
    assert payload["UpdatedOperationIds"] == ["w1", "s1"]
    parsed = DurableExecutionInvocationInput.from_json_dict(payload)
    statuses = {operation.operation_id: operation.status for operation in parsed.initial_execution_state.operations}
    assert statuses == {"e-1": SdkStatus.STARTED, "w1": SdkStatus.SUCCEEDED, "s1": SdkStatus.READY}
    # The step runs again from READY and succeeds on its second attempt.
    response = send(execution, payload["CheckpointToken"], step("s1", "START"), step("s1", "SUCCEED", Payload="1"))
    assert response["NewExecutionState"]["Operations"][0]["StepDetails"]["Attempt"] == 2


def test_a_due_wait_is_delivered_in_the_running_invocations_next_checkpoint() -> None:
    execution, payload = start()
    token = send(
        execution,
        payload["CheckpointToken"],
        {"Id": "w1", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": 1}},
    )["CheckpointToken"]
    response = send(execution, token, now=T0 + 5)
    assert [(o["Id"], o["Status"]) for o in response["NewExecutionState"]["Operations"]] == [("w1", "SUCCEEDED")]


def test_the_state_leaves_out_the_children_of_completed_contexts_and_pages() -> None:
    execution, payload = start()
    context = {"Id": "ctx", "Type": "CONTEXT", "SubType": "RunInChildContext"}
    kept = {"Id": "kept", "Type": "CONTEXT"}
    token = send(
        execution,
        payload["CheckpointToken"],
        {**context, "Action": "START"},
        step("child", "START", ParentId="ctx"),
        step("child", "SUCCEED", ParentId="ctx", Payload="1"),
        {**context, "Action": "SUCCEED", "Payload": "1"},
        {**kept, "Action": "START"},
        step("inner", "START", ParentId="kept"),
        {**kept, "Action": "SUCCEED", "ContextOptions": {"ReplayChildren": True}},
        *[step(f"s{index}", "START") for index in range(5)],
    )["CheckpointToken"]
    listed = [operation["Id"] for operation in checkpoint.state_page(execution, token, None, 1000)["Operations"]]
    assert listed == ["e-1", "ctx", "kept", "inner", "s0", "s1", "s2", "s3", "s4"]
    first = checkpoint.state_page(execution, token, None, 4)
    check_output("GetDurableExecutionState", first)
    second = checkpoint.state_page(execution, token, first["NextMarker"], 4)
    third = checkpoint.state_page(execution, token, second["NextMarker"], 4)
    pages = [first, second, third]
    assert [operation["Id"] for page in pages for operation in page["Operations"]] == listed
    assert "NextMarker" not in third
    with refused(ErrorCode.INVALID_PARAMETER, "Invalid marker"):
        checkpoint.state_page(execution, token, "elsewhere:3", 4)
    # A marker is bound to the token it was read with.
    token = send(execution, token)["CheckpointToken"]
    with refused(ErrorCode.INVALID_PARAMETER, "Invalid marker"):
        checkpoint.state_page(execution, token, first["NextMarker"], 4)


def test_an_execution_update_closes_the_execution_and_withholds_the_token() -> None:
    execution, payload = start()
    response = send(
        execution,
        payload["CheckpointToken"],
        step("s1", "SUCCEED", Payload="1"),
        {"Id": "execution-result-1", "Type": "EXECUTION", "Action": "SUCCEED", "Payload": '{"big": true}'},
    )
    check_output("CheckpointDurableExecution", response)
    assert "CheckpointToken" not in response
    assert execution.status is ExecutionStatus.SUCCEEDED
    assert execution.result == '{"big": true}'
    assert execution.operations["e-1"].status is OperationStatus.SUCCEEDED
    with refused(ErrorCode.INVALID_PARAMETER, "Invalid checkpoint token"):
        send(execution, payload["CheckpointToken"])


def test_every_history_event_has_the_models_shape() -> None:
    execution, payload = start()
    token = send(
        execution,
        payload["CheckpointToken"],
        {"Id": "ctx", "Type": "CONTEXT", "Action": "START", "SubType": "WaitForCallback", "Name": "approval"},
        {
            "Id": "c1",
            "Type": "CALLBACK",
            "Action": "START",
            "ParentId": "ctx",
            "CallbackOptions": {"TimeoutSeconds": 9},
        },
        step("s1", "START"),
        step("s1", "RETRY", Error={"ErrorMessage": "x", "ErrorType": "E"}, StepOptions={"NextAttemptDelaySeconds": 1}),
        {"Id": "w1", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": 1}},
        {"Id": "w2", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": 100}},
        {"Id": "i1", "Type": "CHAINED_INVOKE", "Action": "START", "ChainedInvokeOptions": {"FunctionName": "other"}},
    )["CheckpointToken"]
    send(execution, token, {"Id": "w2", "Type": "WAIT", "Action": "CANCEL"}, now=T0 + 2)
    checkpoint.fail_chained_invoke(execution, "i1", ErrorObject(message="no"), T0 + 2)
    checkpoint.answer_callback(execution, "c1", T0 + 3, error=ErrorObject(message="denied"), failed=True)
    checkpoint.close(execution, ExecutionStatus.FAILED, T0 + 4, error=ErrorObject(message="x", type="E"))
    kinds = [event["EventType"] for event in execution.events]
    assert kinds == [
        "ExecutionStarted",
        "ContextStarted",
        "CallbackStarted",
        "StepStarted",
        "StepFailed",
        "WaitStarted",
        "WaitStarted",
        "ChainedInvokeStarted",
        "WaitCancelled",
        "WaitSucceeded",
        "ChainedInvokeFailed",
        "CallbackFailed",
        "ExecutionFailed",
    ]
    assert [event["EventId"] for event in execution.events] == list(range(1, len(kinds) + 1))
    for event in execution.events:
        check_shape("Event", event)


def test_state_too_large_for_the_invocation_payload_is_read_page_by_page(monkeypatch: pytest.MonkeyPatch) -> None:
    execution, payload = start()
    token = send(
        execution,
        payload["CheckpointToken"],
        *[step(f"s{index}", "SUCCEED", Payload="x" * 400) for index in range(6)],
    )["CheckpointToken"]
    checkpoint.end_invocation(execution)
    monkeypatch.setattr(checkpoint, "PAGE_BYTES", 100)  # smaller than any operation
    payload = checkpoint.begin_invocation(execution, "inv-2")
    assert payload["InitialExecutionState"]["Operations"] == []
    token = payload["CheckpointToken"]
    marker = payload["InitialExecutionState"]["NextMarker"]
    read = []
    while marker:  # what the SDK's fetch_paginated_operations does
        page = checkpoint.state_page(execution, token, marker, 1000)
        check_output("GetDurableExecutionState", page)
        read += [operation["Id"] for operation in page["Operations"]]
        marker = page.get("NextMarker", "")
    assert read == ["e-1", "s0", "s1", "s2", "s3", "s4", "s5"]
