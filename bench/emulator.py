"""Start and stop one emulator process (pyrie or the Go `aws-lambda-rie`) on free loopback ports.

Both take the same command line: `EMULATOR --runtime-interface-emulator-address HOST:PORT
--runtime-api-address HOST:PORT BOOTSTRAP`. The emulator runs in its own session (process group); every process
seen in its tree is remembered, and `stop` ends them all: SIGTERM to the group, SIGKILL after a grace period,
then SIGKILL to anything it left behind (runtimes live in process groups of their own).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil

from bench.client import InvokeClient, ProtocolError

HOST = "127.0.0.1"
PROBE_EVENT = b'{"probe":"ready?"}'
_STOP_GRACE_S = 5.0
_POLL_S = 0.005
# Variables that would change what the emulator does under test (AWS_LAMBDA_MAX_CONCURRENCY switches the Go
# emulator to its multi-concurrency mode; a handler variable would override the bootstrap's).
_SCRUBBED_ENV = ("AWS_LAMBDA_MAX_CONCURRENCY", "AWS_LAMBDA_FUNCTION_HANDLER", "_HANDLER", "AWS_LAMBDA_RUNTIME_API")


class EmulatorError(Exception):
    """The emulator did not start, died, or never answered an invoke."""


@dataclass(frozen=True)
class EmulatorKind:
    """Which emulator: a short name for the report and the command that starts it (before its flags)."""

    name: str
    command: tuple[str, ...]


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports that were free a moment ago."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the bench dies without cleaning up (Linux only)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class Emulator:
    """One emulator process running `bootstrap`; use as a context manager so it is always stopped."""

    def __init__(
        self,
        kind: EmulatorKind,
        bootstrap: Sequence[str],
        workdir: Path,
        *,
        runtime_argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        label: str = "",
    ) -> None:
        self.kind = kind
        self.bootstrap = list(bootstrap)
        self.workdir = workdir
        # Consecutive words found in the command line of the runtime processes and in no emulator process's
        # (the emulator's own argv ends with the bootstrap path too, and a forked worker keeps that argv).
        self.runtime_argv = list(runtime_argv)
        self.env = dict(env) if env is not None else dict(os.environ)
        for name in _SCRUBBED_ENV:
            self.env.pop(name, None)
        self.label = label or kind.name
        self.invoke_port = 0
        self.runtime_api_port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.spawned_ns = 0
        self.log_path = workdir / f"{self.label}.log"
        self._log: IO[bytes] | None = None
        self._root: psutil.Process | None = None
        self._seen: dict[int, psutil.Process] = {}

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def argv(self) -> list[str]:
        return [
            *self.kind.command,
            "--runtime-interface-emulator-address",
            f"{HOST}:{self.invoke_port}",
            "--runtime-api-address",
            f"{HOST}:{self.runtime_api_port}",
            *self.bootstrap,
        ]

    def start(self) -> None:
        if self.proc is not None:
            raise EmulatorError("already started")
        self.invoke_port, self.runtime_api_port = free_ports(2)
        self._log = self.log_path.open("wb")
        self.spawned_ns = time.monotonic_ns()
        try:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509 (no threads here)
            )
        except OSError as exc:
            self._log.close()
            self._log = None
            raise EmulatorError(f"cannot start {self.kind.command[0]}: {exc}") from exc
        with contextlib.suppress(psutil.Error):
            self._root = psutil.Process(self.proc.pid)

    def client(self, timeout: float = 30.0) -> InvokeClient:
        return InvokeClient(HOST, self.invoke_port, timeout=timeout)

    def wait_until_answers(self, timeout: float) -> float:
        """Invoke until an invoke is answered with 200; return the seconds since the process was spawned."""
        if self.proc is None:
            raise EmulatorError("not started")
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            if self.proc.poll() is not None:
                raise EmulatorError(f"exited with status {self.proc.returncode} before answering{self.log_excerpt()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EmulatorError(f"no successful invoke within {timeout:g} s (last: {last}){self.log_excerpt()}")
            try:
                with self.client(timeout=max(0.05, remaining)) as client:
                    resp = client.invoke(PROBE_EVENT)
                if resp.status == 200:
                    elapsed = (resp.end_ns - self.spawned_ns) / 1e9
                    self.refresh_tree()
                    return elapsed
                last = f"HTTP {resp.status} {bytes(resp.body[:200])!r}"
            except (OSError, ProtocolError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(_POLL_S)

    def refresh_tree(self) -> list[psutil.Process]:
        """The emulator's process tree now (root first), remembering every member for `stop`."""
        if self._root is None:
            return []
        try:
            procs = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            return []
        for proc in procs:
            self._seen.setdefault(proc.pid, proc)
        return procs

    def emulator_processes(self) -> list[psutil.Process]:
        """The emulator's own processes: its tree without the runtime processes it spawned (and their children)."""
        procs = self.refresh_tree()
        excluded: set[int] = set()
        for proc in procs:
            if proc.pid in excluded:
                continue
            try:
                if _contains(proc.cmdline(), self.runtime_argv):
                    excluded.add(proc.pid)
                    excluded.update(child.pid for child in proc.children(recursive=True))
            except psutil.Error:
                excluded.add(proc.pid)
        return [proc for proc in procs if proc.pid not in excluded]

    def emulator_process_depths(self) -> list[tuple[int, psutil.Process]]:
        """`emulator_processes` with each one's depth in the tree: 0 for the emulator's root process (pyrie's
        supervisor), 1 for its children (pyrie's gunicorn master), 2 for theirs (the gunicorn workers)."""
        procs = self.emulator_processes()
        parents: dict[int, int] = {}
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                parents[proc.pid] = proc.ppid()
        root = self.proc.pid if self.proc is not None else -1

        def depth(pid: int) -> int:
            steps = 0
            while pid != root and pid in parents and steps < len(procs):
                pid = parents[pid]
                steps += 1
            return steps

        return [(depth(proc.pid), proc) for proc in procs]

    def log_excerpt(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_bytes()[-4000:].decode("utf-8", "replace")
        except OSError:
            return ""
        tail = [line for line in text.splitlines() if line.strip()][-lines:]
        return ("; log: " + " | ".join(tail)) if tail else ""

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        self.refresh_tree()
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(_STOP_GRACE_S)
        leftovers = []
        for member in self._seen.values():
            with contextlib.suppress(psutil.Error):
                if member.is_running() and member.status() != psutil.STATUS_ZOMBIE:
                    member.kill()
                    leftovers.append(member)
        psutil.wait_procs(leftovers, timeout=_STOP_GRACE_S)
        if self._log is not None:
            self._log.close()
            self._log = None
        self.proc = None
        self._root = None
        self._seen.clear()


def _contains(words: Sequence[str], run: Sequence[str]) -> bool:
    """Whether `run` occurs as consecutive items of `words`."""
    width = len(run)
    return width > 0 and any(list(words[i : i + width]) == list(run) for i in range(len(words) - width + 1))


def rss_bytes(procs: Sequence[psutil.Process]) -> int:
    """Sum of the resident set sizes of `procs` (processes that are gone count 0)."""
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def cpu_seconds(procs: Sequence[psutil.Process]) -> float:
    """The CPU time (user + system) `procs` have used so far, each its own (not its children's); processes that are
    gone count 0."""
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def pss_bytes(procs: Sequence[psutil.Process]) -> int:
    """Sum of the proportional set sizes of `procs`: pages shared between them (a forked worker's, say) are
    counted once in all, where the RSS sum counts them in each process. 0 for processes that are gone or whose
    memory map cannot be read."""
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error, AttributeError):
            total += proc.memory_full_info().pss
    return total
