"""pyrie running the real Python runtime interface client (awslambdaric) through the cases of the Go emulator's own
integration suite, and Lambda's failure shapes where pyrie answers as Lambda does rather than as the Go emulator."""

from __future__ import annotations

import base64
import json
import re
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import StartPyrie
from tests.cpu_wait import assert_on_time

FUNCTIONS = Path(__file__).parent / "functions"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def ric(handler: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "awslambdaric", f"handlers.{handler}")


def test_environment_value_containing_equals_sign(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(*ric("env_value"), cwd=FUNCTIONS, extra_env={"MyEnv": "4=4"})
    response = pyrie.invoke("{}")
    assert response.status_code == 200
    assert response.content == b'"4=4"'


def test_two_invokes_in_a_row(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(*ric("success"), cwd=FUNCTIONS)
    for _ in range(2):
        response = pyrie.invoke("{}")
        assert response.status_code == 200
        assert response.content == b'"My lambda ran succesfully"'
    pyrie.wait_for_lines("END RequestId", 2)  # the log follows the response
    assert pyrie.stdout().count("Printing data to console") == 2


def test_function_arn_in_context(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(*ric("arn"), cwd=FUNCTIONS)
    body = pyrie.invoke("{}").json()
    assert body["arn"] == body["expected"] == "arn:aws:lambda:us-east-1:012345678912:function:test_function"


def test_custom_function_name(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(*ric("arn"), cwd=FUNCTIONS, extra_env={"AWS_LAMBDA_FUNCTION_NAME": "MyCoolName"})
    assert pyrie.invoke("{}").json()["arn"] == "arn:aws:lambda:us-east-1:012345678912:function:MyCoolName"
    # the function can also be invoked by its own name and by its ARN, with or without a qualifier
    for name in ("MyCoolName", "arn:aws:lambda:us-east-1:012345678912:function:MyCoolName:$LATEST"):
        response = pyrie.invoke("{}", path=f"/2015-03-31/functions/{name}/invocations")
        assert response.status_code == 200, response.text


def test_function_name_is_overridden(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(*ric("function_name"), cwd=FUNCTIONS, extra_env={"AWS_LAMBDA_FUNCTION_NAME": "MyCoolName"})
    assert pyrie.invoke("{}").json() == "MyCoolName"


def test_timeout_answers_as_lambda_and_the_next_invoke_reinitialises(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(*ric("sleep"), cwd=FUNCTIONS, extra_env={"AWS_LAMBDA_FUNCTION_TIMEOUT": "1"})
    with pyrie.run_queue() as queue:
        sent = time.time()
        response = pyrie.invoke('{"seconds": 5}')
        answered = time.time()
    assert response.status_code == 200
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    request_id = response.headers["X-Amzn-RequestId"]
    assert response.json() == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {request_id} Error: Task timed out after 1.00 seconds",
    }
    # the environment was reset: the next invoke starts a new runtime (a cold start) and succeeds
    response = pyrie.invoke('{"seconds": 0}')
    assert response.status_code == 200
    assert response.json() == "I was sleeping"
    reports = pyrie.wait_for_lines("REPORT", 2)
    # the true time from delivery to the kill: the timeout acts on time, within 100 ms of its deadline (give or take
    # what pyrie waited for a CPU)
    duration_ms = float(reports[0].split("\tDuration: ")[1].split(" ms")[0])
    assert_on_time("the timeout", duration_ms / 1000 - 1, 0.1, queue.waited(sent, answered))
    assert "Init Duration" in reports[1]


def test_exception_body(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(*ric("exception"), cwd=FUNCTIONS)
    response = pyrie.invoke("{}")
    assert response.status_code == 200
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    result = response.json()
    assert result["errorMessage"] == "Raising an exception"
    assert result["errorType"] == "Exception"
    assert len(result["stackTrace"]) == 1
    assert 'handlers.py", line' in result["stackTrace"][0]
    assert 'raise Exception("Raising an exception")' in result["stackTrace"][0]


@pytest.mark.parametrize(("timeout", "low", "high"), [("3", 1000, 3000), ("10", 8000, 10000), (None, 298000, 300000)])
def test_remaining_time(start_pyrie: StartPyrie, timeout: str | None, low: int, high: int) -> None:
    env = {"AWS_LAMBDA_FUNCTION_TIMEOUT": timeout} if timeout else {}
    pyrie = start_pyrie(*ric("remaining_time"), cwd=FUNCTIONS, extra_env=env)
    remaining = int(pyrie.invoke("{}").content)
    assert low < remaining <= high


def test_flags_after_the_handler(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(*ric("success"), cwd=FUNCTIONS, flags_last=True)
    assert pyrie.invoke("{}").content == b'"My lambda ran succesfully"'
    assert "--runtime-api-address" not in pyrie.stdout()


def test_custom_client_context(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(*ric("client_context"), cwd=FUNCTIONS)
    context = {
        "client": {
            "installation_id": "id-1",
            "app_title": "app",
            "app_version_name": "1.0",
            "app_version_code": "1",
            "app_package_name": "com.example",
        },
        "custom": {"key": "value"},
        "env": {"platform": "linux"},
    }
    header = base64.b64encode(json.dumps(context).encode()).decode()
    result = pyrie.invoke("{}", headers={"X-Amz-Client-Context": header}).json()
    assert result["custom"] == {"key": "value"}
    assert result["env"] == {"platform": "linux"}
    assert result["client"]["installation_id"] == "id-1"


def test_log_lines_share_one_request_id(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(*ric("success"), cwd=FUNCTIONS)
    request_ids = [pyrie.invoke("{}").headers["X-Amzn-RequestId"]]
    pyrie.wait_idle()  # the second invoke goes to the warm environment
    request_ids.append(pyrie.invoke("{}").headers["X-Amzn-RequestId"])
    pyrie.wait_for_lines("REPORT", 2)
    lines = pyrie.stdout_lines()
    for index, request_id in enumerate(request_ids):
        start = lines.index(f"START RequestId: {request_id} Version: $LATEST")
        end = lines.index(f"END RequestId: {request_id}")
        assert start < lines.index("Printing data to console", start) < end
        report = lines[end + 1]
        pattern = (
            rf"REPORT RequestId: {request_id}\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
            rf"Memory Size: 3008 MB\tMax Memory Used: \d+ MB\t"
        )
        if index == 0:  # a cold start reports how long init took
            pattern += r"Init Duration: \d+\.\d\d ms\t"
        assert re.fullmatch(pattern, report), report


def test_import_error_answers_the_init_error(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(sys.executable, "-m", "awslambdaric", "no_such_module.handler", cwd=FUNCTIONS)
    response = pyrie.invoke("{}")
    assert response.status_code == 200
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    body = response.json()
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert "no_such_module" in body["errorMessage"]
    assert re.fullmatch(UUID, response.headers["X-Amzn-RequestId"])
