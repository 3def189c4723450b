"""GET /healthz: the supervisor's answer with each environment's state, and a fast 503 when it cannot be reached."""

from __future__ import annotations

import functools
import os
import sys
import threading
import time

import requests

from tests.conftest import StartFrontEnd, StartPyrie
from tests.cpu_wait import RunQueue, assert_on_time
from tests.harness import RAW_RUNTIME, free_port, wait_until


def healthz(url: str) -> requests.Response:
    return requests.get(f"{url}/healthz", timeout=10)


def test_healthz_before_any_invoke_starts_nothing(start_pyrie: StartPyrie):
    pyrie = start_pyrie(
        "--max-concurrency", "3", sys.executable, RAW_RUNTIME, extra_env={"AWS_LAMBDA_FUNCTION_NAME": "orders"}
    )
    for _ in range(5):
        response = healthz(pyrie.url)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json"
        assert response.json() == {
            "status": "ok",
            "function": "orders",
            "version": "$LATEST",
            "maxConcurrency": 3,
            "environments": [],
        }
    assert "START RequestId" not in pyrie.stdout()
    assert not [p for p in pyrie.descendants() if RAW_RUNTIME in " ".join(p.cmdline())]


def test_healthz_shows_each_environment_and_its_state(start_pyrie: StartPyrie):
    pyrie = start_pyrie(sys.executable, RAW_RUNTIME, extra_env={"RAW_SCENARIO": "stream"})
    done = threading.Event()

    def invoke() -> None:
        try:
            assert pyrie.invoke(b"{}").content == b"a\nb\nc\n"
        finally:
            done.set()

    reader = threading.Thread(target=invoke)
    reader.start()
    pyrie.wait_for_output("START RequestId")
    during = healthz(pyrie.url).json()["environments"]
    reader.join(10)
    assert done.is_set()
    assert len(during) == 1
    assert during[0]["name"] == "environment-1"
    assert during[0]["state"] == "invoking"
    assert during[0]["runtimeState"] in ("Running", "InvocationResponse")
    assert during[0]["invokesInFlight"] == 1
    after = wait_until(
        lambda: (envs := healthz(pyrie.url).json()["environments"]) and envs[0]["state"] == "idle" and envs,
        what="the environment to be idle",
    )
    assert after == [{"name": "environment-1", "state": "idle", "runtimeState": "Ready", "invokesInFlight": 0}]


def test_invokes_and_health_checks_share_connections(start_pyrie: StartPyrie):
    pyrie = start_pyrie(sys.executable, RAW_RUNTIME, extra_env={"RAW_SCENARIO": "echo"})
    for n in range(3):  # a single worker: its pooled supervisor connections carry both kinds of request
        assert pyrie.invoke(f'{{"n": {n}}}').json() == {"n": n}
        assert pyrie.session.get(f"{pyrie.url}/healthz", timeout=10).status_code == 200


def test_healthz_is_get_only(start_pyrie: StartPyrie):
    pyrie = start_pyrie(sys.executable, RAW_RUNTIME)
    assert requests.post(f"{pyrie.url}/healthz", timeout=10).status_code == 404


def assert_service_exception(response: requests.Response) -> None:
    assert response.status_code == 503
    assert response.headers["X-Amzn-ErrorType"] == "ServiceException"
    body = response.json()
    assert body["Type"] == "Service"
    assert "supervisor is unavailable" in body["Message"]


def test_healthz_and_invokes_answer_503_at_once_when_the_supervisor_is_unreachable(
    start_frontend: StartFrontEnd, tmp_path
):
    dead_ends = [
        {"PYRIE_SUPERVISOR_SOCKET": str(tmp_path / "no-such.sock")},
        {"PYRIE_SUPERVISOR_ADDRESS": f"127.0.0.1:{free_port()}", "PYRIE_SUPERVISOR_TOKEN": "t" * 20},
        {},  # nothing says where the supervisor is
    ]
    for env in dead_ends:
        frontend = start_frontend(env)
        for request in (functools.partial(healthz, frontend.url), frontend.invoke):
            with RunQueue(os.getpid(), tree=frontend.process.pid) as queue:
                started = time.time()
                response = request()
                took = time.time() - started
            assert_on_time(f"the answer ({env})", took, 1.0, queue.waited(started, started + took))
            assert_service_exception(response)
