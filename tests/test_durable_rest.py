"""``DurableApi``: the durable REST operations, fed the requests botocore builds, answering what botocore's model
describes (shapes, status codes, ``X-Amzn-ErrorType`` and the error bodies' members)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import botocore.loaders
import gevent
import pytest

from pyrie_durable import DurableApi, DurableEngine, DurableFunction, DurableServiceError, ErrorCode, RestRequest
from pyrie_durable.checkpoint import begin_invocation
from pyrie_durable.codec import parse_updates
from pyrie_durable.durable_errors import _SHAPES
from tests.durable_shapes import check_output, lambda_model, parse_error, parse_output, serialize_input
from tests.test_durable_engine import FAST, Scripted, respond

FUNCTION = DurableFunction("fn", "arn:aws:lambda:us-east-1:012345678912:function:fn", execution_timeout=30)


class Api:
    def __init__(self) -> None:
        self.callback_id = ""
        self.invoker = Scripted(self._suspend_on_a_callback)
        self.engine = DurableEngine(self.invoker, config=FAST)
        self.engine.register(FUNCTION)
        self.invoker.engine = self.engine
        self.api = DurableApi(self.engine)

    def _suspend_on_a_callback(self, engine: DurableEngine, payload: dict[str, Any]) -> Any:
        updates = [
            {"Id": "s1", "Type": "STEP", "Action": "SUCCEED", "Name": "first", "SubType": "Step", "Payload": "1"},
            {"Id": "cb", "Type": "CALLBACK", "Action": "START", "CallbackOptions": {"TimeoutSeconds": 60}},
        ]
        response = engine.checkpoint(
            payload["DurableExecutionArn"], payload["CheckpointToken"], parse_updates(updates), None
        )
        self.callback_id = response["NewExecutionState"]["Operations"][-1]["CallbackDetails"]["CallbackId"]
        return respond("PENDING")

    def start(self, name: str | None = None) -> str:
        execution, _ = self.engine.start("fn", b'{"order": 7}', name=name)
        while not self.callback_id or execution.invocation_id:
            gevent.sleep(0.01)
        return execution.arn

    def call(self, operation: str, **params: Any) -> tuple[int, dict[str, str], bytes]:
        request = serialize_input(operation, params)
        response = self.api.handle(
            RestRequest(
                method=request["method"],
                path=request["url_path"],
                query=urlencode(request["query_string"], doseq=True),
                body=request["body"],
            )
        )
        return response.status, dict(response.headers), response.body

    def ok(self, operation: str, **params: Any) -> dict[str, Any]:
        status, headers, body = self.call(operation, **params)
        assert status == lambda_model().operation_model(operation).http.get("responseCode", 200), body
        assert headers["X-Amzn-RequestId"]
        if body:
            check_output(operation, body)
        return parse_output(operation, status, {k.lower(): v for k, v in headers.items()}, body)

    def refused(self, operation: str, **params: Any) -> tuple[int, dict[str, Any], dict[str, Any]]:
        status, headers, body = self.call(operation, **params)
        assert headers["Content-Type"] == "application/json"
        parsed = parse_error(status, {k.lower(): v for k, v in headers.items()}, body)
        return status, parsed["Error"], json.loads(body)


@pytest.fixture
def api() -> Iterator[Api]:
    running = Api()
    yield running
    running.engine.close()


def test_get_durable_execution(api: Api) -> None:
    arn = api.start("order-7")
    got = api.ok("GetDurableExecution", DurableExecutionArn=arn)
    assert got["Status"] == "RUNNING" and got["InputPayload"] == '{"order": 7}'
    assert got["FunctionArn"] == FUNCTION.qualified_arn and got["Version"] == "$LATEST"
    assert "ExpectedExecutionTimeoutTimestamp" in got
    compact = api.ok("GetDurableExecution", DurableExecutionArn=arn, IncludeExecutionData=False)
    assert "InputPayload" not in compact and compact["ExecutionDataIncluded"] is False


def test_an_unknown_execution_is_a_404_resource_not_found(api: Api) -> None:
    arn = FUNCTION.qualified_arn + "/durable-execution/missing/00000000-0000-0000-0000-000000000000"
    for operation in ("GetDurableExecution", "GetDurableExecutionHistory", "StopDurableExecution"):
        status, error, body = api.refused(operation, DurableExecutionArn=arn)
        assert status == 404 and error["Code"] == "ResourceNotFoundException"
        assert body == {"Type": "User", "Message": f"Durable execution not found: {arn}"}


def test_checkpoint_and_state_over_rest(api: Api) -> None:
    arn = api.start()
    # A token of an invocation that has ended is refused; the model gives these operations no 404.
    status, error, body = api.refused(
        "CheckpointDurableExecution", DurableExecutionArn=arn, CheckpointToken="e30=", Updates=[]
    )
    assert (status, error["Code"]) == (400, "InvalidParameterValueException")
    assert body == {"Type": "User", "message": "Invalid checkpoint token"}
    status, error, _ = api.refused("GetDurableExecutionState", DurableExecutionArn=arn + "x", CheckpointToken="e30=")
    assert (status, error["Code"]) == (400, "InvalidParameterValueException")
    # With the token of a running invocation.
    execution = api.engine.execution(arn)
    token = begin_invocation(execution, "manual")["CheckpointToken"]
    state = api.ok("GetDurableExecutionState", DurableExecutionArn=arn, CheckpointToken=token, MaxItems=2)
    assert [operation["Id"] for operation in state["Operations"]] == [execution.execution_id, "s1"]
    rest = api.ok(
        "GetDurableExecutionState", DurableExecutionArn=arn, CheckpointToken=token, Marker=state["NextMarker"]
    )
    assert [operation["Id"] for operation in rest["Operations"]] == ["cb"]
    answer = api.ok(
        "CheckpointDurableExecution",
        DurableExecutionArn=arn,
        CheckpointToken=token,
        Updates=[{"Id": "w", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": 5}}],
        ClientToken="retry-safe",
    )
    assert answer["NewExecutionState"]["Operations"][0]["Id"] == "w"
    status, error, body = api.refused(
        "CheckpointDurableExecution",
        DurableExecutionArn=arn,
        CheckpointToken=answer["CheckpointToken"],
        Updates=[{"Id": "w", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": 5}}],
    )
    assert body["message"] == "Invalid START for WAIT: not allowed on an operation in status STARTED."


def test_history_pages(api: Api) -> None:
    arn = api.start()
    everything = api.ok("GetDurableExecutionHistory", DurableExecutionArn=arn)
    kinds = [event["EventType"] for event in everything["Events"]]
    assert kinds == ["ExecutionStarted", "StepSucceeded", "CallbackStarted", "InvocationCompleted"]
    first = api.ok("GetDurableExecutionHistory", DurableExecutionArn=arn, MaxItems=3)
    second = api.ok("GetDurableExecutionHistory", DurableExecutionArn=arn, MaxItems=3, Marker=first["NextMarker"])
    assert [event["EventId"] for event in first["Events"] + second["Events"]] == [1, 2, 3, 4]
    newest = api.ok("GetDurableExecutionHistory", DurableExecutionArn=arn, ReverseOrder=True, MaxItems=1)
    assert newest["Events"][0]["EventType"] == "InvocationCompleted"
    bare = api.ok("GetDurableExecutionHistory", DurableExecutionArn=arn, IncludeExecutionData=False)
    assert bare["Events"][0]["ExecutionStartedDetails"] == {"Input": {}, "ExecutionTimeout": 30}
    status, error, _ = api.refused("GetDurableExecutionHistory", DurableExecutionArn=arn, Marker="bogus")
    assert (status, error["Code"]) == (400, "InvalidParameterValueException")


@pytest.mark.parametrize("position", ["\u00b2", "\u0663", "-1", ""])  # a superscript 2, an Arabic-Indic 3
def test_a_marker_whose_position_is_not_a_number_is_refused(api: Api, position: str) -> None:
    arn = api.start()
    for operation, params in [
        ("GetDurableExecutionHistory", {"DurableExecutionArn": arn, "Marker": f"history.f:{position}"}),
        ("ListDurableExecutionsByFunction", {"FunctionName": "fn", "Marker": f"list.n:{position}"}),
    ]:
        status, error, body = api.refused(operation, **params)
        assert (status, error["Code"], body["message"]) == (400, "InvalidParameterValueException", "Invalid marker")


def test_list_by_function_reads_statuses(api: Api) -> None:
    first = api.start("a")
    api.callback_id = ""
    second = api.start("b")
    api.engine.stop(first, None)
    listed = api.ok("ListDurableExecutionsByFunction", FunctionName="fn")
    assert [item["DurableExecutionArn"] for item in listed["DurableExecutions"]] == [second, first]
    for name in ("fn", FUNCTION.arn, FUNCTION.qualified_arn, "012345678912:function:fn"):
        running = api.ok("ListDurableExecutionsByFunction", FunctionName=name, Statuses=["RUNNING"])
        assert [item["DurableExecutionName"] for item in running["DurableExecutions"]] == ["b"]
    both = api.ok("ListDurableExecutionsByFunction", FunctionName="fn", Statuses=["RUNNING", "STOPPED"], MaxItems=1)
    assert len(both["DurableExecutions"]) == 1 and "NextMarker" in both
    oldest = api.ok("ListDurableExecutionsByFunction", FunctionName="fn", ReverseOrder=True, DurableExecutionName="a")
    assert [item["Status"] for item in oldest["DurableExecutions"]] == ["STOPPED"]
    later = api.ok("ListDurableExecutionsByFunction", FunctionName="fn", StartedAfter=4102444800)
    assert later["DurableExecutions"] == []
    status, error, _ = api.refused("ListDurableExecutionsByFunction", FunctionName="other")
    assert (status, error["Code"]) == (404, "ResourceNotFoundException")


@pytest.mark.parametrize(
    ("name", "qualifier"),
    [
        ("function", None),  # the Go emulator's fixed name, as Invoke takes it
        ("function", "$LATEST"),
        ("fn:$LATEST", None),
        ("arn:aws:lambda:us-east-1:012345678912:function:function", None),
        ("012345678912:function:fn", "$LATEST"),
    ],
)
def test_list_by_function_takes_the_names_invoke_takes(api: Api, name: str, qualifier: str | None) -> None:
    arn = api.start("a")
    params = {"Qualifier": qualifier} if qualifier else {}
    listed = api.ok("ListDurableExecutionsByFunction", FunctionName=name, **params)
    assert [item["DurableExecutionArn"] for item in listed["DurableExecutions"]] == [arn]


def not_found(qualified: str) -> tuple[int, str, str]:
    return (
        404,
        "ResourceNotFoundException",
        f"Function not found: arn:aws:lambda:us-east-1:012345678912:function:{qualified}",
    )


MISMATCH = "The derived qualifier from the function name does not match the specified qualifier."


@pytest.mark.parametrize(
    ("name", "qualifier", "refusal"),
    [
        ("other", None, not_found("other:$LATEST")),
        ("fn:7", None, not_found("fn:7")),
        ("function", "prod", not_found("function:prod")),
        ("fn:1", "2", (400, "InvalidParameterValueException", MISMATCH)),
        ("no spaces", None, (400, "InvalidParameterValueException", "failed to satisfy constraint")),
    ],
)
def test_list_by_function_refuses_what_invoke_refuses(
    api: Api, name: str, qualifier: str | None, refusal: tuple[int, str, str]
) -> None:
    status, code, message = refusal
    params = {"Qualifier": qualifier} if qualifier else {}
    answered, error, _ = api.refused("ListDurableExecutionsByFunction", FunctionName=name, **params)
    assert (answered, error["Code"]) == (status, code)
    assert message in error["Message"]


def test_callbacks_over_rest(api: Api) -> None:
    arn = api.start()
    api.ok("SendDurableExecutionCallbackHeartbeat", CallbackId=api.callback_id)
    # A client that does not encode the slashes of a callback id reaches the same callback.
    raw = api.api.handle(RestRequest("POST", f"/2025-12-01/durable-execution-callbacks/{api.callback_id}/succeed"))
    assert (raw.status, raw.body) == (200, b"")
    status, error, body = api.refused("SendDurableExecutionCallbackFailure", CallbackId=api.callback_id, Error={})
    assert (status, error["Code"]) == (400, "CallbackTimeoutException") and set(body) == {"Type", "Message"}
    status, error, _ = api.refused("SendDurableExecutionCallbackSuccess", CallbackId="bm90IGEgY2FsbGJhY2s=")
    assert (status, error["Code"]) == (400, "InvalidParameterValueException")
    assert api.engine.execution(arn).operations["cb"].status.value == "SUCCEEDED"


def test_stop_delete_and_conflicts(api: Api) -> None:
    arn = api.start()
    status, error, body = api.refused("DeleteDurableExecution", DurableExecutionArn=arn)
    assert (status, error["Code"]) == (409, "ResourceConflictException") and "message" in body
    stopped = api.ok("StopDurableExecution", DurableExecutionArn=arn, Error={"ErrorMessage": "enough"})
    assert api.engine.execution(arn).error is not None
    assert stopped["StopTimestamp"].timestamp() == pytest.approx(api.engine.execution(arn).end, abs=0.001)
    api.ok("DeleteDurableExecution", DurableExecutionArn=arn)
    status, error, _ = api.refused("GetDurableExecution", DurableExecutionArn=arn)
    assert status == 404


def test_requests_it_cannot_read(api: Api) -> None:
    arn = api.start()
    path = f"/2025-12-01/durable-executions/{quote(arn, safe='')}"
    cases = [
        (RestRequest("POST", path + "/checkpoint", body=b"{not json"), 400, "InvalidParameterValueException"),
        (RestRequest("POST", path + "/checkpoint", body=b"{}"), 400, "InvalidParameterValueException"),
        (RestRequest("PUT", path), 404, "UnknownOperationException"),
        (RestRequest("GET", "/2025-12-01/nothing-here"), 404, "UnknownOperationException"),
        (RestRequest("GET", path + "/history", query="MaxItems=abc"), 400, "InvalidParameterValueException"),
        (RestRequest("POST", path + "/pause"), 400, "InvalidParameterValueException"),
        (
            RestRequest("GET", "/2025-12-01/functions/fn/durable-executions", query="Statuses=DONE"),
            400,
            "InvalidParameterValueException",
        ),
    ]
    for request, status, code in cases:
        response = api.api.handle(request)
        assert (response.status, dict(response.headers)["X-Amzn-ErrorType"]) == (status, code), request
        assert json.loads(response.body)["Type"] == "User"


def test_the_error_table_matches_the_model() -> None:
    raw = botocore.loaders.Loader().load_service_model("lambda", "service-2")["shapes"]
    for code in ErrorCode:
        if code is ErrorCode.UNKNOWN_OPERATION:
            continue  # not a modelled error
        shape = lambda_model().shape_for(code.value)
        assert shape.metadata["error"]["httpStatusCode"] == _SHAPES[code].status, code
        assert DurableServiceError.message_member(code) in shape.members, code
        assert _SHAPES[code].fault == ("Service" if raw[code.value].get("fault") else "User"), code


def test_a_fault_of_the_service_is_a_500_service_exception(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(arn: str) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(api.engine, "execution", broken)
    response = api.api.handle(RestRequest("GET", "/2025-12-01/durable-executions/anything"))
    assert response.status == 500 and dict(response.headers)["X-Amzn-ErrorType"] == "ServiceException"
    assert json.loads(response.body) == {"Type": "Service", "Message": "The durable execution service failed."}
