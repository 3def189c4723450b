"""Slow and stalled peers (issue 9, items 1, 3, 4 and 10): a client that stops reading, a stdout nobody reads, a
runtime or extension slow to come back, and a flood of Event invokes. pyrie's loop never waits on any of them:
deadlines are met within 100 ms, everyone else is served, shutdown stays bounded, and memory stays bounded."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import requests

from supervisor.frontend.pipe_connection import STALL_S
from tests.conftest import StartPyrie
from tests.harness import INVOKE_PATH, Pyrie, wait_until
from tests.peers import (
    LineClock,
    StalledClient,
    announced,
    platform_lines,
    report_duration_ms,
    timeout_line_epoch,
    wait_gone,
)

FUNCTIONS = Path(__file__).parent / "functions"
# What a fault may take to be acted on: a deadline is met within this.
ON_TIME_S = 0.1


def event(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def start(start_pyrie: StartPyrie, tmp_path: Path, *args: str, timeout_s: int = 3, **env: str) -> Pyrie:
    """pyrie serving the hardening function; its runtimes note when they are sent SIGTERM (``signalled``)."""
    (tmp_path / "signals").mkdir(exist_ok=True)
    return start_pyrie(
        *args,
        "hardening.handler",
        cwd=FUNCTIONS,
        extra_env={
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout_s),
            "HARDENING_SIGNALS": str(tmp_path / "signals"),
            **env,
        },
    )


def signalled(tmp_path: Path, pid: int) -> float:
    """When pyrie sent the runtime ``pid`` SIGTERM (epoch seconds), as the runtime noted it."""
    path = tmp_path / "signals" / f"{pid}.term"
    wait_until(path.exists, 5, what=f"runtime {pid} to note its SIGTERM")
    return float(path.read_text())


class OtherClient:
    """Another client, invoking ``hello`` every ``PACE_S`` on its own keep-alive connection until stopped; records
    each answer and how long it took."""

    PACE_S = 0.05

    def __init__(self, pyrie: Pyrie) -> None:
        self._url = pyrie.url + INVOKE_PATH
        self.answers: list[tuple[int, Any, float]] = []  # status, body, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with requests.Session() as session:
            n = 0
            while not self._stop.is_set():
                began = time.monotonic()
                try:
                    response = session.post(self._url, data=event(kind="hello", n=n), timeout=30)
                except requests.RequestException as exc:
                    self.answers.append((-1, repr(exc), time.monotonic() - began))
                    return
                self.answers.append((response.status_code, response.json(), time.monotonic() - began))
                n += 1
                self._stop.wait(self.PACE_S)

    def stop(self) -> list[tuple[int, Any, float]]:
        self._stop.set()
        self._thread.join(35)
        return self.answers


# --- item 1: a client that stops reading -----------------------------------------------------------------------


def test_a_stalled_client_holds_up_neither_its_timeout_nor_anyone_else(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    pyrie = start(start_pyrie, tmp_path)
    clock = LineClock(pyrie)
    with StalledClient(pyrie.port, event(kind="forever")) as stalled:
        [forever] = announced(pyrie, "FOREVER")
        runtime = psutil.Process(forever["pid"])
        request_id, deadline = forever["id"], forever["deadline_ms"] / 1000
        other = OtherClient(pyrie)
        gone = wait_gone(runtime, timeout=10)
        # the runtime is ended within 100 ms of its deadline (and, as it exits at once on SIGTERM, gone)
        ended = signalled(tmp_path, runtime.pid)
        assert 0 <= ended - deadline < ON_TIME_S, f"SIGTERM {ended - deadline:+.3f} s from its deadline"
        assert gone - ended < ON_TIME_S, f"gone {gone - ended:.3f} s after its SIGTERM"
        print(f"deadline -> SIGTERM {ended - deadline:.3f} s, -> gone {gone - deadline:.3f} s")
        # Lambda's timeout line and REPORT, on time, and REPORT's Duration is the true time
        timed_out = clock.first_seen("20")  # the timeout line starts with its timestamp
        reported = clock.first_seen(f"REPORT RequestId: {request_id}")
        lines = platform_lines(pyrie, request_id)
        assert lines["TIMEOUT"].endswith("Task timed out after 3.00 seconds")
        assert 0 <= timeout_line_epoch(lines["TIMEOUT"]) - deadline < ON_TIME_S, lines["TIMEOUT"]
        assert timed_out - deadline < ON_TIME_S + 0.02, f"timeout line seen {timed_out - deadline:+.3f} s late"
        assert reported - deadline < ON_TIME_S + 0.02, f"REPORT seen {reported - deadline:+.3f} s late"
        print(f"timeout line seen {timed_out - deadline:.3f} s, REPORT {reported - deadline:.3f} s after the deadline")
        assert 3000 <= report_duration_ms(lines["REPORT"]) < 3000 + ON_TIME_S * 1000, lines["REPORT"]
        # the stalled client's worker connection is cut STALL_S after the invoke ended, once
        pyrie.wait_for_stderr("front-end connection cut", timeout=STALL_S + 2)
        cut = time.time()
        assert cut - deadline < STALL_S + 0.5, f"cut {cut - deadline:.2f} s after the deadline"
        print(f"cut {cut - deadline:.3f} s after the deadline")
        assert pyrie.stderr().count("front-end connection cut") == 1
        # meanwhile another client was served, invoke after invoke, by another environment
        answers = other.stop()
        assert len(answers) >= 3, answers
        for n, (status, body, seconds) in enumerate(answers):
            assert status == 200 and body["hello"] == n and body["pid"] != forever["pid"], body
            assert seconds < 5, answers
        # the stalled client finally reads: a streamed head, and a body cut short, closed
        received = stalled.read_to_end(timeout=10)
    clock.stop()
    assert received.how in ("eof", "reset"), received.how
    assert received.head.startswith(b"HTTP/1.1 200"), received.head
    assert b"Lambda-Runtime-Function-Response-Mode: streaming" in received.head
    assert not received.complete
    assert pyrie.invoke(event(kind="hello", n=0)).json()["hello"] == 0


def test_a_crash_with_a_stalled_client_is_acted_on_at_once(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    pyrie = start(start_pyrie, tmp_path, timeout_s=30)
    clock = LineClock(pyrie)
    with StalledClient(pyrie.port, event(kind="forever")) as stalled:
        [forever] = announced(pyrie, "FOREVER")
        time.sleep(1)  # the stream fills every buffer on its way and waits for the client
        killed = time.time()
        os.kill(forever["pid"], signal.SIGKILL)
        ended = clock.first_seen(f"END RequestId: {forever['id']}")
        reported = clock.first_seen(f"REPORT RequestId: {forever['id']}")
        assert ended - killed < ON_TIME_S, f"END {ended - killed:.3f} s after the kill"
        assert reported - killed < ON_TIME_S, f"REPORT {reported - killed:.3f} s after the kill"
        print(f"END {ended - killed:.3f} s after the kill")
        assert "environment-1: runtime exited (signal: killed)" in pyrie.stderr()
        assert pyrie.invoke(event(kind="hello", n=1), timeout=10).json()["hello"] == 1
        received = stalled.read_to_end(timeout=10)
    clock.stop()
    assert received.how in ("eof", "reset") and received.head.startswith(b"HTTP/1.1 200"), received.head
    assert not received.complete


def test_a_runtime_streaming_into_nothing_keeps_no_deadline_waiting(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    """A runtime streaming as fast as it can to a client that went away (its output is dropped) never holds up the
    loop: another invoke's timeout is still met, and so is its own. (One stream: more would measure how two cores
    share five busy processes.)"""
    pyrie = start(start_pyrie, tmp_path)
    with StalledClient(pyrie.port, event(kind="forever")) as client:
        client.sock.recv(1)  # the response has begun; then the client goes away
    streams = announced(pyrie, "FOREVER")
    with StalledClient(pyrie.port, event(kind="sleep", seconds=10)):
        [sleeping] = announced(pyrie, "SLEEP")
        ended = signalled(tmp_path, sleeping["pid"])
    late = {"sleep": ended - sleeping["deadline_ms"] / 1000}
    for n, stream in enumerate(streams):
        late[f"stream {n}"] = signalled(tmp_path, stream["pid"]) - stream["deadline_ms"] / 1000
    assert all(0 <= seconds < ON_TIME_S for seconds in late.values()), late
