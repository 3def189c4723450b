"""Sampling profiles of pyrie's own processes while the bench drives them: `python -m bench --profile DIR`.

Once a session's emulator answers, `py-spy record --native` attaches to pyrie's supervisor (the emulator's root
process) and to each gunicorn worker (its grandchildren), one py-spy per process, and samples them until the
session's workloads are done; then each py-spy is stopped with SIGINT, which makes it write its file to DIR. The
runtime's processes and the gunicorn master (idle while workers serve) are not profiled. Idle samples (a process
waiting in epoll) are left out, as py-spy does by default, so a profile shows where the CPU time goes.

For speedscope and raw files a summary of the heaviest frames (own time and total time, by function) is written
beside them; the files themselves open in https://www.speedscope.app (raw ones too: collapsed stacks) or, for
raw ones, in flamegraph.pl / inferno.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bench.emulator import Emulator, die_with_parent

FORMATS: dict[str, str] = {  # py-spy's output format -> file name suffix
    "speedscope": ".speedscope.json",
    "flamegraph": ".svg",
    "raw": ".txt",
}
ROLES = {0: "supervisor", 2: "worker"}  # depth in the emulator's process tree -> name of what is profiled
_READY_S = 15.0  # for py-spy to start sampling once started (it reads the target's binaries first)
_WRITE_S = 60.0  # for py-spy to write its file once told to stop
_SAMPLES = re.compile(rb"Samples: (\d+) Errors: (\d+)")


class ProfileError(Exception):
    """py-spy is missing, could not attach, or wrote no file."""


def find_py_spy() -> str | None:
    """The py-spy beside this Python (the venv's, from the dev extras), else the one on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


@dataclass
class Recording:
    role: str
    pid: int
    output: Path
    log: Path
    proc: subprocess.Popen[bytes]
    log_file: IO[bytes]
    samples: int | None = None
    errors: int | None = None
    problem: str | None = None


@dataclass
class Profiler:
    directory: Path
    py_spy: str
    fmt: str = "speedscope"
    rate: int = 100
    recordings: list[Recording] = field(default_factory=list)  # all of this run, finished ones included
    _active: list[Recording] = field(default_factory=list)

    def attach(self, emu: Emulator, tag: str) -> None:
        """Start one py-spy per process to profile; return once each samples (or raise ProfileError)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        targets = [(ROLES[depth], proc.pid) for depth, proc in emu.emulator_process_depths() if depth in ROLES]
        if not targets:
            raise ProfileError("no supervisor or gunicorn worker found in the emulator's process tree")
        for role, pid in sorted(targets):
            stem = f"{tag}-{role}-{pid}"
            output = self.directory / f"{stem}{FORMATS[self.fmt]}"
            log = self.directory / f"{stem}.py-spy.log"
            command = [self.py_spy, "record", "--native", "--pid", str(pid), "--rate", str(self.rate)]
            command += ["--format", self.fmt, "--output", str(output)]
            log_file = log.open("wb")
            try:
                proc = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # a Ctrl-C on the bench reaches it only through `detach`
                    preexec_fn=die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509 (no threads)
                )
            except OSError as exc:
                log_file.close()
                raise ProfileError(f"cannot start py-spy: {exc}") from exc
            recording = Recording(role, pid, output, log, proc, log_file)
            self.recordings.append(recording)
            self._active.append(recording)
        deadline = time.monotonic() + _READY_S
        for recording in self._active:
            while b"Sampling process" not in _read(recording.log):
                if recording.proc.poll() is not None or time.monotonic() > deadline:
                    said = _read(recording.log).decode("utf-8", "replace").strip().replace("\n", " | ")
                    raise ProfileError(f"py-spy did not start sampling pid {recording.pid}: {said or 'no output'}")
                time.sleep(0.02)

    def detach(self) -> None:
        """Stop every running py-spy (SIGINT: it writes its file) and wait for the files."""
        active, self._active = self._active, []
        for recording in active:
            if recording.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    recording.proc.send_signal(signal.SIGINT)
        for recording in active:
            try:
                recording.proc.wait(_WRITE_S)
            except subprocess.TimeoutExpired:
                recording.proc.kill()
                recording.proc.wait()
                recording.problem = f"py-spy took over {_WRITE_S:g} s to write and was killed"
            recording.log_file.close()
            found = _SAMPLES.search(_read(recording.log))
            if found:
                recording.samples, recording.errors = int(found[1]), int(found[2])
            if recording.problem is None and not recording.output.exists():
                said = _read(recording.log).decode("utf-8", "replace").strip().splitlines()
                recording.problem = f"no file written ({said[-1] if said else 'py-spy said nothing'})"

    def summary(self, top: int = 25) -> str:
        """Each recording's file, sample count and heaviest frames, as text."""
        lines: list[str] = []
        for recording in self.recordings:
            head = f"{recording.output} ({recording.role}, pid {recording.pid})"
            if recording.problem is not None:
                lines += [head, f"  {recording.problem}", ""]
                continue
            counts = f"{recording.samples} samples, {recording.errors} errors" if recording.samples is not None else ""
            lines.append(f"{head}: {counts}" if counts else head)
            stacks = _stacks(recording.output, self.fmt)
            if stacks is not None:
                lines += _heaviest(stacks, top)
            lines.append("")
        return "\n".join(lines).rstrip()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


# A stack is its frames from the root to the leaf, each frame a function ("name (file)"), with its sample weight.
Stack = tuple[tuple[str, ...], float]


def _stacks(path: Path, fmt: str) -> list[Stack] | None:
    """The samples of a py-spy file, or None for a format this does not read (flamegraph SVG)."""
    try:
        if fmt == "speedscope":
            return _speedscope_stacks(json.loads(path.read_text(encoding="utf-8")))
        if fmt == "raw":
            return _raw_stacks(path.read_text(encoding="utf-8").splitlines())
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return []
    return None


def _function(name: str, file: str) -> str:
    return f"{name} ({Path(file).name})" if file else name


def _speedscope_stacks(document: dict[str, Any]) -> list[Stack]:
    frames = [_function(str(frame["name"]), str(frame.get("file") or "")) for frame in document["shared"]["frames"]]
    stacks: list[Stack] = []
    for profile in document["profiles"]:  # one per thread; samples list frame indexes from the root to the leaf
        for sample, weight in zip(profile["samples"], profile["weights"], strict=True):
            stacks.append((tuple(frames[index] for index in sample), float(weight)))
    return stacks


_RAW_FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _raw_stacks(lines: Iterable[str]) -> list[Stack]:
    """Collapsed stacks: `frame;frame;...;leaf COUNT`, each frame `name (file:line)`."""
    stacks: list[Stack] = []
    for line in lines:
        text, _, count = line.rpartition(" ")
        if not text or not count.isdigit():
            continue
        names = []
        for frame in text.split(";"):
            match = _RAW_FRAME.match(frame)
            names.append(_function(match["name"], match["file"]) if match else frame)
        stacks.append((tuple(names), float(count)))
    return stacks


def _heaviest(stacks: Sequence[Stack], top: int) -> list[str]:
    total = sum(weight for _, weight in stacks)
    if not total:
        return ["  no samples (the process was idle: py-spy leaves idle samples out)"]
    own: defaultdict[str, float] = defaultdict(float)
    inclusive: defaultdict[str, float] = defaultdict(float)
    for frames, weight in stacks:
        if frames:
            own[frames[-1]] += weight
        for name in set(frames):
            inclusive[name] += weight

    def heaviest(weights: dict[str, float]) -> list[tuple[str, float]]:
        return sorted(weights.items(), key=lambda item: -item[1])

    lines = [f"  own time (the leaf frame), top {top}:"]
    lines += [f"    {100 * weight / total:5.1f}%  {name}" for name, weight in heaviest(own)[:top]]
    # Frames in (nearly) every sample are the event loop's roots and say nothing.
    busy = [(name, weight) for name, weight in heaviest(inclusive) if weight < 0.98 * total][:top]
    lines.append(f"  total time (the frame and what it calls), top {top}, leaving out frames in every sample:")
    lines += [f"    {100 * weight / total:5.1f}%  {name}" for name, weight in busy]
    return lines
