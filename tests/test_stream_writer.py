"""pyrie's stdout and stderr are written by a thread from bounded buffers (issue 9, item 3): a write never waits for
the reader, a producer that can wait is held past the soft bound, what cannot wait is dropped past the hard bound
and counted, and nothing else that writes to stderr (gevent's reports of a dead greenlet) blocks either."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time

import gevent
import gevent.event

from pyrie_core.pipe.messages import Invoke
from supervisor.config import FunctionConfig
from supervisor.invocation import DiscardingSink, Invocation
from supervisor.observe import platform_reporter
from supervisor.observe.function_log import FunctionLog
from supervisor.observe.platform_reporter import PlatformReporter
from supervisor.observe.stream_writer import StreamWriter
from supervisor.observe.telemetry_hub import TelemetryHub
from supervisor.processes.managed_process import MAX_LINE, ManagedProcess
from tests.cpu_wait import Stopwatch, assert_on_time, thread_run_delay
from tests.harness import ROOT


def read_all(fd: int) -> bytes:
    os.set_blocking(fd, False)
    data = b""
    while True:
        try:
            chunk = os.read(fd, 1 << 20)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


def test_writes_never_wait_and_the_soft_bound_holds_who_can_wait() -> None:
    read_end, write_end = os.pipe()  # a pipe nobody reads: 64 KiB and it is full
    writer = StreamWriter(write_end, soft_limit=256 * 1024, hard_limit=1024 * 1024)
    line = b"x" * 1023 + b"\n"
    with Stopwatch() as writes:
        for _ in range(600):  # 600 KiB: far more than the pipe takes
            writer.write(line)
    assert_on_time("600 writes", writes.took, 0.5, writes.waited)  # none of them waited
    assert not writer.has_room
    waiter = gevent.spawn(writer.wait_for_room)
    gevent.sleep(0.2)
    assert not waiter.dead  # a relay that can wait is held while the reader is away
    data = b""
    with gevent.Timeout(10):
        while not waiter.dead:
            data += read_all(read_end)  # the reader comes back
            gevent.sleep(0.01)
        assert writer.flush(5)
    data += read_all(read_end)
    assert data == line * 600  # nothing lost, in order
    os.close(read_end)
    os.close(write_end)


def test_beyond_the_hard_bound_writes_are_dropped_and_counted() -> None:
    read_end, write_end = os.pipe()
    writer = StreamWriter(write_end, soft_limit=64 * 1024, hard_limit=256 * 1024)
    line = b"y" * 1023 + b"\n"
    for _ in range(1024):  # 1 MiB: the hard bound and the pipe take about 320 KiB of it
        writer.write(line)
    data = b""
    with gevent.Timeout(10):
        while not writer.flush(0.01):
            data += read_all(read_end)
        writer.write(b"after\n")  # the count is reported before the next write once the reader is back
        while not writer.flush(0.01) or not data.endswith(b"after\n"):
            data += read_all(read_end)
    kept = data.count(line)
    assert 256 <= kept < 1024
    assert f"pyrie: {1024 - kept} log writes were dropped: the reader did not keep up\n".encode() in data
    os.close(read_end)
    os.close(write_end)


BLOCKED_STDERR = """
import logging, sys, time
import gevent
from supervisor.observe.logging_setup import setup_logging

setup_logging("INFO")
began = time.monotonic()
for n in range(2000):
    gevent.spawn(lambda: 1 / 0).join()  # gevent reports the dead greenlet on sys.stderr, traceback and all
    logging.getLogger("pyrie").error("line %d %s", n, "z" * 500)
    print("direct", "w" * 500, file=sys.stderr)
print(f"done in {time.monotonic() - began:.2f} s", flush=True)
"""


def test_nothing_the_supervisor_writes_to_stderr_waits_for_its_reader() -> None:
    """stderr is a pipe nobody reads: 2,000 gevent tracebacks, log lines and direct writes (about 5 MB) still do not
    hold the process."""
    process = subprocess.Popen(
        [sys.executable, "-c", BLOCKED_STDERR],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,  # never read
        text=True,
    )
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        raise AssertionError("writing to stderr held the process") from None
    finally:
        process.kill()
        process.wait()
    assert process.stdout is not None
    assert process.stdout.read().startswith("done in")


class _Collected:
    """A writer that keeps what it is given."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data


def test_the_timeout_line_is_stamped_from_one_reading_of_the_clock(monkeypatch) -> None:
    """A timeout line written as a second turns must not be stamped a whole second early (its seconds from one reading
    of the clock, its milliseconds from the next)."""
    readings = iter([1_000_000.9999, 1_000_001.0004, 1_000_001.0009])
    real_gmtime, strftime, monotonic = time.gmtime, time.strftime, time.monotonic

    class Clock:
        @staticmethod
        def time() -> float:
            return next(readings)

        @staticmethod
        def gmtime(seconds: float | None = None) -> time.struct_time:
            return real_gmtime(Clock.time() if seconds is None else seconds)

        @staticmethod
        def strftime(layout: str, moment: time.struct_time) -> str:
            return strftime(layout, moment)

        @staticmethod
        def monotonic() -> float:
            return monotonic()

    collected = _Collected()
    function = FunctionConfig(
        name="f", version="$LATEST", memory_mb=128, timeout_s=3, command=("/b",), cwd="/", handler=None, base_env={}
    )
    reporter = PlatformReporter(FunctionLog(collected), function, TelemetryHub())  # type: ignore[arg-type]
    monkeypatch.setattr(platform_reporter, "time", Clock)
    invocation = Invocation(Invoke(function="f", payload=b"{}"), DiscardingSink(), "$LATEST", request_id="r-1")
    reporter.timed_out(invocation, "Task timed out after 3.00 seconds")
    assert collected.data == b"1970-01-12T13:46:40.999Z r-1 Task timed out after 3.00 seconds\n"


def test_a_process_that_never_pauses_is_read_only_as_its_output_finds_room() -> None:
    """``yes`` writes faster than anyone relays it, so its pipe is never empty: its output is still read one piece at
    a time, each after the relay has room again, and the loop runs in between (reading until the pipe was empty went
    on for as long as the process kept writing: here all of its 4 MB)."""
    room = gevent.event.Event()
    room.set()
    lines = 0

    def on_output(line: bytes) -> None:
        nonlocal lines
        lines += 1
        if lines == 100_000:
            room.clear()  # the reader of stdout went away

    ticks: list[tuple[float, float]] = []  # (when, the loop's wait for a CPU by then)

    def tick() -> None:
        while True:
            ticks.append((time.monotonic(), thread_run_delay()))
            gevent.sleep(0.005)

    ticker = gevent.spawn(tick)
    process = ManagedProcess(
        name="yes",
        argv=["sh", "-c", "yes | head -n 2000000"],
        cwd="/",
        env={"PATH": os.environ["PATH"]},
        on_output=on_output,
        on_exit=lambda code: None,
        wait_for_room=room.wait,
    )
    try:
        with gevent.Timeout(20):
            while lines < 100_000:
                gevent.sleep(0.01)
        gevent.sleep(0.5)
        assert lines < 100_000 + MAX_LINE // 2, lines  # at most one more read ("y\n" is two bytes)
        process.flush_output()  # what the pipe holds now, and no more
        assert lines < 100_000 + MAX_LINE // 2 + 65536 // 2, lines
        # the loop ran other work between the reads: no gap between ticks but its wait for a CPU
        gaps = [(b - a) - (b_wait - a_wait) for (a, a_wait), (b, b_wait) in itertools.pairwise(ticks)]
        assert max(gaps) < 0.1, max(gaps)
    finally:
        ticker.kill()
        process.stop()


PAUSED_SCRIPT = "printf 'one\\ntwo\\nthree'; : > {ready}; {rest}"


def paused_process(tmp_path, rest: str) -> tuple[ManagedProcess, list[bytes]]:
    """A process that prints two lines and the start of a third while its relay waits for room that never comes
    (stdout's reader went away), so none of it has been read; returned once it has printed."""
    room = gevent.event.Event()  # never set
    output: list[bytes] = []
    ready = tmp_path / "ready"
    process = ManagedProcess(
        name="paused",
        argv=["sh", "-c", PAUSED_SCRIPT.format(ready=ready, rest=rest)],
        cwd="/",
        env={"PATH": os.environ["PATH"]},
        on_output=output.append,
        on_exit=lambda code: None,
        wait_for_room=room.wait,
    )
    with gevent.Timeout(10):
        while not ready.exists():
            gevent.sleep(0.01)
    assert output == []
    return process, output


def assert_relay_ended(process: ManagedProcess, output_fd: int, pump: gevent.Greenlet) -> None:
    assert pump.dead  # the relay no longer waits for room
    assert process._output_fd is None
    try:
        os.fstat(output_fd)
    except OSError:
        pass
    else:
        raise AssertionError(f"the output pipe (fd {output_fd}) is still open")


def test_stopping_a_paused_process_ends_its_relay_and_keeps_its_output(tmp_path) -> None:
    """stop() while the relay waits for room: the relay ends and the pipe is closed (before, both waited for as long
    as stdout's reader was away: a greenlet and a descriptor per process stopped), and what the process printed is
    relayed, its unfinished last line too."""
    process, output = paused_process(tmp_path, "exec sleep 60")
    output_fd, pump = process._output_fd, process._pump
    assert output_fd is not None
    with gevent.Timeout(5):
        process.stop(grace_s=1.0)
    assert not process.running
    assert_relay_ended(process, output_fd, pump)
    assert output == [b"one\n", b"two\n", b"three"]


def test_stopping_a_paused_process_that_has_exited_ends_its_relay_and_keeps_its_output(tmp_path) -> None:
    process, output = paused_process(tmp_path, "exit 3")
    output_fd, pump = process._output_fd, process._pump
    assert output_fd is not None
    with gevent.Timeout(5):
        assert process.wait() == 3
        process.stop()
    assert_relay_ended(process, output_fd, pump)
    assert output == [b"one\n", b"two\n", b"three"]
