"""Slow and stalled peers (issue 9, items 1, 3, 4 and 10): a client that stops reading, a stdout nobody reads, a
runtime or extension slow to come back, and a flood of Event invokes. pyrie's loop never waits on any of them:
deadlines are met within 100 ms (plus what pyrie's processes waited for a CPU meanwhile: ``tests.cpu_wait``), everyone
else is served, shutdown stays bounded, and memory stays bounded."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from supervisor.arbiter import FLUSH_S, FRONTEND_EXIT_S, OUTPUT_FLUSH_S, SHUTDOWN_GRACE_S
from supervisor.environment.execution_environment import KILL_GRACE_S, RUNTIME_SHUTDOWN_SHARE
from supervisor.environment.extension_set import SHUTDOWN_DEADLINE_S
from supervisor.environment.memory_guard import SAMPLE_S
from supervisor.frontend_link.pipe_connection import STALL_S
from tests.conftest import StartPyrie
from tests.cpu_wait import RunQueue, assert_on_time
from tests.harness import INVOKE_PATH, RAW_RUNTIME, Pyrie, dead, environments, wait_until
from tests.peers import (
    LineClock,
    StalledClient,
    announced,
    platform_lines,
    report_duration_ms,
    sigterm_note,
    timeout_line_epoch,
    wait_gone,
)
from tests.test_extensions import extensions_dir, start_with_extensions

FUNCTIONS = Path(__file__).parent / "functions"
# What a fault may take to be acted on: a deadline is met within this, plus what the processes involved waited for
# a CPU meanwhile (a loaded machine delays them through no fault of pyrie's).
ON_TIME_S = 0.1
# How long pyrie takes to stop after SIGTERM with no invoke able to finish: the in-flight invokes' grace, one
# environment's teardown without extensions (SIGTERM, then SIGKILL after KILL_GRACE_S), the pause for gunicorn's last
# writes and its quick stop (SIGKILL after FRONTEND_EXIT_S), plus a second for the processes to start and exit on a
# busy machine.
STOP_BOUND_S = SHUTDOWN_GRACE_S + KILL_GRACE_S + FLUSH_S + FRONTEND_EXIT_S + 1.0


def event(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def start(
    start_pyrie: StartPyrie, tmp_path: Path, *args: str, timeout_s: int = 3, paused_stdout: bool = False, **env: str
) -> Pyrie:
    """pyrie serving the hardening function; its runtimes note when they are sent SIGTERM (``signalled``)."""
    (tmp_path / "signals").mkdir(exist_ok=True)
    return start_pyrie(
        *args,
        "hardening.handler",
        cwd=FUNCTIONS,
        paused_stdout=paused_stdout,
        extra_env={
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout_s),
            "HARDENING_SIGNALS": str(tmp_path / "signals"),
            **env,
        },
    )


def signalled(tmp_path: Path, pid: int) -> tuple[float, float] | None:
    """When pyrie sent the runtime ``pid`` SIGTERM (epoch seconds), as the runtime noted it, and how long the runtime
    had waited for a CPU by then; ``None`` if it was gone without a note: its SIGKILL, ``KILL_GRACE_S`` later, came
    before its handler could run (on a loaded machine a thread may wait that long for the interpreter's lock)."""
    path = tmp_path / "signals" / f"{pid}.term"
    wait_until(lambda: path.exists() or dead(pid), 10, what=f"runtime {pid} to note its SIGTERM or be gone")
    return sigterm_note(path) if path.exists() else None


def watch(pyrie: Pyrie) -> RunQueue:
    """The supervisor's and this test process's waits for a CPU (a test thread notes when it sees things)."""
    return RunQueue(pyrie.process.pid, os.getpid())


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
    with StalledClient(pyrie.port, event(kind="forever")) as stalled, watch(pyrie) as queue:
        [forever] = announced(pyrie, "FOREVER")
        runtime = psutil.Process(forever["pid"])
        queue.watch(runtime.pid)
        request_id, deadline = forever["id"], forever["deadline_ms"] / 1000
        other = OtherClient(pyrie)
        gone = wait_gone(runtime, timeout=10)
        # the runtime is ended within 100 ms of its deadline (and, as it exits at once on SIGTERM, gone)
        note = signalled(tmp_path, runtime.pid)
        if note is None:  # SIGKILLed before its handler ran
            waited = queue.waited(deadline, gone)
            assert_on_time("the runtime's end by SIGKILL", gone - deadline, ON_TIME_S + KILL_GRACE_S, waited)
        else:
            ended, runtime_delay = note
            waited = queue.waited(deadline, ended, (pyrie.process.pid,)) + runtime_delay - forever["run_delay"]
            assert_on_time("SIGTERM", ended - deadline, ON_TIME_S, waited)
            assert_on_time("gone after its SIGTERM", gone - ended, ON_TIME_S, queue.waited(ended, gone))
        print(f"deadline -> gone {gone - deadline:.3f} s")
        # Lambda's timeout line and REPORT, on time, and REPORT's Duration is the true time
        timed_out = clock.first_seen("20")  # the timeout line starts with its timestamp
        reported = clock.first_seen(f"REPORT RequestId: {request_id}")
        lines = platform_lines(pyrie, request_id)
        assert lines["TIMEOUT"].endswith("Task timed out after 3.00 seconds")
        written = timeout_line_epoch(lines["TIMEOUT"])
        assert_on_time("timeout line", written - deadline, ON_TIME_S, queue.waited(deadline, written))
        assert_on_time("timeout line seen", timed_out - deadline, ON_TIME_S + 0.02, queue.waited(deadline, timed_out))
        assert_on_time("REPORT seen", reported - deadline, ON_TIME_S + 0.02, queue.waited(deadline, reported))
        print(f"timeout line seen {timed_out - deadline:.3f} s, REPORT {reported - deadline:.3f} s after the deadline")
        duration_s = report_duration_ms(lines["REPORT"]) / 1000
        assert_on_time("REPORT's Duration", duration_s - 3, ON_TIME_S, queue.waited(deadline, reported))
        # the stalled client's worker connection is cut STALL_S after the invoke ended, once, and then the client's
        # own connection is shut by the worker (it was waiting to write to it)
        assert stalled.server_side() == "ESTABLISHED"
        pyrie.wait_for_stderr("front-end connection cut", timeout=STALL_S + 2)
        cut = time.time()
        assert_on_time("the cut", cut - deadline, STALL_S + 0.5, queue.waited(deadline, cut))
        assert pyrie.stderr().count("front-end connection cut") == 1
        wait_until(lambda: stalled.server_side() != "ESTABLISHED", 2, what="the client's connection shut")
        shut = time.time()
        print(f"cut {cut - deadline:.3f} s after the deadline, the client's connection shut {shut - cut:.3f} s later")
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
    assert "Traceback" not in pyrie.stderr()


# gevent's monitor thread reports (on stderr) each greenlet that holds the supervisor's loop longer than this, by the
# clock: on a loaded machine a loop that waits for a CPU for 0.1 s would be reported too. The holds these tests look
# for (reading what a runtime keeps sending) last seconds.
HOLD_S = 0.5
MONITOR = {"GEVENT_MONITOR_THREAD_ENABLE": "true", "GEVENT_MAX_BLOCKING_TIME": str(HOLD_S)}
BLOCKED = "appears to be blocked"


def test_a_stream_past_its_limit_into_nothing_never_holds_the_loop(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    """A runtime streaming as fast as it can to a client that went away passes the 200 MiB limit within a second or
    so; what it sends after that is not read (reading it all to answer 413 held the loop for as long as the runtime
    kept streaming)."""
    pyrie = start(start_pyrie, tmp_path, **MONITOR)
    with StalledClient(pyrie.port, event(kind="forever")) as client:
        client.sock.recv(1)  # the response has begun; then the client goes away
    [forever] = announced(pyrie, "FOREVER")
    pyrie.wait_for_output(f"REPORT RequestId: {forever['id']}", timeout=10)
    errors = pyrie.stderr()
    assert BLOCKED not in errors, errors[-3000:]
    assert "Traceback" not in errors


def test_a_buffered_response_that_never_ends_never_holds_the_loop(start_pyrie: StartPyrie) -> None:
    """A runtime posting a buffered response whose body never ends: the body is read to count it (so the runtime
    can be answered 413), but never holds the loop while it is; the invoke times out on time."""
    pyrie = start_pyrie(
        sys.executable,
        RAW_RUNTIME,
        extra_env={"RAW_SCENARIO": "endless_buffered", "AWS_LAMBDA_FUNCTION_TIMEOUT": "2", **MONITOR},
    )
    with watch(pyrie) as queue:
        sent = time.time()
        response = pyrie.invoke(b"{}", timeout=10)
        answered = time.time()
    assert response.json()["errorType"] == "Sandbox.Timedout", response.text
    [report] = pyrie.wait_for_lines("REPORT RequestId", 1)
    late = report_duration_ms(report) / 1000 - 2
    assert_on_time("REPORT's Duration", late, ON_TIME_S, queue.waited(sent, answered, (pyrie.process.pid,)))
    errors = pyrie.stderr()
    assert BLOCKED not in errors, errors[-3000:]
    assert "Traceback" not in errors


def test_a_crash_with_a_stalled_client_is_acted_on_at_once(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    pyrie = start(start_pyrie, tmp_path, timeout_s=30)
    clock = LineClock(pyrie)
    with StalledClient(pyrie.port, event(kind="forever")) as stalled, watch(pyrie) as queue:
        [forever] = announced(pyrie, "FOREVER")
        time.sleep(1)  # the stream fills every buffer on its way and waits for the client
        killed = time.time()
        os.kill(forever["pid"], signal.SIGKILL)
        ended = clock.first_seen(f"END RequestId: {forever['id']}")
        reported = clock.first_seen(f"REPORT RequestId: {forever['id']}")
        assert_on_time("END after the kill", ended - killed, ON_TIME_S, queue.waited(killed, ended))
        assert_on_time("REPORT after the kill", reported - killed, ON_TIME_S, queue.waited(killed, reported))
        print(f"END {ended - killed:.3f} s after the kill")
        assert "environment-1: runtime exited (signal: killed)" in pyrie.stderr()
        assert pyrie.invoke(event(kind="hello", n=1), timeout=10).json()["hello"] == 1
        received = stalled.read_to_end(timeout=10)
    clock.stop()
    assert received.how in ("eof", "reset") and received.head.startswith(b"HTTP/1.1 200"), received.head
    assert not received.complete
    assert "Traceback" not in pyrie.stderr()


def test_out_of_memory_with_a_stalled_client_is_acted_on_at_once(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    pyrie = start(start_pyrie, tmp_path, timeout_s=30, AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128")
    clock = LineClock(pyrie)
    with (
        StalledClient(pyrie.port, event(kind="forever", allocate_mb=200, allocate_after=1.0)) as stalled,
        watch(pyrie) as queue,
    ):
        [forever] = announced(pyrie, "FOREVER")
        queue.watch(forever["pid"])  # its allocating thread needs the CPU too
        [allocating] = announced(pyrie, "ALLOCATING")
        began = allocating["at_ms"] / 1000
        note = signalled(tmp_path, forever["pid"])
        reported = clock.first_seen(f"REPORT RequestId: {forever['id']}")
        # the memory is sampled every SAMPLE_S; writing 200 MB takes a moment too (and without the runtime's note of
        # its SIGTERM, the REPORT comes after the SIGKILL)
        bound = SAMPLE_S + ON_TIME_S + 0.1 + (KILL_GRACE_S if note is None else 0.0)
        ended = reported if note is None else note[0]
        assert_on_time("SIGTERM after the allocation began", ended - began, bound, queue.waited(began, ended))
        assert_on_time("REPORT after the allocation began", reported - began, bound, queue.waited(began, reported))
        print(f"SIGTERM {ended - began:.3f} s, REPORT {reported - began:.3f} s after the allocation began")
        report = platform_lines(pyrie, forever["id"])["REPORT"]
        assert int(re.search(r"Memory Size: 128 MB\tMax Memory Used: (\d+) MB", report)[1]) > 128, report
        received = stalled.read_to_end(timeout=10)
    clock.stop()
    assert received.how in ("eof", "reset") and received.head.startswith(b"HTTP/1.1 200"), received.head
    assert not received.complete
    assert "Traceback" not in pyrie.stderr()


@pytest.mark.parametrize("with_extension", [False, True])
def test_a_timed_out_runtime_that_ignores_sigterm_gets_sigkill_after_its_grace(
    start_pyrie: StartPyrie, tmp_path: Path, with_extension: bool
) -> None:
    """SIGTERM at the deadline, SIGKILL KILL_GRACE_S (0.3 s) later; with extensions, the runtime's share of their
    SHUTDOWN budget (0.6 s), as the Go emulator gives it."""
    grace = RUNTIME_SHUTDOWN_SHARE * SHUTDOWN_DEADLINE_S if with_extension else KILL_GRACE_S
    note = tmp_path / "term"
    env = {"RAW_TERM_NOTE": str(note), "AWS_LAMBDA_FUNCTION_TIMEOUT": "1"}
    if with_extension:
        plan = {"probe": {"events": ["SHUTDOWN"]}}
        pyrie = start_with_extensions(
            start_pyrie, tmp_path, plan, "hang_in_invoke", flags=("--log-level", "debug"), **env
        )
    else:
        raw = {"RAW_SCENARIO": "hang_in_invoke", **env}
        pyrie = start_pyrie("--log-level", "debug", sys.executable, RAW_RUNTIME, extra_env=raw)
    answers: list[requests.Response] = []
    caller = threading.Thread(target=lambda: answers.append(pyrie.invoke(b"{}", timeout=20)))
    caller.start()
    pyrie.wait_for_output("hanging")
    [runtime] = [p for p in pyrie.descendants() if RAW_RUNTIME in p.cmdline()]
    caller.join(20)
    assert answers and answers[0].json()["errorType"] == "Sandbox.Timedout"
    gone = wait_gone(runtime, timeout=10)
    wait_until(note.exists, 5, what="the runtime to note its SIGTERM")
    pid, termed = note.read_text().split()
    assert int(pid) == runtime.pid
    print(f"SIGKILL {gone - float(termed):.3f} s after the runtime's SIGTERM (grace {grace} s)")
    assert f"runtime-1: SIGTERM, and SIGKILL {grace:.2f} s later" in pyrie.stderr()
    assert 0 < gone - float(termed) < grace + 5  # it ignored SIGTERM: only SIGKILL, after the grace, ended it


@pytest.mark.parametrize("invoke", ["running", "timed out"])
def test_sigterm_with_a_stalled_client_stops_pyrie_within_its_bound(
    start_pyrie: StartPyrie, tmp_path: Path, invoke: str
) -> None:
    pyrie = start(start_pyrie, tmp_path, timeout_s=30 if invoke == "running" else 1)
    with StalledClient(pyrie.port, event(kind="forever")) as stalled:
        announced(pyrie, "FOREVER")
        if invoke == "timed out":
            pyrie.wait_for_output("Task timed out after 1.00 seconds")  # its End waits behind the stalled client
        else:
            time.sleep(1)  # the stream fills every buffer on its way and waits for the client
        with RunQueue(pyrie.process.pid, *(p.pid for p in pyrie.descendants())) as queue:
            began = time.time()
            assert pyrie.stop() == 0  # and nothing of pyrie's is left
            took = time.time() - began
        received = stalled.read_to_end(timeout=5)
    print(f"pyrie stopped {took:.2f} s after SIGTERM (bound {STOP_BOUND_S:.2f} s)")
    assert_on_time("pyrie's stop", took, STOP_BOUND_S, queue.waited(began, began + took))
    assert received.how in ("eof", "reset") and not received.complete
    assert "Traceback" not in pyrie.stderr()


READ_RATE = 2**20  # bytes a second: the slow reader's pace
# Once every buffer between the generator and the slow reader is full, the generator may get ahead of the reader's
# own progress by no more than what the kernel lets those buffers grow to meanwhile (loopback TCP grows them).
REFILL_SLACK = 4 * 2**20


def test_a_slow_reader_slows_only_its_own_runtime(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    """Backpressure end to end: the generator's progress follows the client's reading; another client is served
    meanwhile; and what the stream holds in the supervisor stays well under 1 MiB (its RSS does not grow by more
    while it relays 8 MiB to the slow reader and drops nothing)."""
    pyrie = start(start_pyrie, tmp_path, "--init-eagerly", "--min-environments", "2", timeout_s=60)
    with StalledClient(pyrie.port, event(kind="sized", mb=8), receive_buffer=1 << 20) as warm:
        assert warm.read_to_end(timeout=30).complete  # what streaming allocates once is there before measuring
    other = OtherClient(pyrie)
    wait_until(lambda: len(other.answers) >= 5, 10, what="the other client's first answers")
    baseline = pyrie.psutil.memory_info().rss
    progress = tmp_path / "progress"
    samples: list[tuple[float, int, int, int]] = []  # (seconds, received, produced, supervisor RSS)
    with StalledClient(pyrie.port, event(kind="forever", progress=str(progress)), receive_buffer=16384) as slow:
        slow.sock.settimeout(10)
        began = time.monotonic()
        received = 0
        while (elapsed := time.monotonic() - began) < 8:
            received += len(slow.sock.recv(8192))
            ahead = received - elapsed * READ_RATE
            if ahead > 0:
                time.sleep(ahead / READ_RATE)
            if not samples or elapsed - samples[-1][0] >= 0.5:
                produced = int(progress.read_text()) if progress.exists() else 0
                samples.append((elapsed, received, produced, pyrie.psutil.memory_info().rss))
    answers = other.stop()
    first, last = samples[1], samples[-1]  # from half a second in: the buffers have filled
    for at, got, produced, rss in samples:
        print(f"{at:4.1f} s: read {got / 2**20:5.2f}, produced {produced / 2**20:5.2f}, RSS {rss / 2**20:.2f} (MiB)")
    print(f"baseline RSS {baseline / 2**20:.2f} MiB")
    read, made = last[1] - first[1], last[2] - first[2]
    assert read > 4 * READ_RATE, samples  # the reader kept reading at its pace
    assert made <= read + REFILL_SLACK, f"the generator made {made} bytes while the client read {read}"
    grew = max(rss for *_, rss in samples) - baseline
    assert grew < 2**20, f"the supervisor grew by {grew / 2**20:.2f} MiB while relaying one stream"
    assert len(answers) >= 3, answers  # served all along (how many is the benchmarks' business)
    assert all(status == 200 and seconds < 5 for status, _, seconds in answers), answers
    assert "Traceback" not in pyrie.stderr()


def test_a_runtime_streaming_into_nothing_keeps_no_deadline_waiting(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    """A runtime streaming as fast as it can to a client that went away (its output is dropped, until the stream
    passes its 200 MiB limit) never holds up the loop: another invoke's timeout is still met. (One stream: more would
    measure how two cores share five busy processes.)"""
    pyrie = start(start_pyrie, tmp_path, **MONITOR)
    with StalledClient(pyrie.port, event(kind="forever")) as client:
        client.sock.recv(1)  # the response has begun; then the client goes away
    [stream] = announced(pyrie, "FOREVER")
    with StalledClient(pyrie.port, event(kind="sleep", seconds=10)), watch(pyrie) as queue:
        [sleeping] = announced(pyrie, "SLEEP")
        note = signalled(tmp_path, sleeping["pid"])
        gone = time.time()
    deadline = sleeping["deadline_ms"] / 1000
    if note is None:  # SIGKILLed before its handler ran: gone by then
        late = gone - deadline
        assert_on_time("the other invoke's end", late, ON_TIME_S + KILL_GRACE_S, queue.waited(deadline, gone))
    else:
        late = note[0] - deadline
        waited = queue.waited(deadline, note[0], (pyrie.process.pid,)) + note[1] - sleeping["run_delay"]
        assert_on_time("the other invoke's SIGTERM", late, ON_TIME_S, waited)
    report = platform_lines(pyrie, stream["id"])["REPORT"]
    errors = pyrie.stderr()
    assert BLOCKED not in errors, errors[-3000:]
    print(f"the other invoke's SIGTERM {late:.3f} s after its deadline; the stream's {report}")


# --- item 3: a stdout nobody reads -----------------------------------------------------------------------------

CHATTY_LINES = 100_000  # of about 110 bytes: 10 MiB, far more than pyrie may buffer (OUTPUT_ROOM) and the pipes hold


def start_chatty(pyrie: Pyrie, tmp_path: Path) -> tuple[threading.Thread, list[requests.Response], Path]:
    """Invoke the chatty function in a thread; returns the thread, where its response will be, and its progress."""
    progress = tmp_path / "printed"
    result: list[requests.Response] = []
    payload = event(kind="chatty", lines=CHATTY_LINES, progress=str(progress))
    thread = threading.Thread(
        target=lambda: result.append(requests.post(pyrie.url + INVOKE_PATH, data=payload, timeout=120)), daemon=True
    )
    thread.start()
    return thread, result, progress


def printing_stalls(progress: Path) -> int:
    """Wait until the function's printing has stopped moving (its prints block); how many lines it got out."""

    def stalled() -> int | None:
        before = int(progress.read_text()) if progress.exists() else 0
        time.sleep(1.0)
        after = int(progress.read_text()) if progress.exists() else 0
        return after if after == before and after > 0 else None

    return int(wait_until(stalled, 30, interval=0, what="the chatty function's prints to block"))


def test_a_paused_stdout_slows_only_the_function_that_prints(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    """pyrie's stdout is a pipe nobody reads: the function that prints is held at its prints, other environments
    answer as usual, and once stdout is read again none of the function's lines is lost."""
    pyrie = start(start_pyrie, tmp_path, timeout_s=120, paused_stdout=True)
    chatty, result, progress = start_chatty(pyrie, tmp_path)
    printed = printing_stalls(progress)
    assert printed < CHATTY_LINES
    other = OtherClient(pyrie)
    time.sleep(3)
    assert requests.get(pyrie.url + "/healthz", timeout=5).status_code == 200
    assert chatty.is_alive() and int(progress.read_text()) == printed  # still held
    answers = other.stop()
    assert len(answers) >= 3, answers  # served all along (how many is the benchmarks' business)
    for n, (status, body, seconds) in enumerate(answers):
        assert status == 200 and body["hello"] == n, body
        assert seconds < 2, answers
    print(f"held at {printed} lines; {len(answers)} other invokes in 3 s, slowest {max(a[2] for a in answers):.3f} s")
    pyrie.resume_stdout()
    chatty.join(60)
    assert result and result[0].json()["printed"] == CHATTY_LINES
    pyrie.wait_for_lines("REPORT RequestId", len(answers) + 1, timeout=30)
    numbers = [int(line.split()[1]) for line in pyrie.stdout_lines() if line.startswith("line ")]
    assert numbers == list(range(CHATTY_LINES))  # every line, once, in order
    assert pyrie.stdout().count("START RequestId") == len(answers) + 1
    assert "dropped" not in pyrie.stdout() + pyrie.stderr()
    assert "Traceback" not in pyrie.stderr()


def test_sigterm_with_a_paused_stdout_stops_pyrie_within_its_bound(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    pyrie = start(start_pyrie, tmp_path, timeout_s=120, paused_stdout=True)
    start_chatty(pyrie, tmp_path)
    printing_stalls(tmp_path / "printed")
    with RunQueue(pyrie.process.pid, *(p.pid for p in pyrie.descendants())) as queue:
        began = time.time()
        assert pyrie.stop() == 0  # and nothing of pyrie's is left
        took = time.time() - began
    bound = STOP_BOUND_S + OUTPUT_FLUSH_S  # what is left for stdout gets OUTPUT_FLUSH_S, then is given up
    print(f"pyrie stopped {took:.2f} s after SIGTERM (bound {bound:.2f} s)")
    assert_on_time("pyrie's stop", took, bound, queue.waited(began, began + took))


# --- item 4: an environment slow to come back to /next -----------------------------------------------------------


def start_slow_to_come_back(start_pyrie: StartPyrie, tmp_path: Path, via: str, *args: str) -> Pyrie:
    """pyrie whose environments answer each invoke at once and then stay busy until ``gate`` exists: their runtime
    stays away from /next (``via`` "runtime"), or their INVOKE extension does ("extension")."""
    gate = tmp_path / "gate"
    if via == "runtime":
        return start_pyrie(
            *args, sys.executable, RAW_RUNTIME, extra_env={"RAW_SCENARIO": "slow_next", "RAW_GATE": str(gate)}
        )
    return start_pyrie(
        *args,
        "--extensions-dir",
        str(extensions_dir(tmp_path, "probe")),
        "hardening.handler",
        cwd=FUNCTIONS,
        extra_env={"PROBE_PLAN": json.dumps({"probe": {"scenario": "gate"}}), "PROBE_GATE": str(gate)},
    )


def pid_of(response: requests.Response) -> int:
    assert response.status_code == 200, response.text
    return int(response.json()["pid"])


@pytest.mark.parametrize("via", ["runtime", "extension"])
def test_an_invoke_never_waits_behind_an_environment_slow_to_come_back(
    start_pyrie: StartPyrie, tmp_path: Path, via: str
) -> None:
    """While --max-concurrency allows, a synchronous invoke goes to a new environment rather than wait behind one
    whose invoke is answered but whose runtime (or INVOKE extension) is not back at /next."""
    pyrie = start_slow_to_come_back(start_pyrie, tmp_path, via)
    hello = event(kind="hello", n=1)
    first = pid_of(pyrie.invoke(hello, timeout=10))
    began = time.monotonic()
    # answered while the first environment is still away (it stays away until the gate opens, after the answer): an
    # invoke that waited for it would time out instead
    second = pid_of(pyrie.invoke(hello, timeout=30))
    took = time.monotonic() - began
    print(f"the second invoke was answered in {took:.2f} s by a new environment")
    assert second != first
    assert not (tmp_path / "gate").exists()
    (tmp_path / "gate").touch()


@pytest.mark.parametrize("via", ["runtime", "extension"])
def test_at_max_concurrency_an_invoke_waits_for_the_environment_coming_back(
    start_pyrie: StartPyrie, tmp_path: Path, via: str
) -> None:
    """When no environment may be started, the invoke waits behind the answered one (not throttled), and is run there
    once it comes back."""
    pyrie = start_slow_to_come_back(start_pyrie, tmp_path, via, "--max-concurrency", "1")
    hello = event(kind="hello", n=1)
    first = pid_of(pyrie.invoke(hello, timeout=10))
    result: list[requests.Response] = []
    waiter = threading.Thread(target=lambda: result.append(pyrie.invoke(hello, timeout=20)))
    waiter.start()
    waiter.join(1.5)
    assert waiter.is_alive(), result and result[0].text  # it waits
    (tmp_path / "gate").touch()
    waiter.join(10)
    assert pid_of(result[0]) == first


def start_gated_init(start_pyrie: StartPyrie, tmp_path: Path, gated: str, *flags: str) -> Pyrie:
    """pyrie whose runtimes answer each invoke with their pid and then stay away from /next until ``gate`` exists;
    the init of the first runtime to start (``gated`` "first") or of every later one ("later") waits for
    ``init-gate``, which the test never creates."""
    return start_pyrie(
        *flags,
        sys.executable,
        RAW_RUNTIME,
        extra_env={
            "RAW_SCENARIO": "slow_next",
            "RAW_GATE": str(tmp_path / "gate"),
            "RAW_INIT_GATE": str(tmp_path / "init-gate"),
            "RAW_INIT_GATED": gated,
        },
    )


def states(pyrie: Pyrie) -> list[str]:
    return sorted(env["state"] for env in environments(pyrie))


def test_an_invoke_goes_to_the_environment_that_answered_before_one_still_initialising(
    start_pyrie: StartPyrie, tmp_path: Path
) -> None:
    """Idle, else one that has just answered, else one still initialising: the answered one will be back at /next
    long before an init that has not finished, and the invoke runs there. Waiting on it, the invoke also gets a new
    environment started (whose init never ends here), as the holder may be slow."""
    pyrie = start_gated_init(start_pyrie, tmp_path, "later", "--init-eagerly", "--min-environments", "2")
    wait_until(lambda: states(pyrie) == ["idle", "starting"], what="one environment ready, one initialising")
    hello = event(kind="hello", n=1)
    first = pid_of(pyrie.invoke(hello, timeout=10))  # the ready one; it stays away from /next
    result: list[requests.Response] = []
    waiter = threading.Thread(target=lambda: result.append(pyrie.invoke(hello, timeout=30)))
    waiter.start()
    # Patience over, a third environment starts for it (its init never ends either).
    wait_until(lambda: len(environments(pyrie)) == 3, what="an environment started for the waiting invoke")
    (tmp_path / "gate").touch()  # the first comes back to /next
    waiter.join(20)
    assert result, "the invoke waited on an environment still initialising"
    assert pid_of(result[0]) == first
    wait_until(lambda: states(pyrie) == ["idle", "starting", "starting"], what="the first back, two initialising")


def test_an_invoke_never_waits_on_an_environment_still_initialising_while_another_could_start(
    start_pyrie: StartPyrie, tmp_path: Path
) -> None:
    """The environment kept warm is stuck in its init: an invoke that arrives meanwhile goes to it (an init under way
    is ahead of a new one), and once its patience is over it runs on a new environment, ready first."""
    pyrie = start_gated_init(start_pyrie, tmp_path, "first", "--init-eagerly", "--max-concurrency", "2")
    pyrie.wait_for_output("init waits for its gate")
    answer = pyrie.invoke(event(kind="hello", n=1), timeout=20)
    assert answer.status_code == 200, answer.text
    assert not (tmp_path / "init-gate").exists()
    assert states(pyrie) == ["invoking", "starting"]  # it ran on the new one; the first still initialises


# --- item 10: memory bounds ----------------------------------------------------------------------------------------

QUEUE_BYTES = 300_000


def event_of_size(size: int, n: int) -> bytes:
    """A ``sleep`` event of exactly ``size`` bytes."""
    bare = event(kind="sleep", seconds=0, n=n, pad="")
    return event(kind="sleep", seconds=0, n=n, pad="x" * (size - len(bare)))


def test_event_invokes_beyond_the_queued_bytes_are_throttled(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    """Event invokes waiting for an environment hold at most --max-queued-event-bytes of payload; beyond it Lambda's
    429 TooManyRequestsException, while those before were accepted (202) and all run once an environment is free."""
    pyrie = start(
        start_pyrie, tmp_path, "--max-concurrency", "1", "--max-queued-event-bytes", str(QUEUE_BYTES), timeout_s=30
    )
    async_ = {"X-Amz-Invocation-Type": "Event"}
    busy = pyrie.invoke(event(kind="sleep", seconds=2, n=0), headers=async_)  # takes the only environment
    assert busy.status_code == 202
    announced(pyrie, "SLEEP")
    statuses = [pyrie.invoke(event_of_size(100_000, n), headers=async_).status_code for n in (1, 2, 3)]
    assert statuses == [202, 202, 202]  # 300,000 bytes wait now: exactly the bound
    for payload in (event_of_size(100_000, 4), event(kind="sleep", seconds=0, n=5)):
        refused = pyrie.invoke(payload, headers=async_)
        assert refused.status_code == 429, refused.text
        assert refused.headers["X-Amzn-ErrorType"] == "TooManyRequestsException"
        body = refused.json()
        assert body["Type"] == "User" and body["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded", body
        assert body["message"].startswith("Rate Exceeded"), body
    runs = announced(pyrie, "SLEEP", count=4, timeout=20)  # the queue drains, in order
    assert [run["n"] for run in runs] == [0, 1, 2, 3]
    assert pyrie.invoke(event_of_size(100_000, 6), headers=async_).status_code == 202  # room again
    assert [run["n"] for run in announced(pyrie, "SLEEP", count=5)] == [0, 1, 2, 3, 6]
    assert "Traceback" not in pyrie.stderr()
