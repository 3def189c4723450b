"""Lambda Managed Instances: AWS_LAMBDA_MAX_CONCURRENCY=N, one environment takes up to N invokes at once.

Driven with the real runtimes in their multi-concurrent modes: awslambdaric 4 forks N worker processes that each poll
``/next``; aws-lambda-ric 4 runs the invokes of one process concurrently. Each caller gets its own answer; a timeout
or a dead worker fails only its own invoke; the environment goes on.
"""

from __future__ import annotations

import concurrent.futures
import json
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from tests.conftest import StartPyrie
from tests.cpu_wait import MachineWait, assert_on_time, one_by_one
from tests.harness import INVOKE_PATH, Pyrie, environments, wait_until
from tests.streaming import stream_invoke
from tests.test_extensions import extensions_dir

FUNCTIONS = Path(__file__).parent / "functions"
NODE_FUNCTIONS = FUNCTIONS / "node-managed"
NODE_RIC = Path(__file__).parent / "node" / "node_modules" / ".bin" / "aws-lambda-ric"


def managed(start_pyrie: StartPyrie, handler: str, *flags: str, concurrency: int = 4, **env: str) -> Pyrie:
    return start_pyrie(
        sys.executable,
        "-m",
        "awslambdaric",
        f"managed.{handler}",
        *flags,
        cwd=FUNCTIONS,
        extra_env={"AWS_LAMBDA_MAX_CONCURRENCY": str(concurrency), **env},
    )


def node_managed(start_pyrie: StartPyrie, handler: str, concurrency: int = 4) -> Pyrie:
    assert NODE_RIC.exists(), "the Node runtime client is missing: run `make node` (make test does)"
    return start_pyrie(
        str(NODE_RIC),
        f"index.{handler}",
        cwd=NODE_FUNCTIONS,
        extra_env={"AWS_LAMBDA_MAX_CONCURRENCY": str(concurrency), "LAMBDA_TASK_ROOT": str(NODE_FUNCTIONS)},
    )


def invoke_all(pyrie: Pyrie, events: list[dict[str, Any]]) -> list[requests.Response]:
    """Invoke once per event, all at once; the answers in the events' order."""
    with concurrent.futures.ThreadPoolExecutor(len(events)) as pool:
        return list(pool.map(lambda event: pyrie.invoke(json.dumps(event)), events))


def overlapped(bodies: list[dict[str, Any]]) -> bool:
    """Whether the invokes ran at the same time: each started before any of them ended."""
    return max(body["started"] for body in bodies) < min(body["ended"] for body in bodies)


def test_four_overlapping_invokes_run_at_once_in_one_runtime(start_pyrie: StartPyrie) -> None:
    pyrie = managed(start_pyrie, "work")
    assert pyrie.invoke(json.dumps({"seconds": 0})).status_code == 200  # init done: the workers wait in /next
    answers = invoke_all(pyrie, [{"n": n, "seconds": 0.5} for n in range(4)])
    bodies = [answer.json() for answer in answers]
    assert overlapped(bodies), bodies
    assert [body["n"] for body in bodies] == [0, 1, 2, 3]  # each caller its own answer
    assert all(
        body["requestId"] == answer.headers["X-Amzn-RequestId"] for body, answer in zip(bodies, answers, strict=True)
    )
    assert len({body["pid"] for body in bodies}) == 4  # four worker processes ...
    assert len({body["ppid"] for body in bodies}) == 1  # ... of one runtime
    assert len(environments(pyrie)) == 1
    for answer in answers:  # START, END and REPORT for each invoke, each line whole
        request_id = answer.headers["X-Amzn-RequestId"]
        pyrie.wait_for_output(f"REPORT RequestId: {request_id}")
        lines = pyrie.stdout_lines()
        assert f"START RequestId: {request_id} Version: $LATEST" in lines
        assert f"END RequestId: {request_id}" in lines


def test_the_runtime_is_told_it_runs_on_managed_instances(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(
        sys.executable,
        "-m",
        "awslambdaric",
        "handlers.environment",
        cwd=FUNCTIONS,
        extra_env={"AWS_LAMBDA_MAX_CONCURRENCY": "2"},
    )
    env = pyrie.invoke("{}").json()
    assert env["AWS_LAMBDA_MAX_CONCURRENCY"] == "2"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "lambda-managed-instances"


def test_a_timeout_fails_only_its_own_invoke(start_pyrie: StartPyrie) -> None:
    pyrie = managed(start_pyrie, "work", AWS_LAMBDA_FUNCTION_TIMEOUT="1")
    assert pyrie.invoke(json.dumps({"seconds": 0})).status_code == 200
    main = {body["ppid"] for body in [pyrie.invoke(json.dumps({"seconds": 0})).json()]}
    answers = invoke_all(pyrie, [{"n": 0, "seconds": 3}, {"n": 1, "seconds": 0.3}, {"n": 2, "seconds": 0.5}])
    slow, *others = answers
    assert slow.headers["X-Amz-Function-Error"] == "Unhandled"
    assert slow.json()["errorType"] == "Sandbox.Timedout"
    assert [answer.json()["n"] for answer in others] == [1, 2]
    # the environment was not ended: the same runtime answers the next invokes
    after = invoke_all(pyrie, [{"n": n, "seconds": 0.1} for n in range(3)])
    assert {answer.json()["ppid"] for answer in after} == main
    assert len(environments(pyrie)) == 1
    assert "Task timed out after 1.00 seconds" in pyrie.stdout()


def test_a_worker_that_dies_fails_only_its_own_invoke(start_pyrie: StartPyrie) -> None:
    pyrie = managed(start_pyrie, "crash")
    assert pyrie.invoke(json.dumps({"seconds": 0})).status_code == 200
    answers = invoke_all(
        pyrie,
        [{"n": 0, "seconds": 0.3, "crash": True}, {"n": 1, "seconds": 0.6}, {"n": 2, "seconds": 0.6}],
    )
    dead, *others = answers
    assert dead.headers["X-Amz-Function-Error"] == "Unhandled"
    body = dead.json()
    assert body["errorType"] == "Runtime.ExitError"
    # its status, when the kernel still has it ("exit status 3"); else that it exited
    assert body["errorMessage"].startswith(f"RequestId: {dead.headers['X-Amzn-RequestId']} Error: Runtime exited ")
    assert [answer.json()["n"] for answer in others] == [1, 2]
    # the environment goes on with its other workers
    assert pyrie.invoke(json.dumps({"n": 9, "seconds": 0})).json()["n"] == 9
    assert len(environments(pyrie)) == 1


def test_invokes_beyond_every_worker_are_throttled_at_once(start_pyrie: StartPyrie) -> None:
    pyrie = managed(start_pyrie, "work", "--max-concurrency", "1", concurrency=2)
    assert pyrie.invoke(json.dumps({"seconds": 0})).status_code == 200
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        busy = [pool.submit(pyrie.invoke, json.dumps({"n": n, "seconds": 1})) for n in range(2)]
        wait_until(lambda: environments(pyrie)[0]["invokesInFlight"] == 2, what="both workers to be busy")
        throttled = pyrie.invoke(json.dumps({"n": 3}))
        assert not any(future.done() for future in busy)  # refused while both still ran: not queued behind them
        assert throttled.status_code == 429
        assert throttled.headers["X-Amzn-ErrorType"] == "TooManyRequestsException"
        assert [future.result().json()["n"] for future in busy] == [0, 1]


def test_event_invokes_wait_for_a_free_worker(start_pyrie: StartPyrie) -> None:
    pyrie = managed(start_pyrie, "work", "--max-concurrency", "1", concurrency=2)
    for n in range(4):
        answer = pyrie.invoke(json.dumps({"n": n, "seconds": 0.3}), headers={"X-Amz-Invocation-Type": "Event"})
        assert answer.status_code == 202
    pyrie.wait_for_lines("REPORT RequestId", 4, timeout=20)


def test_a_runtime_that_exits_is_replaced_and_pyrie_goes_on(start_pyrie: StartPyrie) -> None:
    pyrie = managed(start_pyrie, "work", concurrency=2)
    first = pyrie.invoke(json.dumps({"seconds": 0})).json()
    psutil.Process(first["ppid"]).kill()  # the runtime's main process: its workers are orphaned
    wait_until(lambda: "runtime exited" in pyrie.stderr(), what="the runtime's exit to be seen")
    second = wait_until(
        lambda: (
            (answer := pyrie.invoke(json.dumps({"seconds": 0}))).status_code == 200
            and "ppid" in answer.json()
            and answer.json()
        ),
        what="a new environment to answer",
    )
    assert second["ppid"] != first["ppid"]


def test_managed_instances_extensions_may_take_shutdown_only(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    # As Lambda Managed Instances (and the Go emulator's LMI mode): no INVOKE events; SHUTDOWN still comes.
    (tmp_path / "refused").mkdir()
    (tmp_path / "accepted").mkdir()
    refused = managed(
        start_pyrie,
        "work",
        "--extensions-dir",
        str(extensions_dir(tmp_path / "refused", "probe")),
        concurrency=2,
        PROBE_PLAN=json.dumps({"probe": {"events": ["INVOKE", "SHUTDOWN"]}}),
    )
    assert refused.invoke(json.dumps({"seconds": 0})).headers["X-Amz-Function-Error"] == "Unhandled"
    assert "INVOKE: ErrorInvalidEventType" in refused.stdout()
    accepted = managed(
        start_pyrie,
        "work",
        "--extensions-dir",
        str(extensions_dir(tmp_path / "accepted", "probe")),
        concurrency=2,
        PROBE_PLAN=json.dumps({"probe": {"events": ["SHUTDOWN"]}}),
    )
    answers = invoke_all(accepted, [{"n": n, "seconds": 0.2} for n in range(2)])
    assert [answer.json()["n"] for answer in answers] == [0, 1]
    assert accepted.stop() == 0
    assert "probe shutting down" in accepted.stdout()


def test_an_extension_that_exits_drains_its_environment(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    pyrie = managed(
        start_pyrie,
        "work",
        "--extensions-dir",
        str(extensions_dir(tmp_path, "probe")),
        concurrency=2,
        PROBE_PLAN=json.dumps({"probe": {"events": ["SHUTDOWN"]}}),
    )
    first = pyrie.invoke(json.dumps({"seconds": 0})).json()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(pyrie.invoke, json.dumps({"n": 1, "seconds": 1}))
        wait_until(lambda: environments(pyrie)[0]["invokesInFlight"] == 1, what="the invoke to run")
        for process in psutil.Process(pyrie.process.pid).children(recursive=True):
            if "probe_extension" in " ".join(process.cmdline()):
                process.kill()
        assert running.result().json()["n"] == 1  # what ran finishes
    # the environment is replaced: another runtime answers
    later = wait_until(
        lambda: (body := pyrie.invoke(json.dumps({"seconds": 0})).json()).get("ppid") != first["ppid"] and body,
        what="a new environment",
    )
    assert later["ppid"] != first["ppid"]


@pytest.mark.node
def test_node_runs_invokes_concurrently_and_streams_among_them(start_pyrie: StartPyrie) -> None:
    pyrie = node_managed(start_pyrie, "work")
    assert pyrie.invoke(json.dumps({"seconds": 0})).status_code == 200
    answers = invoke_all(pyrie, [{"n": n, "seconds": 0.5} for n in range(4)])
    bodies = [answer.json() for answer in answers]
    assert overlapped(bodies), bodies
    assert [body["n"] for body in bodies] == [0, 1, 2, 3]
    assert len({body["pid"] for body in bodies}) == 1  # one process runs them all


@pytest.mark.node
def test_node_streams_while_other_invokes_run(start_pyrie: StartPyrie) -> None:
    pyrie = node_managed(start_pyrie, "stream")
    assert stream_invoke(pyrie.port, INVOKE_PATH, json.dumps({"count": 1}).encode()).complete  # init done
    with pyrie.run_queue() as queue, MachineWait() as machine, concurrent.futures.ThreadPoolExecutor(3) as pool:
        started = time.time()
        streams = [
            pool.submit(stream_invoke, pyrie.port, INVOKE_PATH, json.dumps({"count": 5, "interval_ms": 100}).encode())
            for _ in range(3)
        ]
        received = [future.result() for future in streams]
        took = time.time() - started
    # three 500 ms streams at once: one after another would take 1.5 s
    assert_on_time("three streams", took, 1.2, queue.waited(started, started + took))
    for each in received:  # each intact, with its own bytes
        assert each.complete
        assert each.body == b"".join(f"chunk {i}\n".encode() for i in range(5))
    # relayed write by write (aws-lambda-ric posts its streamed responses through an HTTP agent of one socket, so
    # one of several streams it writes at once may reach pyrie whole, at its end; the others arrive as written)
    assert any(one_by_one([at for at, _ in each.frames(b"\n")], 0.1, machine.waited) for each in received)
