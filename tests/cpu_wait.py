"""How long processes waited for a CPU, so that a test judges a deadline by the CPU the processes actually got.

On a loaded machine a process that is ready to run may wait on the kernel's run queue: a timer that fires on time
is acted on late, through no fault of pyrie's. The kernel counts that wait for each thread (the second field of
``/proc/PID/task/TID/schedstat``, in nanoseconds, "time spent waiting on a runqueue"). ``RunQueue`` samples it from a
thread for the processes it watches, and ``waited(start, end)`` tells how long they waited between two moments; a
test then allows ``bound + waited``: on an idle machine that is the bound itself, and a process that is late while it
had the CPU still fails. A process's wait after its last sample before it exited is not counted (the test is the
stricter for it). Strict figures on an idle machine are ``make bench``'s job, not the tests'.

Where a chain of processes the test cannot name is involved (an SDK's, a browser's), ``MachineWait`` takes the
machine's CPU pressure instead (``/proc/pressure/cpu``, "some": the time in which at least one task waited for a CPU):
no process of the chain waited longer than that, and their waits, one after the other, add up to no more.
"""

from __future__ import annotations

import bisect
import itertools
import os
import threading
import time
from types import TracebackType

import psutil

__all__ = [
    "MachineWait",
    "RunQueue",
    "Stopwatch",
    "assert_on_time",
    "assert_one_by_one",
    "machine_wait",
    "one_by_one",
    "run_delay",
    "thread_run_delay",
]


def run_delay(pid: int) -> float | None:
    """Seconds all threads of process ``pid`` have waited for a CPU in their lives; ``None`` once it is gone."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as stat:
                total += int(stat.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # a thread that just ended
    return total / 1e9


def thread_run_delay() -> float:
    """Seconds the calling thread has waited for a CPU in its life (0.0 where the kernel does not say: the tests
    are then as strict as their bounds)."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as stat:
            return int(stat.read().split()[1]) / 1e9
    except OSError:
        return 0.0


class Stopwatch:
    """The seconds a block takes (``took``), and how many of them the calling thread waited for a CPU (``waited``):
    for what runs in the test's own thread (a gevent loop and what it serves)."""

    took = 0.0
    waited = 0.0

    def __enter__(self) -> Stopwatch:
        self._began = time.monotonic()
        self._delay = thread_run_delay()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.took = time.monotonic() - self._began
        self.waited = thread_run_delay() - self._delay


def machine_wait() -> float:
    """Seconds in which some task of this machine waited for a CPU, since boot (0.0 where the kernel keeps no PSI)."""
    try:
        with open("/proc/pressure/cpu", "rb") as pressure:
            some = pressure.readline().split()
    except OSError:
        return 0.0
    return int(some[-1].split(b"=")[1]) / 1e6


class MachineWait:
    """The seconds of a block in which some task of the machine waited for a CPU (``waited``)."""

    waited = 0.0

    def __enter__(self) -> MachineWait:
        self._before = machine_wait()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.waited = machine_wait() - self._before


def one_by_one(arrivals: list[float], interval: float, waited: float) -> bool:
    """Whether chunks a handler wrote ``interval`` seconds apart arrived one by one, not held and sent together: each
    at least a quarter interval after the one before, less ``waited``, the CPU wait meanwhile (a chunk held back by
    it can be caught up by the next). How soon after its write a chunk arrives is ``make bench``'s question."""
    return all(later - earlier > interval / 4 - waited for earlier, later in itertools.pairwise(arrivals))


def assert_one_by_one(arrivals: list[float], interval: float, waited: float) -> None:
    gaps = [round(later - earlier, 3) for earlier, later in itertools.pairwise(arrivals)]
    assert one_by_one(arrivals, interval, waited), f"gaps {gaps}, with {waited:.3f} s waiting for a CPU"


class RunQueue:
    """Samples, every ``interval`` seconds, how long each watched process has waited for a CPU, with the wall-clock
    time (epoch seconds) of each sample. With ``tree``, that process and all its descendants are watched, those it
    starts later too (looked for every ``TREE_EVERY`` samples)."""

    TREE_EVERY = 20

    def __init__(self, *pids: int, tree: int | None = None, interval: float = 0.01) -> None:
        self._interval = interval
        self._tree = tree
        self._lock = threading.Lock()
        self._samples: dict[int, tuple[list[float], list[float]]] = {}  # pid -> (times, delays)
        self._stop = threading.Event()
        for pid in pids:
            self.watch(pid)
        self._find_tree()
        self._thread = threading.Thread(target=self._run, name="run-queue", daemon=True)
        self._thread.start()

    def watch(self, pid: int) -> None:
        """Watch ``pid`` too, from now on."""
        with self._lock:
            self._samples.setdefault(pid, ([], []))
        self._sample(pid)

    def waited(self, start: float, end: float, pids: tuple[int, ...] | None = None) -> float:
        """Seconds the watched processes (or ``pids`` of them) waited for a CPU between ``start`` and ``end`` (epoch
        seconds), from each one's last sample at or before ``start`` to its first at or after ``end`` (its last, if
        it exited before): at least the wait in between, and at most two intervals' more."""
        self._sample_all()  # a sample after ``end`` when ``end`` has passed
        total = 0.0
        with self._lock:
            chosen = self._samples.items() if pids is None else [(p, self._samples[p]) for p in pids]
            for _, (times, delays) in chosen:
                if not times:
                    continue
                before = max(bisect.bisect_right(times, start) - 1, 0)
                after = min(bisect.bisect_left(times, end), len(times) - 1)
                total += max(delays[after] - delays[before], 0.0)
        return total

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> RunQueue:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        rounds = 0
        while not self._stop.wait(self._interval):
            rounds += 1
            if rounds % self.TREE_EVERY == 0:
                self._find_tree()
            self._sample_all()

    def _find_tree(self) -> None:
        if self._tree is None:
            return
        try:
            root = psutil.Process(self._tree)
            found = [self._tree, *(child.pid for child in root.children(recursive=True))]
        except psutil.Error:
            return
        for pid in found:
            if pid not in self._samples:
                self.watch(pid)

    def _sample_all(self) -> None:
        with self._lock:
            pids = list(self._samples)
        for pid in pids:
            self._sample(pid)

    def _sample(self, pid: int) -> None:
        delay = run_delay(pid)
        now = time.time()  # after the read: the delay read is at most this one
        if delay is None:
            return
        with self._lock:
            times, delays = self._samples[pid]
            if not times or now >= times[-1]:
                times.append(now)
                delays.append(delay)


def assert_on_time(what: str, late: float, bound: float, waited: float) -> None:
    """``late`` (seconds after a deadline, or after what should have been acted on) is not negative and under
    ``bound`` plus ``waited``, the time the processes involved waited for a CPU meanwhile."""
    assert 0 <= late < bound + waited, (
        f"{what} {late:+.3f} s late: more than {bound:.3f} s plus the {waited:.3f} s spent waiting for a CPU"
    )
