"""The workloads: what is measured, how, and against which target.

Every workload returns `Result`s for the metrics listed for it in `METRICS`. A workload that fails reports its
error on each of its metrics instead of stopping the run, so one broken emulator never hides the others' figures.
A workload runs once per emulator per round (see bench/__main__.py); the report takes medians over the rounds.

A metric's `target` is judged on pyrie's own figure; its `ratio_target` on the ratio pyrie / Go emulator, taken
round by round, and only when the Go emulator ran (on a shared machine only such interleaved ratios hold).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench import runtimes
from bench.client import INVOKE_PATH, STREAM_INVOKE_PATH, EventStreamSink, InvokeClient, ProtocolError, Sink
from bench.emulator import HOST, Emulator, EmulatorError, cpu_seconds, die_with_parent, pss_bytes, rss_bytes

LARGE_SIZE = 6_000_000
FLOOD_TOTAL = 100 * 1024 * 1024
FLOOD_CHUNK = 64 * 1024
WARMUP_STREAM_TOTAL = 4 * 1024 * 1024  # under the Go emulator's 6 MiB cap
STREAM_GAP_MS = 100.0  # the ticks stream's writes are this far apart
MIB = 1024 * 1024


class WorkloadError(Exception):
    """A workload could not produce its figures (wrong status, short body, too slow...)."""


@dataclass(frozen=True)
class Target:
    op: str  # "<=", "<" or ">="
    value: float

    def met(self, value: float) -> bool:
        if self.op == "<=":
            return value <= self.value
        if self.op == "<":
            return value < self.value
        return value >= self.value

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


@dataclass(frozen=True)
class Metric:
    workload: str
    key: str
    label: str
    unit: str
    target: Target | None = None  # on pyrie's median
    ratio_target: Target | None = None  # on the median of the per-round ratios pyrie / Go
    pyrie_only: bool = False  # the Go emulator cannot produce it (also when its whole workload is in PYRIE_ONLY)

    @property
    def go_runs(self) -> bool:
        """Whether the Go emulator has a figure for it (the client workload runs on no emulator at all)."""
        return not self.pyrie_only and self.workload not in PYRIE_ONLY and self.workload != "client"


METRICS: tuple[Metric, ...] = (
    Metric("client", "rtt_p50", "round trip to a null server, p50", "us"),
    Metric("client", "rtt_p99", "round trip to a null server, p99", "us"),
    Metric("client", "stream_mbps", "100 MiB stream from a null server", "MB/s"),
    Metric("echo", "p50", "serial echo latency, p50", "us", ratio_target=Target("<=", 1.10)),
    Metric("echo", "p99", "serial echo latency, p99", "us"),
    Metric("echo", "rate", "serial echo throughput", "/s", ratio_target=Target(">=", 0.90)),
    Metric("echo", "cpu", "CPU per echo invoke, own processes", "us", ratio_target=Target("<=", 1.2)),
    Metric("large", "median", "6,000,000-byte response, median", "ms", ratio_target=Target("<=", 0.35)),
    Metric("stream", "ttfb", "time to first byte, median", "ms"),
    Metric("stream", "gap_median", f"gap between chunks, median ({STREAM_GAP_MS:g} ms writes)", "ms"),
    Metric("stream", "late_median", "chunk lateness, median", "ms", Target("<=", 5.0)),
    Metric("stream", "late_max", "chunk lateness, max", "ms", Target("<=", 5.0)),
    Metric("stream_iwrs", "ttfb", "InvokeWithResponseStream: time to first payload byte, median", "ms"),
    Metric("stream_iwrs", "late_median", "InvokeWithResponseStream: chunk lateness, median", "ms", Target("<=", 5.0)),
    Metric("stream_iwrs", "late_max", "InvokeWithResponseStream: chunk lateness, max", "ms", Target("<=", 5.0)),
    Metric("stream_iwrs", "late_ratio", "lateness median, IWRS / plain streamed invoke", "x", Target("<=", 1.1)),
    Metric("throughput", "mbps", "100 MiB stream, median", "MB/s", Target(">=", 1000.0)),
    Metric("throughput_iwrs", "mbps", "InvokeWithResponseStream: 100 MiB stream, median", "MB/s"),
    Metric("throughput_iwrs", "ratio", "throughput, IWRS / plain streamed invoke", "x", Target(">=", 0.9)),
    Metric("spawn", "median", "spawn -> first answered invoke, median", "ms", ratio_target=Target("<=", 3.0)),
    Metric("memory", "idle", "RSS idle after start-up (own processes)", "MiB", Target("<=", 64.0)),
    Metric("memory", "after", "RSS idle after the workloads (own processes)", "MiB"),
    # The Go emulator refuses a response over 6 MiB.
    Metric(
        "memory",
        "stream_peak",
        "peak RSS growth, 100 MiB stream, slow reader",
        "MiB",
        Target("<", 1.0),
        pyrie_only=True,
    ),
    Metric("concurrency", "sleep_rate", "8 callers, 20 ms handler, invokes/s", "/s"),
    Metric("concurrency", "sleep_ideal", "8 callers, 20 ms handler, % of ideal 400/s", "%", Target(">=", 95.0)),
    Metric("concurrency", "echo_1", "echo invokes/s, 1 caller", "/s"),
    Metric("concurrency", "echo_8", "echo invokes/s, 8 callers", "/s"),
    Metric("concurrency", "echo_ratio", "echo throughput, 8 callers / 1 caller", "x"),
    Metric("json_stall", "late_median", "chunk lateness beside 6 MiB JSON invokes, median", "ms"),
    Metric("json_stall", "late_max", "chunk lateness beside 6 MiB JSON invokes, max", "ms", Target("<=", 10.0)),
    Metric("json_stall", "invokes", "6 MiB JSON invokes during the stream", "invokes"),
)

# Workloads in the order they run; `client` needs no emulator, `spawn` starts its own, the rest share one.
WORKLOAD_NAMES: tuple[str, ...] = (
    "client",
    "echo",
    "large",
    "stream",
    "stream_iwrs",
    "throughput",
    "throughput_iwrs",
    "spawn",
    "memory",
    "concurrency",
    "json_stall",
)
# Earlier names still accepted by --only.
WORKLOAD_ALIASES: dict[str, str] = {"latency": "echo"}
# Workloads the Go emulator cannot run: it has no InvokeWithResponseStream, refuses a response over 6 MiB, and a
# second concurrent request crashes it. (The memory workload's stream figure is marked per metric.)
PYRIE_ONLY: frozenset[str] = frozenset({"stream_iwrs", "throughput", "throughput_iwrs", "concurrency", "json_stall"})


@dataclass
class Result:
    workload: str
    key: str
    value: float | None = None
    error: str | None = None
    detail: dict[str, float | int | str] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    """How much each workload does in one round (the report takes medians over the rounds)."""

    quick: bool = False
    echo_warmup: int = 100
    echo_count: int = 1000
    large_warmup: int = 1
    large_runs: int = 5
    stream_runs: int = 2
    stream_count: int = 10
    flood_runs: int = 2
    spawn_runs: int = 2
    concurrent_invokes: int = 1000  # per measurement of the concurrency workload
    sleep_ms: float = 20.0
    stall_s: float = 1.0  # the memory workload's reader pause
    ready_timeout: float = 15.0
    budget_s: float = 60.0  # per workload, emulator and round

    @classmethod
    def for_mode(cls, quick: bool) -> Settings:
        if not quick:
            return cls()
        return cls(
            quick=True,
            echo_warmup=20,
            echo_count=200,
            large_warmup=1,
            large_runs=2,
            stream_runs=1,
            stream_count=5,
            flood_runs=1,
            spawn_runs=1,
            concurrent_invokes=200,
            stall_s=0.5,
            ready_timeout=15.0,
            budget_s=30.0,
        )

    def scaled(self, factor: int) -> Settings:
        """Each workload's iterations per round (and its time budget) times `factor`, e.g. to give a profiler
        enough samples."""
        return dataclasses.replace(
            self,
            echo_count=self.echo_count * factor,
            large_runs=self.large_runs * factor,
            stream_runs=self.stream_runs * factor,
            flood_runs=self.flood_runs * factor,
            spawn_runs=self.spawn_runs * factor,
            concurrent_invokes=self.concurrent_invokes * factor,
            budget_s=self.budget_s * factor,
        )


def metrics_of(workload: str) -> list[Metric]:
    return [metric for metric in METRICS if metric.workload == workload]


def failed(workload: str, error: str, keys: Sequence[str] = ()) -> list[Result]:
    """`error` as the result of each metric of `workload` (only those in `keys`, when given)."""
    return [Result(workload, m.key, error=error) for m in metrics_of(workload) if not keys or m.key in keys]


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


class Budget:
    """A deadline for one workload: loops stop early (with fewer samples) once it has passed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    @property
    def expired(self) -> bool:
        return time.monotonic() > self.deadline

    def check(self) -> None:
        if self.expired:
            raise WorkloadError(f"took longer than its {self.seconds:g} s budget")


class Prefix:
    """A body sink that keeps the first bytes of a body, for error messages."""

    def __init__(self, limit: int = 200) -> None:
        self.limit = limit
        self.data = bytearray()

    def __call__(self, piece: memoryview, recv_ns: int) -> None:
        if len(self.data) < self.limit:
            self.data += piece[: self.limit - len(self.data)]


def _expect(ok: bool, what: str, status: int, prefix: bytes) -> None:
    if not ok:
        raise WorkloadError(f"{what} (HTTP {status}, body starts {prefix[:120]!r})")


# --- client: how much of a round trip is the client's own ---------------------------------------------------------


def client_overhead(settings: Settings) -> list[Result]:
    """Round trips of the same client against a stdlib raw-socket server that answers at once."""
    script = Path(__file__).with_name("null_server.py")
    proc = subprocess.Popen(
        [sys.executable, "-IS", str(script), HOST],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509 (no threads here)
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.isdigit():
            return failed("client", f"null server did not start (said {line!r})")
        client = InvokeClient(HOST, int(line), timeout=10)
        serial = _serial_round_trips(client, settings, b'{"n":1}', check_echo=False)
        with client:
            rates = [_flood(client, FLOOD_TOTAL, Budget(settings.budget_s)) for _ in range(settings.flood_runs)]
        detail: dict[str, float | int | str] = {"n": len(serial.samples)}
        return [
            Result("client", "rtt_p50", percentile(serial.samples, 50), detail=detail),
            Result("client", "rtt_p99", percentile(serial.samples, 99), detail=detail),
            Result("client", "stream_mbps", statistics.median(rates), detail={"runs": len(rates)}),
        ]
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@dataclass(frozen=True)
class Serial:
    samples: list[float]  # round trips, request sent -> last byte received, in us
    rate: float  # round trips per second, the first measured one's send to the last one's end
    cpu: float | None = None  # CPU seconds `cpu_clock` counted over the measured round trips


def _serial_round_trips(
    client: InvokeClient,
    settings: Settings,
    body: bytes,
    *,
    check_echo: bool,
    cpu_clock: Callable[[], float] | None = None,
) -> Serial:
    """`settings.echo_count` round trips one after the other, after `settings.echo_warmup` unmeasured ones; with
    `cpu_clock` (CPU seconds used so far by whatever it watches), also the CPU time used over the measured ones."""
    budget = Budget(settings.budget_s)
    samples: list[float] = []
    first_ns = last_ns = 0
    cpu_start = 0.0
    with client:
        for i in range(settings.echo_warmup + settings.echo_count):
            if i == settings.echo_warmup and cpu_clock is not None:
                cpu_start = cpu_clock()
            resp = client.invoke(body)
            if resp.status != 200 or (check_echo and resp.body != body):
                _expect(False, "echo invoke failed", resp.status, bytes(resp.body))
            if i >= settings.echo_warmup:
                first_ns = first_ns or resp.sent_ns
                last_ns = resp.end_ns
                samples.append((resp.end_ns - resp.sent_ns) / 1e3)
            if budget.expired:
                break
    cpu = None if cpu_clock is None or not samples else cpu_clock() - cpu_start
    if not samples or last_ns <= first_ns:
        raise WorkloadError(f"no sample within the {settings.budget_s:g} s budget")
    return Serial(samples, len(samples) / ((last_ns - first_ns) / 1e9), cpu)


# --- workloads on a running emulator --------------------------------------------------------------------------------


def echo(emu: Emulator, settings: Settings) -> list[Result]:
    """Serial invokes of a small event on one keep-alive connection; the runtime echoes it. Latency is each
    invoke's round trip; throughput is how many went through per second, one after the other. CPU per invoke is
    the CPU time (user + system) the emulator's own processes used over the measured invokes, divided by their
    number: the runtime's processes are not counted (they are the function's, the same code under both
    emulators), nor the client's. It is the figure least moved by a busy machine."""
    body = b'{"hello":"world","n":12345}'
    procs = emu.emulator_processes()
    serial = _serial_round_trips(emu.client(), settings, body, check_echo=True, cpu_clock=lambda: cpu_seconds(procs))
    detail: dict[str, float | int | str] = {"n": len(serial.samples), "warmup": settings.echo_warmup}
    assert serial.cpu is not None
    cpu_detail = {**detail, "processes": len(procs), "cpu_s": round(serial.cpu, 4)}
    return [
        Result("echo", "p50", percentile(serial.samples, 50), detail=detail),
        Result("echo", "p99", percentile(serial.samples, 99), detail=detail),
        Result("echo", "rate", serial.rate, detail=detail),
        Result("echo", "cpu", serial.cpu / len(serial.samples) * 1e6, detail=cpu_detail),
    ]


def large(emu: Emulator, settings: Settings) -> list[Result]:
    """A buffered 6,000,000-byte response: request sent → last byte received."""
    budget = Budget(settings.budget_s)
    event = runtimes.bytes_event(LARGE_SIZE)
    samples: list[float] = []
    with emu.client() as client:
        for i in range(settings.large_warmup + settings.large_runs):
            prefix = Prefix()
            resp = client.invoke(event, keep_body=False, sink=prefix)
            _expect(
                resp.status == 200 and resp.body_size == LARGE_SIZE,
                f"expected {LARGE_SIZE} bytes, got {resp.body_size}",
                resp.status,
                bytes(prefix.data),
            )
            if i >= settings.large_warmup:
                samples.append((resp.end_ns - resp.sent_ns) / 1e6)
            budget.check()
    return [Result("large", "median", statistics.median(samples), detail={"n": len(samples), "bytes": LARGE_SIZE})]


class TickCollector:
    """A body sink that cuts tick records out of the byte stream and notes when each one was complete."""

    def __init__(self) -> None:
        self.pending = bytearray()
        self.ticks: list[tuple[int, int, int]] = []  # (sequence, sent ns, arrived ns)

    def __call__(self, piece: memoryview, recv_ns: int) -> None:
        self.pending += piece
        size = runtimes.TICK_RECORD_SIZE
        while len(self.pending) >= size:
            record = bytes(self.pending[:size])
            del self.pending[:size]
            try:
                seq, sent_ns = runtimes.decode_tick(record)
            except ValueError:
                raise WorkloadError(f"not a tick record: {record!r}") from None
            self.ticks.append((seq, sent_ns, recv_ns))


@dataclass(frozen=True)
class TickRun:
    """One ticks stream's figures, in ms."""

    ttfb: float  # request sent -> first body byte
    lateness: list[float]  # per record: arrival at the client - send time
    gaps: list[float]  # between consecutive records' arrivals


def _tick_run(client: InvokeClient, settings: Settings, *, event_stream: bool = False) -> TickRun:
    """One ticks stream (plain invoke, or InvokeWithResponseStream)."""
    ticks = TickCollector()
    events = EventStreamSink(ticks) if event_stream else None
    sink: Sink = ticks if events is None else events
    event = runtimes.ticks_event(settings.stream_count, STREAM_GAP_MS)
    resp = client.invoke(event, path=STREAM_INVOKE_PATH if event_stream else INVOKE_PATH, keep_body=False, sink=sink)
    seqs = [seq for seq, _, _ in ticks.ticks]
    _expect(
        resp.status == 200
        and seqs == list(range(settings.stream_count))
        and not ticks.pending
        and (events is None or events.complete == {}),
        f"expected {settings.stream_count} tick records, got {len(seqs)}",
        resp.status,
        bytes(ticks.pending[:120]),
    )
    arrivals = [arrived for _, _, arrived in ticks.ticks]
    return TickRun(
        ttfb=(resp.first_body_ns - resp.sent_ns) / 1e6,
        lateness=[(arrived - sent) / 1e6 for _, sent, arrived in ticks.ticks],
        gaps=[(later - earlier) / 1e6 for earlier, later in itertools.pairwise(arrivals)],
    )


def stream(emu: Emulator, settings: Settings) -> list[Result]:
    """K writes G ms apart, each stamped with its send time; lateness = arrival at the client - send time."""
    budget = Budget(settings.budget_s)
    ttfbs: list[float] = []
    lateness: list[float] = []
    gaps: list[float] = []
    with emu.client() as client:
        for _ in range(settings.stream_runs):
            run = _tick_run(client, settings)
            ttfbs.append(run.ttfb)
            lateness += run.lateness
            gaps += run.gaps
            budget.check()
    detail = _stream_detail(settings, len(ttfbs))
    return [
        Result("stream", "ttfb", statistics.median(ttfbs), detail=detail),
        Result("stream", "gap_median", statistics.median(gaps), detail=detail),
        Result("stream", "late_median", statistics.median(lateness), detail=detail),
        Result("stream", "late_max", max(lateness), detail=detail),
    ]


def stream_iwrs(emu: Emulator, settings: Settings) -> list[Result]:
    """The `stream` workload through InvokeWithResponseStream (the client cuts the payload out of the event
    stream), its runs interleaved with plain streamed invokes on the same connection for a fair ratio."""
    budget = Budget(settings.budget_s)
    ttfbs: list[float] = []
    lateness: list[float] = []
    plain_lateness: list[float] = []
    with emu.client() as client:
        for _ in range(settings.stream_runs):
            plain_lateness += _tick_run(client, settings).lateness
            run = _tick_run(client, settings, event_stream=True)
            ttfbs.append(run.ttfb)
            lateness += run.lateness
            budget.check()
    detail = _stream_detail(settings, len(ttfbs))
    plain_median = statistics.median(plain_lateness)
    ratio_detail = {**detail, "plain_late_median_ms": round(plain_median, 4)}
    return [
        Result("stream_iwrs", "ttfb", statistics.median(ttfbs), detail=detail),
        Result("stream_iwrs", "late_median", statistics.median(lateness), detail=detail),
        Result("stream_iwrs", "late_max", max(lateness), detail=detail),
        Result("stream_iwrs", "late_ratio", statistics.median(lateness) / plain_median, detail=ratio_detail),
    ]


def _stream_detail(settings: Settings, runs: int) -> dict[str, float | int | str]:
    return {"runs": runs, "chunks_per_run": settings.stream_count, "gap_ms": STREAM_GAP_MS}


def _flood(
    client: InvokeClient, total: int, budget: Budget, *, stall_s: float = 0.0, event_stream: bool = False
) -> float:
    """Stream `total` bytes through the emulator; return MB/s (of payload) from request sent to last byte.

    With `stall_s`, the client stops reading for that long once the first bytes have arrived, so a stream
    that is not held back by the slow reader piles up inside the emulator. With `event_stream`, the stream goes
    through InvokeWithResponseStream and the client reads the payload out of the events.
    """
    prefix = Prefix()
    events = EventStreamSink() if event_stream else None
    stalled = False

    def sink(piece: memoryview, recv_ns: int) -> None:
        nonlocal stalled
        prefix(piece, recv_ns)
        if events is not None:
            events(piece, recv_ns)
        if stall_s and not stalled:
            stalled = True
            time.sleep(stall_s)
        if budget.expired:
            raise WorkloadError(f"stream slower than the {budget.seconds:g} s budget allows")

    path = STREAM_INVOKE_PATH if event_stream else INVOKE_PATH
    resp = client.invoke(runtimes.flood_event(total, FLOOD_CHUNK), path=path, keep_body=False, sink=sink)
    received = resp.body_size if events is None else events.payload_bytes
    _expect(
        resp.status == 200 and received == total and (events is None or events.complete == {}),
        f"expected a {total}-byte stream, got {received} bytes",
        resp.status,
        bytes(prefix.data),
    )
    return total / ((resp.end_ns - resp.sent_ns) / 1e9) / 1e6


def throughput(emu: Emulator, settings: Settings) -> list[Result]:
    """A 100 MiB stream written in 64 KiB chunks as fast as the runtime can; the client reads and discards."""
    budget = Budget(settings.budget_s)
    with emu.client() as client:
        rates = [_flood(client, FLOOD_TOTAL, budget) for _ in range(settings.flood_runs)]
    detail: dict[str, float | int | str] = {"runs": len(rates), "bytes": FLOOD_TOTAL, "chunk": FLOOD_CHUNK}
    return [Result("throughput", "mbps", statistics.median(rates), detail=detail)]


def throughput_iwrs(emu: Emulator, settings: Settings) -> list[Result]:
    """The `throughput` workload through InvokeWithResponseStream, its runs interleaved with plain streamed
    invokes on the same connection; the ratio compares the two medians."""
    budget = Budget(settings.budget_s * 2)
    plain: list[float] = []
    rates: list[float] = []
    with emu.client() as client:
        for _ in range(settings.flood_runs):
            plain.append(_flood(client, FLOOD_TOTAL, budget))
            rates.append(_flood(client, FLOOD_TOTAL, budget, event_stream=True))
    detail: dict[str, float | int | str] = {"runs": len(rates), "bytes": FLOOD_TOTAL, "chunk": FLOOD_CHUNK}
    ratio_detail = {**detail, "plain_mbps": round(statistics.median(plain), 1)}
    return [
        Result("throughput_iwrs", "mbps", statistics.median(rates), detail=detail),
        Result("throughput_iwrs", "ratio", statistics.median(rates) / statistics.median(plain), detail=ratio_detail),
    ]


@contextmanager
def _rss_sampler(emu: Emulator, interval_s: float = 0.002) -> Iterator[Callable[[], int]]:
    """Sample the emulator's own RSS in a thread while the block runs; yields a function returning the peak."""
    procs = emu.emulator_processes()
    peak = rss_bytes(procs)
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss_bytes(procs))
            stop.wait(interval_s)

    thread = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    thread.start()
    try:
        yield lambda: peak
    finally:
        stop.set()
        thread.join()
        peak = max(peak, rss_bytes(procs))


def memory_idle(emu: Emulator, key: str) -> Result:
    """The summed RSS of the emulator's own processes (for pyrie: the supervisor, the gunicorn master and its
    workers; never the runtime's processes), idle."""
    time.sleep(0.5)  # let the start-up or the last workload settle
    tree = sorted(emu.emulator_process_depths(), key=lambda item: item[0])
    procs = [proc for _, proc in tree]
    each = [f"{rss_bytes([proc]) / MIB:.1f}@{depth}" for depth, proc in tree]
    detail: dict[str, float | int | str] = {
        "processes": len(procs),
        "rss_mib_at_depth": " ".join(each),  # each process's RSS @ its depth (0: the emulator's root process)
        "pss_mib": round(pss_bytes(procs) / MIB, 1),
    }
    return Result("memory", key, rss_bytes(procs) / MIB, detail=detail)


def memory_stream(emu: Emulator, settings: Settings) -> Result:
    """Peak RSS growth of the emulator's own processes while a 100 MiB stream goes through it.

    The client stalls for a while after the first bytes, then reads the rest at full speed: an emulator that
    holds the stream back (backpressure) stays flat, one that buffers whatever the runtime writes grows.
    """
    budget = Budget(settings.budget_s)
    try:
        with emu.client() as client:
            _flood(client, WARMUP_STREAM_TOTAL, budget)  # run the code paths once, without piling anything up
            time.sleep(0.2)
            baseline = rss_bytes(emu.emulator_processes())
            with _rss_sampler(emu) as peak:
                _flood(client, FLOOD_TOTAL, budget, stall_s=settings.stall_s)
            growth = max(0, peak() - baseline)
    except (OSError, ProtocolError, WorkloadError, EmulatorError) as exc:
        return Result("memory", "stream_peak", error=describe(exc))
    detail: dict[str, float | int | str] = {
        "baseline_mib": round(baseline / MIB, 1),
        "peak_mib": round(peak() / MIB, 1),
        "bytes": FLOOD_TOTAL,
        "reader_stall_s": settings.stall_s,
    }
    return Result("memory", "stream_peak", growth / MIB, detail=detail)


def spawn(make_emulator: Callable[[str], Emulator], settings: Settings) -> list[Result]:
    """Start a fresh emulator and invoke until it answers, several times; each one is stopped before the next."""
    budget = Budget(settings.budget_s)
    samples: list[float] = []
    for run in range(settings.spawn_runs):
        with make_emulator(f"spawn-{run}") as emu:
            emu.start()
            samples.append(emu.wait_until_answers(settings.ready_timeout) * 1e3)
        budget.check()
    detail: dict[str, float | int | str] = {"runs": len(samples), "max_ms": round(max(samples), 1)}
    return [Result("spawn", "median", statistics.median(samples), detail=detail)]


def _invokes_per_second(emu: Emulator, callers: int, total: int, event: bytes, budget: Budget) -> float:
    """`callers` threads, each on its own keep-alive connection, share `total` invokes; returns invokes/s."""
    left = [total]
    lock = threading.Lock()
    errors: list[str] = []

    def call() -> None:
        with emu.client() as client:
            client.invoke(event)  # warm: the first invoke of each caller may start an environment
            start.wait()
            while True:
                with lock:
                    if left[0] <= 0 or errors:
                        return
                    left[0] -= 1
                prefix = Prefix()
                resp = client.invoke(event, keep_body=False, sink=prefix)
                if resp.status != 200:
                    errors.append(f"HTTP {resp.status}: {bytes(prefix.data)[:120]!r}")
                if budget.expired:
                    errors.append(f"slower than the {budget.seconds:g} s budget allows")

    start = threading.Event()
    threads = [threading.Thread(target=call, name=f"caller-{n}", daemon=True) for n in range(callers)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # let every caller connect and warm its environment before the clock starts
    began = time.monotonic()
    start.set()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    if errors:
        raise WorkloadError(errors[0])
    return total / elapsed


def concurrency(emu: Emulator, settings: Settings) -> list[Result]:
    """Eight callers at once: a 20 ms handler (ideal: 8 / 20 ms = 400 invokes/s) and the echo, against one caller."""
    budget = Budget(settings.budget_s)
    total = settings.concurrent_invokes
    ideal = 8 / (settings.sleep_ms / 1000)
    sleep_rate = _invokes_per_second(emu, 8, total, runtimes.sleep_event(settings.sleep_ms), budget)
    echo = b'{"hello":"world"}'
    echo_1 = _invokes_per_second(emu, 1, total, echo, budget)
    echo_8 = _invokes_per_second(emu, 8, total, echo, budget)
    detail: dict[str, float | int | str] = {"invokes": total, "handler_ms": settings.sleep_ms}
    return [
        Result("concurrency", "sleep_rate", sleep_rate, detail=detail),
        Result("concurrency", "sleep_ideal", 100 * sleep_rate / ideal, detail=detail),
        Result("concurrency", "echo_1", echo_1, detail=detail),
        Result("concurrency", "echo_8", echo_8, detail=detail),
        Result("concurrency", "echo_ratio", echo_8 / echo_1, detail=detail),
    ]


JSON_STALL_PAYLOAD = 6_000_000  # under Lambda's 6 MiB (6,291,456 bytes) request limit, with room for the headers
JSON_STALL_GAP_MS = 10.0


def json_stall(emu: Emulator, settings: Settings) -> list[Result]:
    """A ticks stream (writes 10 ms apart) relayed while another caller sends 6 MiB JSON invokes one after the other
    to the same front end (pyrie's one gunicorn worker relays both): how late the stream's chunks arrive shows how
    long taking in such a payload (reading it, checking it is JSON, handing it over) holds the worker's loop."""
    budget = Budget(settings.budget_s)
    payload = runtimes.discard_event(JSON_STALL_PAYLOAD)
    count = max(20, settings.stream_count * 5)
    stop = threading.Event()
    sent: list[int] = []
    errors: list[str] = []

    def flood() -> None:
        with emu.client() as client:
            while not stop.is_set() and not budget.expired:
                prefix = Prefix()
                resp = client.invoke(payload, keep_body=False, sink=prefix)
                if resp.status != 200:
                    errors.append(f"HTTP {resp.status}: {bytes(prefix.data)[:120]!r}")
                    return
                sent.append(1)

    lateness: list[float] = []
    with emu.client() as client:
        client.invoke(runtimes.ticks_event(2, 1.0), keep_body=False)  # warm: an environment for the stream
        for _ in range(settings.stream_runs):
            stop.clear()
            thread = threading.Thread(target=flood, name="json-flood", daemon=True)
            thread.start()
            try:
                time.sleep(0.2)  # the first large invokes are on their way
                ticks = TickCollector()
                resp = client.invoke(runtimes.ticks_event(count, JSON_STALL_GAP_MS), keep_body=False, sink=ticks)
            finally:
                stop.set()
                thread.join()
            _expect(resp.status == 200 and len(ticks.ticks) == count, "ticks stream incomplete", resp.status, b"")
            lateness += [(arrived - sent_ns) / 1e6 for _, sent_ns, arrived in ticks.ticks]
            budget.check()
    if errors:
        raise WorkloadError(f"a 6 MiB invoke failed: {errors[0]}")
    if not sent:
        raise WorkloadError("no 6 MiB invoke completed during the stream")
    detail: dict[str, float | int | str] = {
        "payload_bytes": len(payload),
        "chunks": len(lateness),
        "gap_ms": JSON_STALL_GAP_MS,
    }
    return [
        Result("json_stall", "late_median", statistics.median(lateness), detail=detail),
        Result("json_stall", "late_max", max(lateness), detail=detail),
        Result("json_stall", "invokes", float(len(sent)), detail=detail),
    ]


def describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError | ProtocolError):
        text = f"{type(exc).__name__}: {text}"
    return text


SESSION_WORKLOADS: dict[str, Callable[[Emulator, Settings], list[Result]]] = {
    "echo": echo,
    "large": large,
    "stream": stream,
    "stream_iwrs": stream_iwrs,
    "throughput": throughput,
    "throughput_iwrs": throughput_iwrs,
    "concurrency": concurrency,
    "json_stall": json_stall,
}
