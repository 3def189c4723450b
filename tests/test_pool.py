"""The pool of execution environments: concurrency, throttling, Event invokes, memory, processes, reload."""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import requests

from tests.conftest import StartPyrie
from tests.cpu_wait import assert_on_time
from tests.harness import INVOKE_PATH, Pyrie, wait_until

FUNCTIONS = Path(__file__).parent / "functions"
RAW_RUNTIME = str(Path(__file__).parent / "runtimes" / "raw_runtime.py")


def invoke_json(pyrie: Pyrie, handler_event: dict[str, object], **headers: str) -> requests.Response:
    return requests.post(pyrie.url + INVOKE_PATH, data=json.dumps(handler_event), headers=headers, timeout=30)


def runtimes(pyrie: Pyrie) -> list[psutil.Process]:
    """The runtime processes pyrie runs now (an exited one may show as a zombie for a moment: not counted)."""
    found = []
    for process in pyrie.descendants():
        try:
            if "runtime_client" in " ".join(process.cmdline()):
                found.append(process)
        except psutil.Error:
            continue
    return found


def test_concurrent_invokes_get_their_own_environments(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("pool.whoami", cwd=FUNCTIONS, runtime_api_ports=8)
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: invoke_json(pyrie, {"sleep": 1}), range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    results = [r.json() for r in responses]
    assert len({r["pid"] for r in results}) == 8  # eight runtimes
    ports = sorted(int(r["runtime_api"].rpartition(":")[2]) for r in results)
    assert len(set(ports)) == 8  # each with its own Runtime API
    assert ports[0] == pyrie.runtime_api_port  # the first takes the configured address
    # side by side, not one after the other: at the moment the last one started, most others were still running
    last_start = max(r["ran"][0] for r in results)
    assert sum(began <= last_start <= ended for began, ended in (r["ran"] for r in results)) >= 4
    reports = pyrie.wait_for_lines("REPORT", 8)
    assert sum("Init Duration" in line for line in reports) == 8  # each cold start reports its own init


def test_serial_invokes_reuse_one_warm_environment(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("pool.whoami", cwd=FUNCTIONS)
    pids = set()
    for _ in range(20):
        pids.add(invoke_json(pyrie, {}).json()["pid"])
        pyrie.wait_idle()  # back in /next (a loaded machine may keep it longer than pyrie waits for it)
    assert len(pids) == 1
    reports = pyrie.wait_for_lines("REPORT", 20)
    assert sum("Init Duration" in line for line in reports) == 1


def test_beyond_max_concurrency_is_throttled(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("--max-concurrency", "2", "pool.whoami", cwd=FUNCTIONS)
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(invoke_json, pyrie, {"sleep": 1}) for _ in range(2)]
        pyrie.wait_for_lines("START", 2)
        throttled = invoke_json(pyrie, {})
        assert [f.result().status_code for f in futures] == [200, 200]
    assert throttled.status_code == 429
    assert throttled.headers["X-Amzn-ErrorType"] == "TooManyRequestsException"
    assert throttled.json()["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert throttled.headers["Retry-After"] == "1"


def test_event_invoke_is_acknowledged_at_once_and_runs_later(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("pool.shout", cwd=FUNCTIONS)
    with pyrie.run_queue() as queue:
        started = time.time()
        response = invoke_json(pyrie, {"tag": "async-1", "sleep": 1}, **{"X-Amz-Invocation-Type": "Event"})
        took = time.time() - started
    assert_on_time("the answer", took, 0.9, queue.waited(started, started + took))  # not after the 1 s handler
    assert response.status_code == 202
    assert response.content == b""
    request_id = response.headers["X-Amzn-RequestId"]
    pyrie.wait_for_output(f"END RequestId: {request_id}")
    lines = pyrie.stdout_lines()
    assert lines.index(f"START RequestId: {request_id} Version: $LATEST") < lines.index("event ran: async-1")


def test_event_invokes_queue_in_order_and_a_full_queue_throttles(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("--max-concurrency", "1", "--max-queued-events", "2", "pool.shout", cwd=FUNCTIONS)
    event = {"X-Amz-Invocation-Type": "Event"}
    codes = [invoke_json(pyrie, {"tag": f"e{n}", "sleep": 0.3}, **event).status_code for n in range(4)]
    # e0 runs at once, e1 and e2 wait, e3 finds the queue full
    assert codes == [202, 202, 202, 429]
    pyrie.wait_for_lines("END", 3)
    ran = [line for line in pyrie.stdout_lines() if line.startswith("event ran:")]
    assert ran == ["event ran: e0", "event ran: e1", "event ran: e2"]


def test_failed_event_invoke_is_logged(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("pool.shout", cwd=FUNCTIONS)
    response = invoke_json(pyrie, {"tag": "bad", "fail": True}, **{"X-Amz-Invocation-Type": "Event"})
    assert response.status_code == 202
    request_id = response.headers["X-Amzn-RequestId"]
    wait_until(lambda: f"Event invoke {request_id} failed: RuntimeError" in pyrie.stderr(), what="the failure log")


def test_event_payload_limit_is_1_mb(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("pool.shout", cwd=FUNCTIONS)
    response = pyrie.invoke(b"x" * 1_048_577, headers={"X-Amz-Invocation-Type": "Event"})
    assert response.status_code == 413
    assert response.json()["message"] == (
        "1048577 byte payload is too large for the Event invocation type (limit 1048576 bytes)"
    )


def test_out_of_memory_kills_the_environment(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("pool.allocate", cwd=FUNCTIONS, extra_env={"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"})
    response = invoke_json(pyrie, {"mb": 300, "hold": 2})
    assert response.status_code == 200
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    request_id = response.headers["X-Amzn-RequestId"]
    assert response.json() == {
        "errorType": "Runtime.OutOfMemory",
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: signal: killed",
    }
    report = next(line for line in pyrie.wait_for_lines("REPORT", 1) if request_id in line)
    assert int(re.search(r"Max Memory Used: (\d+) MB", report)[1]) > 128  # type: ignore[index]
    # the next invoke gets a fresh environment, within the limit
    again = invoke_json(pyrie, {"mb": 10, "hold": 0})
    assert again.status_code == 200
    assert "Init Duration" in pyrie.wait_for_lines("REPORT", 2)[1]


def test_out_of_memory_after_the_answer_hands_the_invoke_waiting_behind_it_back(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(
        sys.executable,
        RAW_RUNTIME,
        "--max-concurrency",
        "1",
        extra_env={"RAW_SCENARIO": "allocate_after_response", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"},
    )
    first = invoke_json(pyrie, {"mb": 300, "delay": 0.5})
    assert first.status_code == 200 and "X-Amz-Function-Error" not in first.headers
    # sent at once, it waits for the runtime's next /next, which never comes: the runtime runs out of memory first
    second = invoke_json(pyrie, {})
    assert second.status_code == 200 and "X-Amz-Function-Error" not in second.headers, second.text
    assert second.json()["pid"] != first.json()["pid"]  # it ran, in a new environment
    starts = [line for line in pyrie.stdout_lines() if line.startswith("START")]
    assert [second.headers["X-Amzn-RequestId"] in line for line in starts] == [False, True]  # one START each


def test_out_of_memory_during_init_fails_the_init(start_pyrie: StartPyrie) -> None:
    env = {"RAW_SCENARIO": "allocate_in_init", "RAW_MB": "300", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"}
    pyrie = start_pyrie(sys.executable, RAW_RUNTIME, extra_env={**env, "AWS_LAMBDA_LOG_FORMAT": "JSON"})
    response = invoke_json(pyrie, {})
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    assert response.json()["errorType"] == "Runtime.OutOfMemory"
    pyrie.wait_for_output('"type":"platform.report"')
    records = {
        record["type"]: record["record"]
        for record in map(json.loads, (line for line in pyrie.stdout_lines() if line.startswith('{"time":')))
    }
    for init in ("platform.initRuntimeDone", "platform.initReport"):
        assert (records[init]["status"], records[init]["errorType"]) == ("failure", "Runtime.OutOfMemory"), init


def test_max_memory_used_is_the_real_peak(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("pool.allocate", cwd=FUNCTIONS)
    response = invoke_json(pyrie, {"mb": 80, "hold": 0.3})
    assert response.status_code == 200
    report = pyrie.wait_for_lines("REPORT", 1)[0]
    used = int(re.search(r"Max Memory Used: (\d+) MB", report)[1])  # type: ignore[index]
    assert 80 < used < 300, report


def test_a_child_left_behind_dies_with_its_environment(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("--idle-timeout", "1", "pool.leave_child_behind", cwd=FUNCTIONS)
    child = psutil.Process(invoke_json(pyrie, {}).json()["child"])
    assert child.is_running()
    # the idle environment is retired after 1 s: its runtime and the child it left behind go with it
    wait_until(lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, 10, what="the child to die")
    wait_until(lambda: not psutil.pid_exists(child.pid), 5, what="the child to be reaped")
    assert runtimes(pyrie) == []


def test_client_gone_mid_stream_the_invoke_finishes_and_the_environment_is_reused(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("pool.slow_stream", cwd=FUNCTIONS)
    with socket.create_connection(("127.0.0.1", pyrie.port), timeout=10) as sock:
        sock.sendall(f"POST {INVOKE_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{{}}".encode())
        assert b"chunk 0" in sock.recv(65536) or b"chunk 0" in sock.recv(65536)
    pyrie.wait_for_output("stream finished")  # the handler ran to its end, its output going nowhere
    pyrie.wait_for_lines("REPORT", 1)
    pyrie.wait_idle()
    response = pyrie.invoke(b'{"count": 1, "interval": 0}')
    assert response.content == b"chunk 0\n"
    reports = pyrie.wait_for_lines("REPORT", 2)
    assert "Init Duration" not in reports[1]  # the same warm environment took it
    assert len(runtimes(pyrie)) == 1


def test_init_eagerly_prewarms(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("--init-eagerly", "--min-environments", "2", "pool.whoami", cwd=FUNCTIONS)
    wait_until(lambda: len(runtimes(pyrie)) == 2, what="two warm runtimes")
    wait_until(lambda: pyrie.stderr().count("initialised in") == 2, what="both inits")
    assert invoke_json(pyrie, {}).status_code == 200
    assert "Init Duration" not in pyrie.wait_for_lines("REPORT", 1)[0]  # no cold start


def test_idle_environments_are_retired(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie("--idle-timeout", "1", "pool.whoami", cwd=FUNCTIONS)
    first = invoke_json(pyrie, {}).json()["pid"]
    wait_until(lambda: runtimes(pyrie) == [], 10, what="the idle runtime to be retired")
    second = invoke_json(pyrie, {}).json()["pid"]
    assert second != first
    assert "Init Duration" in pyrie.wait_for_lines("REPORT", 2)[1]


def test_init_eagerly_backs_off_while_environments_cannot_start(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    bootstrap = tmp_path / "bootstrap"
    bootstrap.write_text("#!/no/such/interpreter\n")
    bootstrap.chmod(0o755)
    pyrie = start_pyrie(str(bootstrap), "--init-eagerly", "--log-level", "debug", cwd=tmp_path)
    time.sleep(3)
    # each start fails at once (its exec): the next waits 0.1 s, then twice as long each time, not a busy loop
    failed = pyrie.stderr().count("reset (init failed: Runtime.InvalidEntrypoint)")
    assert 2 <= failed <= 10, failed
    assert pyrie.stderr().count("failed to initialise: environments kept warm") == 1  # said once
    answer = invoke_json(pyrie, {})  # an invoke still starts its own environment at once, and hears why it failed
    assert answer.headers["X-Amz-Function-Error"] == "Unhandled"
    assert answer.json()["errorType"] == "Runtime.InvalidEntrypoint"
    # once the bootstrap can start, an environment is kept warm again
    fixed = tmp_path / "bootstrap.new"
    fixed.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{RAW_RUNTIME}"\n')
    fixed.chmod(0o755)
    fixed.rename(bootstrap)

    def idle() -> bool:
        states = [env["state"] for env in requests.get(f"{pyrie.url}/healthz", timeout=5).json()["environments"]]
        return "idle" in states

    wait_until(idle, 10, what="an environment kept warm")


def test_watch_reloads_code_without_restarting(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    module = tmp_path / "reloadable.py"
    module.write_text('VERSION = "v1"\n\ndef handler(event, context):\n    return VERSION\n')
    pyrie = start_pyrie("--watch", "reloadable.handler", cwd=tmp_path)
    assert pyrie.invoke(b"{}").json() == "v1"
    supervisor_pid = pyrie.process.pid
    module.write_text('VERSION = "v2"\n\ndef handler(event, context):\n    return VERSION\n')
    os.utime(module, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))  # a visibly newer mtime
    wait_until(lambda: pyrie.invoke(b"{}").json() == "v2", 10, interval=0.2, what="the new code")
    assert pyrie.process.pid == supervisor_pid and pyrie.process.poll() is None


def test_watch_reaches_the_new_code_under_steady_traffic(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    """A Managed Instances environment kept busy never becomes idle: it must still stop taking invokes once the code
    has changed, so that the new code runs."""
    module = tmp_path / "reloadable.py"
    source = 'import time\n\nVERSION = "{}"\n\ndef handler(event, context):\n    time.sleep(0.2)\n    return VERSION\n'
    module.write_text(source.format("v1"))
    pyrie = start_pyrie(
        sys.executable,
        "-m",
        "awslambdaric",
        "reloadable.handler",
        "--watch",
        cwd=tmp_path,
        extra_env={"AWS_LAMBDA_MAX_CONCURRENCY": "4"},
    )
    answers: list[str] = []
    stop = threading.Event()

    def caller(delay: float) -> None:  # one invoke after another: with three of them, some are always in flight
        time.sleep(delay)
        session = requests.Session()
        while not stop.is_set():
            answers.append(session.post(pyrie.url + INVOKE_PATH, data=b"{}", timeout=30).json())

    callers = [threading.Thread(target=caller, args=(n * 0.07,)) for n in range(3)]
    for thread in callers:
        thread.start()
    try:
        wait_until(lambda: "v1" in answers, what="the first code")
        module.write_text(source.format("v2"))
        os.utime(module, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))  # a visibly newer mtime
        wait_until(lambda: "v2" in answers, 10, what="the new code, while the old environment stays busy")
    finally:
        stop.set()
        for thread in callers:
            thread.join()
