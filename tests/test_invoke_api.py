"""The Invoke API as callers see it: Lambda's service errors and headers, with curl-like requests and with boto3."""

from __future__ import annotations

import base64
import json
import sys
import threading
from pathlib import Path

import boto3
import botocore.config
import botocore.exceptions
import pytest
import requests

from tests.conftest import StartPyrie
from tests.harness import RAW_RUNTIME, Pyrie

FUNCTIONS = Path(__file__).parent / "functions"


@pytest.fixture
def echo(start_pyrie: StartPyrie) -> Pyrie:
    return start_pyrie(sys.executable, RAW_RUNTIME, extra_env={"RAW_SCENARIO": "echo"})


def lambda_client(pyrie: Pyrie) -> object:
    return boto3.client(
        "lambda",
        endpoint_url=pyrie.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=botocore.config.Config(retries={"max_attempts": 1}, read_timeout=60),
    )


def assert_service_error(response: requests.Response, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["X-Amzn-ErrorType"] == code
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Amzn-RequestId"]
    assert response.headers["X-Amz-Executed-Version"] == "$LATEST"
    body: dict[str, str] = response.json()
    assert body["Type"] == "User"
    return body


def test_buffered_success_headers(echo: Pyrie) -> None:
    response = echo.invoke(b'{"hello": "world"}', headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.content == b'{"hello": "world"}'
    assert response.headers["Content-Length"] == str(len(response.content))
    assert response.headers["X-Amz-Executed-Version"] == "$LATEST"
    assert "X-Amz-Function-Error" not in response.headers
    request_id = response.headers["X-Amzn-RequestId"]
    echo.wait_for_output(f"END RequestId: {request_id}")


def test_runtime_content_type_is_passed_on(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(sys.executable, "-m", "awslambdaric", "handlers.echo", cwd=FUNCTIONS)
    response = pyrie.invoke(b'{"a": 1}')
    assert response.headers["Content-Type"] == "application/json"  # what awslambdaric posted


def test_a_json_payload_reaches_the_runtime_byte_for_byte(echo: Pyrie) -> None:
    payload = (
        '\ufeff {"text": "h\u00e9llo \u2713 \U0001f600",\n "n": [1, 2.5e3, -0, 1e999, null],\t"": {}}\r\n'.encode()
    )
    assert echo.invoke(payload).content == payload
    assert echo.invoke(b"").content == b""  # boto3 sends no body when no Payload is given


def test_unknown_path_is_the_go_emulators_404(echo: Pyrie) -> None:
    response = echo.session.post(echo.url + "/2015-03-31/functions/function/invocationsX", timeout=10)
    assert response.status_code == 404
    assert response.text == "404 page not found\n"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["X-Amzn-RequestId"]


@pytest.mark.parametrize(
    ("name", "found"),
    [
        ("function", True),
        ("test_function", True),
        ("test_function:$LATEST", True),
        ("arn:aws:lambda:us-east-1:012345678912:function:test_function", True),
        ("arn:aws:lambda:eu-west-1:111122223333:function:test_function:$LATEST", True),
        ("012345678912:function:test_function", True),
        ("other_function", False),
        ("test_function:7", False),
    ],
)
def test_function_name_resolution(echo: Pyrie, name: str, found: bool) -> None:
    response = echo.invoke(b"{}", path=f"/2015-03-31/functions/{name}/invocations")
    if found:
        assert response.status_code == 200
        return
    body = assert_service_error(response, 404, "ResourceNotFoundException")
    qualifier = name.partition(":")[2] or "$LATEST"
    expected = f"arn:aws:lambda:us-east-1:012345678912:function:{name.partition(':')[0]}:{qualifier}"
    assert body["Message"] == f"Function not found: {expected}"


def test_qualifier_parameter(echo: Pyrie) -> None:
    ok = echo.invoke(b"{}", path="/2015-03-31/functions/test_function/invocations?Qualifier=%24LATEST")
    assert ok.status_code == 200
    missing = echo.invoke(b"{}", path="/2015-03-31/functions/test_function/invocations?Qualifier=3")
    assert_service_error(missing, 404, "ResourceNotFoundException")


def test_request_over_6_mib_is_refused_before_the_runtime(echo: Pyrie) -> None:
    response = echo.invoke(b'"' + b"x" * 6_291_456 + b'"')
    body = assert_service_error(response, 413, "RequestEntityTooLargeException")
    assert body["message"] == "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    assert echo.invoke(b'"' + b"x" * 6_291_454 + b'"').status_code == 200
    assert "START RequestId" in echo.stdout()


@pytest.mark.parametrize(
    "header",
    [
        "not base64!",
        base64.b64encode(b"not json").decode(),
        base64.b64encode(b"[1, 2]").decode(),
        base64.b64encode(b'{"a": 1}').decode().rstrip("="),  # padding is required
        base64.b64encode(json.dumps({"custom": {"k": "v" * 3000}}).encode()).decode(),  # over 3,583 bytes
    ],
)
def test_bad_client_context(echo: Pyrie, header: str) -> None:
    response = echo.invoke(b"{}", headers={"X-Amz-Client-Context": header})
    body = assert_service_error(response, 400, "InvalidRequestContentException")
    assert "Client context must be" in body["message"]


def test_dry_run_validates_without_running(echo: Pyrie) -> None:
    response = echo.invoke(b"{}", headers={"X-Amz-Invocation-Type": "DryRun"})
    assert response.status_code == 204
    assert response.headers["X-Amzn-RequestId"]
    assert "START" not in echo.stdout()


def test_unknown_invocation_type(echo: Pyrie) -> None:
    response = echo.invoke(b"{}", headers={"X-Amz-Invocation-Type": "Sometime"})
    assert_service_error(response, 400, "InvalidParameterValueException")


def test_concurrent_invoke_beyond_the_environments_is_throttled(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("--max-concurrency", "1", sys.executable, "-m", "awslambdaric", "handlers.sleep", cwd=FUNCTIONS)
    first: list[requests.Response] = []
    slow = threading.Thread(target=lambda: first.append(pyrie.invoke(b'{"seconds": 1}')))
    slow.start()
    pyrie.wait_for_output("START RequestId")
    response = requests.post(pyrie.url + "/2015-03-31/functions/function/invocations", data=b"{}", timeout=10)
    slow.join()
    body = assert_service_error(response, 429, "TooManyRequestsException")
    assert body == {
        "Type": "User",
        "message": "Rate Exceeded.",
        "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
    }
    assert response.headers["Retry-After"]
    assert first[0].status_code == 200


def test_boto3_invoke(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(sys.executable, "-m", "awslambdaric", "handlers.echo", cwd=FUNCTIONS)
    client = lambda_client(pyrie)
    result = client.invoke(FunctionName="test_function", Payload=b'{"x": 1}')  # type: ignore[attr-defined]
    assert result["StatusCode"] == 200
    assert result["ExecutedVersion"] == "$LATEST"
    assert json.loads(result["Payload"].read()) == {"x": 1}
    assert "FunctionError" not in result


def test_boto3_sees_function_errors_and_service_errors(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(sys.executable, "-m", "awslambdaric", "handlers.exception", cwd=FUNCTIONS)
    client = lambda_client(pyrie)
    result = client.invoke(FunctionName="function", Payload=b"{}")  # type: ignore[attr-defined]
    assert result["FunctionError"] == "Unhandled"
    assert json.loads(result["Payload"].read())["errorMessage"] == "Raising an exception"
    with pytest.raises(client.exceptions.ResourceNotFoundException):  # type: ignore[attr-defined]
        client.invoke(FunctionName="nope", Payload=b"{}")  # type: ignore[attr-defined]
    dry = client.invoke(FunctionName="function", InvocationType="DryRun", Payload=b"{}")  # type: ignore[attr-defined]
    assert dry["StatusCode"] == 204


def test_a_multi_line_client_context_reaches_the_runtime_as_one_header_line(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(sys.executable, "-m", "awslambdaric", "handlers.client_context", cwd=FUNCTIONS)
    document = json.dumps({"custom": {"greeting": "héllo"}, "env": {"a": 1}}, indent=2, ensure_ascii=False)
    header = base64.b64encode(document.encode()).decode()
    result = pyrie.invoke(b"{}", headers={"X-Amz-Client-Context": header}).json()
    assert result["custom"] == {"greeting": "héllo"}
    assert result["env"] == {"a": 1}
