"""pyrie's benchmarks: `python -m bench [--quick] [--only NAME] [--emulator-cmd CMD]` (or `make bench`).

Runs each workload against pyrie and, when the environment variable RIE_BIN names a Go `aws-lambda-rie` binary,
against it too, then prints a table (pyrie's figure, its target, the Go figure and the ratio pyrie/Go) and writes
the same as JSON to bench/results/latest.json. Everything binds loopback only, every loop is bounded in count and
time, and every process the bench starts is stopped before it exits, also on failure or Ctrl-C.

Exit status: 0 when pyrie produced every selected figure (targets missed or not), 1 when some pyrie workload
failed (the table and the JSON say why), 2 on bad arguments, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from bench import report, runtimes, workloads
from bench.emulator import Emulator, EmulatorError, EmulatorKind
from bench.workloads import Result, Settings

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CLIENT_NOTE = "raw keep-alive socket client (bench/client.py), TCP_NODELAY, CLOCK_MONOTONIC timestamps"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark pyrie (and the Go aws-lambda-rie named by $RIE_BIN) on loopback.",
    )
    parser.add_argument("--quick", action="store_true", help="fewer iterations (for smoke tests)")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"run only these workloads (repeat or comma-separate): {', '.join(workloads.WORKLOAD_NAMES)}",
    )
    parser.add_argument(
        "--emulator-cmd",
        metavar="CMD",
        help="command that starts pyrie, split like a shell would (default: the pyrie beside this Python, "
        "else `python -m supervisor`)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "latest.json", help="where to write the JSON")
    parser.add_argument(
        "--ready-timeout", type=float, default=None, help="seconds to wait for an emulator's first answer (15)"
    )
    args = parser.parse_args(argv)
    selected: list[str] = []
    for item in args.only or [",".join(workloads.WORKLOAD_NAMES)]:
        for name in filter(None, (part.strip() for part in item.split(","))):
            if name not in workloads.WORKLOAD_NAMES:
                parser.error(f"unknown workload {name!r}; choose from {', '.join(workloads.WORKLOAD_NAMES)}")
            if name not in selected:
                selected.append(name)
    if not selected:
        parser.error("--only needs at least one workload name")
    args.selected = [name for name in workloads.WORKLOAD_NAMES if name in selected]
    if args.ready_timeout is not None and args.ready_timeout <= 0:
        parser.error("--ready-timeout must be positive")
    if args.emulator_cmd is not None:
        try:
            words = shlex.split(args.emulator_cmd)
        except ValueError as exc:
            parser.error(f"--emulator-cmd: {exc}")
        if not words:
            parser.error("--emulator-cmd is empty")
    return args


def _absolute(command: Sequence[str]) -> tuple[str, ...]:
    """The command with a relative program path made absolute (emulators run in a temporary directory)."""
    program, *rest = command
    if os.sep in program and not os.path.isabs(program):
        program = os.path.abspath(program)
    return (program, *rest)


def pyrie_command(override: str | None) -> tuple[str, ...]:
    if override:
        return _absolute(shlex.split(override))
    beside = Path(sys.executable).with_name("pyrie")
    if beside.exists():
        return (str(beside),)
    return (sys.executable, "-m", "supervisor")


def go_command() -> tuple[str, ...] | None:
    rie = os.environ.get("RIE_BIN", "").strip()
    return _absolute([rie]) if rie else None


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Runner:
    """Runs the selected workloads against one emulator kind."""

    def __init__(self, settings: Settings, workdir: Path, bootstrap: Path) -> None:
        self.settings = settings
        self.workdir = workdir
        self.bootstrap = bootstrap

    def make(self, kind: EmulatorKind, label: str) -> Emulator:
        return Emulator(
            kind,
            [str(self.bootstrap)],
            self.workdir,
            runtime_argv=runtimes.runtime_argv(str(self.bootstrap)),
            label=f"{kind.name}-{label}",
        )

    def guarded(
        self,
        kind: EmulatorKind,
        name: str,
        run: Callable[[], list[Result]],
        emu: Emulator | None = None,
        *,
        workload: str = "",
        keys: Sequence[str] = (),
    ) -> list[Result]:
        """Run one step; if it raises, its metrics (those of `workload` named in `keys`, default all) get the
        error and the run goes on."""
        started = time.monotonic()
        progress(f"[{kind.name}] {name} ...")
        try:
            results = run()
        except Exception as exc:  # one failing workload must not stop the others
            error = workloads.describe(exc)
            if emu is not None and emu.proc is not None and emu.proc.poll() is not None:
                error += f" (the emulator exited with status {emu.proc.returncode}{emu.log_excerpt()})"
            progress(f"[{kind.name}] {name} failed: {error}")
            return workloads.failed(workload or name, error, keys)
        progress(f"[{kind.name}] {name} done in {time.monotonic() - started:.1f} s")
        return results

    def run(self, kind: EmulatorKind, selected: Sequence[str]) -> list[Result]:
        results: list[Result] = []
        if "spawn" in selected:
            results += self.guarded(
                kind, "spawn", lambda: workloads.spawn(lambda label: self.make(kind, label), self.settings)
            )
        session = [name for name in selected if name in workloads.SESSION_WORKLOADS or name == "memory"]
        if kind.name != report.PYRIE:
            session = [name for name in session if name not in workloads.PYRIE_ONLY]
        if not session:
            return results
        with self.make(kind, "session") as emu:
            try:
                emu.start()
                emu.wait_until_answers(self.settings.ready_timeout)
            except EmulatorError as exc:
                progress(f"[{kind.name}] emulator not usable: {exc}")
                for name in session:
                    results += workloads.failed(name, f"emulator not usable: {exc}")
                return results
            # The memory figures that need a fresh emulator come first: the idle RSS after start-up, and the
            # stream's RSS growth, which earlier big buffered responses would hide (their freed memory is reused).
            memory = "memory" in session
            if memory:
                results += self.guarded(
                    kind,
                    "memory (fresh)",
                    lambda: [workloads.memory_idle(emu, "idle"), workloads.memory_stream(emu, self.settings)],
                    emu,
                    workload="memory",
                    keys=("idle", "stream_peak"),
                )
            for name in session:
                if name != "memory":
                    workload = workloads.SESSION_WORKLOADS[name]
                    results += self.guarded(kind, name, functools.partial(workload, emu, self.settings), emu)
            if memory:
                results += self.guarded(
                    kind,
                    "memory (after)",
                    lambda: [workloads.memory_idle(emu, "after")],
                    emu,
                    workload="memory",
                    keys=("after",),
                )
        return results


def _keep_logs(workdir: Path, logs: Path, names: Sequence[str]) -> None:
    """Copy this run's emulator logs to `logs`, replacing the previous run's (and only those)."""
    logs.mkdir(parents=True, exist_ok=True)
    for name in (report.PYRIE, report.GO):
        for old in logs.glob(f"{name}-*.log"):
            old.unlink()
    for name in names:
        for log in workdir.glob(f"{name}-*.log"):
            shutil.copy(log, logs / log.name)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    settings = Settings.for_mode(args.quick)
    if args.ready_timeout is not None:
        settings = dataclasses.replace(settings, ready_timeout=args.ready_timeout)
    kinds = [EmulatorKind(report.PYRIE, pyrie_command(args.emulator_cmd))]
    go = go_command()
    if go is not None:
        kinds.append(EmulatorKind(report.GO, go))
    results: dict[str, list[Result]] = {kind.name: [] for kind in kinds}

    with tempfile.TemporaryDirectory(prefix="pyrie-bench-") as tmp:
        workdir = Path(tmp)
        bootstrap = workdir / "bootstrap"
        bootstrap.write_text(runtimes.bootstrap_source(sys.executable), encoding="utf-8")
        bootstrap.chmod(0o755)
        runner = Runner(settings, workdir, bootstrap)
        try:
            if "client" in args.selected:
                kind = kinds[0]
                results[report.PYRIE] += runner.guarded(kind, "client", lambda: workloads.client_overhead(settings))
            for kind in kinds:
                results[kind.name] += runner.run(kind, args.selected)
        finally:
            _keep_logs(workdir, args.output.parent / "logs", [kind.name for kind in kinds])

    rows = report.build_rows(results)
    print(report.render_table(rows, go_ran=go is not None))
    document = report.to_json(
        rows,
        commands={report.PYRIE: kinds[0].command, report.GO: go},
        quick=settings.quick,
        selected=args.selected,
        client_note=CLIENT_NOTE,
    )
    report.write_json(args.output, document)
    print(f"\nwritten {args.output} (emulator logs in {args.output.parent / 'logs'})")
    pyrie_failed = any(result.value is None for result in results[report.PYRIE])
    return 1 if pyrie_failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run(args)
    except KeyboardInterrupt:
        progress("interrupted: every process the bench started has been stopped")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
