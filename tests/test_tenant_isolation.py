"""Tenant isolation (``--tenant-isolation``, Lambda's TenantIsolationMode PER_TENANT): every invoke names its tenant,
and an execution environment only ever serves the tenant of its first invoke."""

from __future__ import annotations

import concurrent.futures
import json
import sys
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import requests

from tests.conftest import StartPyrie
from tests.harness import Pyrie, environments, wait_until

FUNCTIONS = Path(__file__).parent / "functions"
RIC = (sys.executable, "-m", "awslambdaric", "handlers.tenant")
TENANT_REQUIRED = (
    "The function has tenant isolation enabled: invoke it with a tenant ID (X-Amz-Tenant-Id; boto3's TenantId, the "
    "AWS CLI's --tenant-id)."
)


def isolated(start_pyrie: StartPyrie, *flags: str) -> Pyrie:
    return start_pyrie(*RIC, "--tenant-isolation", *flags, cwd=FUNCTIONS)


def as_tenant(pyrie: Pyrie, tenant: str, event: dict[str, Any] | None = None, **headers: str) -> requests.Response:
    return pyrie.invoke(json.dumps(event or {}), headers={"X-Amz-Tenant-Id": tenant, **headers})


def test_an_invoke_without_a_tenant_is_refused_before_anything_starts(start_pyrie: StartPyrie) -> None:
    pyrie = isolated(start_pyrie)
    for headers in ({}, {"X-Amz-Tenant-Id": ""}, {"X-Amz-Invocation-Type": "Event"}):
        answer = pyrie.invoke(b"{}", headers=headers)
        assert answer.status_code == 400, headers
        assert answer.headers["X-Amzn-ErrorType"] == "InvalidParameterValueException"
        assert answer.json() == {"Type": "User", "message": TENANT_REQUIRED}
    assert environments(pyrie) == []
    assert "START" not in pyrie.stdout()


def test_two_tenants_never_share_a_process_and_each_reuses_its_own(start_pyrie: StartPyrie) -> None:
    pyrie = isolated(start_pyrie)

    def serially(tenant: str, count: int) -> list[dict[str, Any]]:
        answers = []
        for _ in range(count):
            answers.append(as_tenant(pyrie, tenant).json())
            pyrie.wait_idle()  # back in /next for the next invoke
        return answers

    blue = serially("blue", 3)
    green = serially("green", 2)
    assert {answer["tenant"] for answer in blue} == {"blue"}
    assert {answer["tenant"] for answer in green} == {"green"}
    assert len({answer["pid"] for answer in blue}) == 1  # its warm environment, again and again
    assert len({answer["pid"] for answer in green}) == 1
    assert blue[0]["pid"] != green[0]["pid"]
    reports = pyrie.wait_for_lines("REPORT", 5)
    assert sum("Init Duration" in report for report in reports) == 2  # one cold start per tenant
    assert sorted(env["tenant"] for env in environments(pyrie)) == ["blue", "green"]


def test_concurrent_invokes_of_two_tenants_run_apart(start_pyrie: StartPyrie) -> None:
    pyrie = isolated(start_pyrie)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda tenant: as_tenant(pyrie, tenant, {"seconds": 0.3}).json(), ["a", "b", "a", "b"]))
    by_tenant: dict[str, set[int]] = {}
    for answer in answers:
        by_tenant.setdefault(answer["tenant"], set()).add(answer["pid"])
    assert not by_tenant["a"] & by_tenant["b"]  # no process served both


def test_a_new_tenant_gets_room_made_from_an_idle_environment(start_pyrie: StartPyrie) -> None:
    pyrie = isolated(start_pyrie, "--max-concurrency", "1")
    blue = as_tenant(pyrie, "blue").json()
    # Answered, blue's environment is idle once its runtime is back in /next (until then it is busy, and green would
    # be throttled, as Lambda throttles when no environment may be had).
    wait_until(lambda: [env["state"] for env in environments(pyrie)] == ["idle"], what="blue's environment idle")
    green = as_tenant(pyrie, "green").json()  # blue's idle environment was retired to make room
    assert green["tenant"] == "green" and green["pid"] != blue["pid"]
    left = wait_until(lambda: len(environments(pyrie)) == 1 and environments(pyrie), what="blue's environment to go")
    assert [env["tenant"] for env in left] == ["green"]


def test_a_new_tenant_is_throttled_at_once_when_no_environment_is_idle(start_pyrie: StartPyrie) -> None:
    pyrie = isolated(start_pyrie, "--max-concurrency", "1")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        busy = pool.submit(as_tenant, pyrie, "blue", {"seconds": 1})
        wait_until(lambda: any(env["invokesInFlight"] for env in environments(pyrie)), what="blue to be busy")
        throttled = as_tenant(pyrie, "green")
        assert throttled.status_code == 429
        assert throttled.headers["X-Amzn-ErrorType"] == "TooManyRequestsException"
        assert busy.result().json()["tenant"] == "blue"


def test_boto3_tenant_id_reaches_the_function(start_pyrie: StartPyrie) -> None:
    pyrie = isolated(start_pyrie)
    lam = boto3.client(
        "lambda",
        endpoint_url=pyrie.url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )
    result = lam.invoke(FunctionName="function", Payload=b"{}", TenantId="blue")
    assert json.loads(result["Payload"].read())["tenant"] == "blue"
    try:
        lam.invoke(FunctionName="function", Payload=b"{}")
    except lam.exceptions.InvalidParameterValueException as refused:
        assert refused.response["Error"]["Message"] == TENANT_REQUIRED
    else:
        raise AssertionError("an invoke without a tenant was accepted")


def test_without_isolation_the_tenant_id_is_passed_on_and_environments_are_shared(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(*RIC, cwd=FUNCTIONS)
    blue = as_tenant(pyrie, "blue").json()
    green = as_tenant(pyrie, "green").json()
    assert (blue["tenant"], green["tenant"]) == ("blue", "green")
    assert blue["pid"] == green["pid"]
    assert pyrie.invoke(b"{}").json()["tenant"] is None


def test_a_queued_event_of_another_tenant_gets_its_own_environment(start_pyrie: StartPyrie) -> None:
    pyrie = isolated(start_pyrie, "--max-concurrency", "1")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        busy = pool.submit(as_tenant, pyrie, "blue", {"seconds": 1})
        wait_until(lambda: any(env["invokesInFlight"] for env in environments(pyrie)), what="blue to be busy")
        queued = as_tenant(pyrie, "green", {"say": True}, **{"X-Amz-Invocation-Type": "Event"})
        assert queued.status_code == 202
        blue = busy.result().json()
    # once blue's environment is idle, it is retired to make room: green's event never runs in it
    line = wait_until(lambda: next((x for x in pyrie.stdout_lines() if x.startswith("RAN ")), None), what="the event")
    green = json.loads(line.removeprefix("RAN "))
    assert green["tenant"] == "green" and green["pid"] != blue["pid"]
    left = wait_until(lambda: len(environments(pyrie)) == 1 and environments(pyrie), what="blue's environment to go")
    assert [env["tenant"] for env in left] == ["green"]
