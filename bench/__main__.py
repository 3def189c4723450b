"""pyrie's benchmarks: `python -m bench [--rounds N] [--quick] [--only NAME] [--emulator-cmd CMD]` (or `make bench`).

Runs the selected workloads in rounds against pyrie and, when the environment variable RIE_BIN names a Go
`aws-lambda-rie` binary, against it too, the two taking turns to go first (A B, B A, A B, ...). Then prints a
table (pyrie's median over the rounds, the Go emulator's, the median of the per-round ratios pyrie/Go with their
range, the target and whether it is met) and writes the same, round by round, as JSON to
bench/results/latest.json. Ratio targets are judged only when the Go emulator ran; absolute ones always.
Everything binds loopback only, every loop is bounded in count and time, and every process the bench starts is
stopped before it exits, also on failure or Ctrl-C.

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

from bench import dist, report, runtimes, workloads
from bench.emulator import Emulator, EmulatorError, EmulatorKind
from bench.profiler import FORMATS, ProfileError, Profiler, find_py_spy
from bench.rounds import GO, PYRIE, build_rows, schedule
from bench.workloads import Result, Settings

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_ROUNDS = 5
CLIENT_NOTE = "raw keep-alive socket client (bench/client.py), TCP_NODELAY, CLOCK_MONOTONIC timestamps"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark pyrie (and the Go aws-lambda-rie named by $RIE_BIN) on loopback.",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        metavar="N",
        help=f"rounds; each runs every selected workload on each emulator, which take turns going first "
        f"(default {DEFAULT_ROUNDS}, 1 with --profile)",
    )
    parser.add_argument("--quick", action="store_true", help="fewer iterations per round (for smoke tests)")
    parser.add_argument(
        "--scale",
        type=int,
        metavar="N",
        help="multiply each workload's iterations per round by N (default 1, 10 with --profile: enough samples)",
    )
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
    parser.add_argument(
        "--output",
        type=Path,
        help="where to write the JSON (default bench/results/latest.json; with --profile, DIR/results.json)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="profile pyrie's supervisor and gunicorn workers with `py-spy record --native` during each session "
        "(not spawn) and leave the files and a summary in DIR; runs pyrie only (figures slowed by the profiler)",
    )
    parser.add_argument(
        "--profile-format",
        choices=sorted(FORMATS),
        default="speedscope",
        help="py-spy's output format (default speedscope; raw is collapsed stacks, flamegraph an SVG)",
    )
    parser.add_argument("--profile-rate", type=int, default=100, metavar="HZ", help="samples per second (100)")
    parser.add_argument(
        "--dist",
        type=Path,
        metavar="FILE",
        default=os.environ.get("PYRIE_DIST_FILE") or None,
        help="also time the single executable file (`make dist`) at spawn, beside pyrie and the Go emulator "
        "(bench/dist.py; default $PYRIE_DIST_FILE)",
    )
    parser.add_argument(
        "--ready-timeout", type=float, default=None, help="seconds to wait for an emulator's first answer (15)"
    )
    args = parser.parse_args(argv)
    selected: list[str] = []
    for item in args.only or [",".join(workloads.WORKLOAD_NAMES)]:
        for word in filter(None, (part.strip() for part in item.split(","))):
            name = workloads.WORKLOAD_ALIASES.get(word, word)
            if name not in workloads.WORKLOAD_NAMES:
                parser.error(f"unknown workload {name!r}; choose from {', '.join(workloads.WORKLOAD_NAMES)}")
            if name not in selected:
                selected.append(name)
    if not selected:
        parser.error("--only needs at least one workload name")
    args.selected = [name for name in workloads.WORKLOAD_NAMES if name in selected]
    if args.rounds is None:
        args.rounds = 1 if args.profile is not None else DEFAULT_ROUNDS
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.scale is None:
        args.scale = 10 if args.profile is not None else 1
    if args.scale < 1:
        parser.error("--scale must be at least 1")
    if args.output is None:
        args.output = RESULTS_DIR / "latest.json" if args.profile is None else args.profile / "results.json"
    if args.profile is not None:
        args.py_spy = find_py_spy()
        if args.py_spy is None:
            parser.error("--profile needs py-spy: `make install` installs it (the dev extras)")
        if args.profile_rate < 1:
            parser.error("--profile-rate must be positive")
    if args.dist is not None and not os.access(args.dist, os.X_OK):
        parser.error(f"--dist: {args.dist} is not an executable file (build it with `make dist`)")
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
    """Runs the selected workloads against one emulator kind, one round at a time."""

    def __init__(self, settings: Settings, workdir: Path, bootstrap: Path, profiler: Profiler | None) -> None:
        self.settings = settings
        self.workdir = workdir
        self.bootstrap = bootstrap
        self.profiler = profiler  # attached to pyrie's processes during each session
        self.round = 0  # the current round's index, for labels

    def make(self, kind: EmulatorKind, label: str) -> Emulator:
        return Emulator(
            kind,
            [str(self.bootstrap)],
            self.workdir,
            runtime_argv=runtimes.runtime_argv(str(self.bootstrap)),
            label=f"{kind.name}-r{self.round + 1}-{label}",
        )

    def guarded(
        self,
        who: str,
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
        tag = f"[round {self.round + 1} {who}]"
        progress(f"{tag} {name} ...")
        try:
            results = run()
        except Exception as exc:  # one failing workload must not stop the others
            error = workloads.describe(exc)
            if emu is not None and emu.proc is not None and emu.proc.poll() is not None:
                error += f" (the emulator exited with status {emu.proc.returncode}{emu.log_excerpt()})"
            progress(f"{tag} {name} failed: {error}")
            return workloads.failed(workload or name, error, keys)
        progress(f"{tag} {name} done in {time.monotonic() - started:.1f} s")
        return results

    def run(self, kind: EmulatorKind, selected: Sequence[str]) -> list[Result]:
        """One round of the selected workloads on `kind` (those it can run)."""
        results: list[Result] = []
        if "spawn" in selected:
            results += self.guarded(
                kind.name, "spawn", lambda: workloads.spawn(lambda label: self.make(kind, label), self.settings)
            )
        session = [name for name in selected if name in workloads.SESSION_WORKLOADS or name == "memory"]
        if kind.name != PYRIE:
            session = [name for name in session if name not in workloads.PYRIE_ONLY]
        if not session:
            return results
        with self.make(kind, "session") as emu:
            try:
                emu.start()
                emu.wait_until_answers(self.settings.ready_timeout)
            except EmulatorError as exc:
                progress(f"[round {self.round + 1} {kind.name}] emulator not usable: {exc}")
                for name in session:
                    results += workloads.failed(name, f"emulator not usable: {exc}")
                return results
            if self.profiler is None or kind.name != PYRIE:
                return results + self.session(kind, emu, session)
            try:
                try:
                    self.profiler.attach(emu, f"r{self.round + 1}")
                except ProfileError as exc:
                    progress(f"[round {self.round + 1} {kind.name}] not profiled: {exc}")
                results += self.session(kind, emu, session)
            finally:
                self.profiler.detach()
        return results

    def session(self, kind: EmulatorKind, emu: Emulator, session: Sequence[str]) -> list[Result]:
        results: list[Result] = []
        # The memory figures that need a fresh emulator come first: the idle RSS after start-up, and the
        # stream's RSS growth, which earlier big buffered responses would hide (their freed memory is reused).
        memory = "memory" in session
        if memory:
            stream = kind.name == PYRIE  # the Go emulator refuses the 100 MiB stream

            def fresh() -> list[Result]:
                found = [workloads.memory_idle(emu, "idle")]
                if stream:
                    found.append(workloads.memory_stream(emu, self.settings))
                return found

            keys = ("idle", "stream_peak") if stream else ("idle",)
            results += self.guarded(kind.name, "memory (fresh)", fresh, emu, workload="memory", keys=keys)
        for name in session:
            if name != "memory":
                workload = workloads.SESSION_WORKLOADS[name]
                results += self.guarded(kind.name, name, functools.partial(workload, emu, self.settings), emu)
        if memory:
            results += self.guarded(
                kind.name,
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
    for name in (PYRIE, GO):
        for old in logs.glob(f"{name}-*.log"):
            old.unlink()
    for name in names:
        for log in workdir.glob(f"{name}-*.log"):
            shutil.copy(log, logs / log.name)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    settings = Settings.for_mode(args.quick).scaled(args.scale)
    if args.ready_timeout is not None:
        settings = dataclasses.replace(settings, ready_timeout=args.ready_timeout)
    kinds = [EmulatorKind(PYRIE, pyrie_command(args.emulator_cmd))]
    go = go_command()
    profiler = None
    if args.profile is not None:
        profiler = Profiler(args.profile.resolve(), args.py_spy, args.profile_format, args.profile_rate)
        if go is not None:
            progress("--profile: pyrie only, the Go emulator is not run")
            go = None
        if "spawn" in args.selected:
            progress("--profile: spawn is measured but not profiled (try `python -X importtime -m supervisor`)")
    if go is not None:
        kinds.append(EmulatorKind(GO, go))
    order = schedule(kinds, args.rounds)
    rounds: list[dict[str, list[Result]]] = []
    figures = None  # the single file's (bench/dist.py), with --dist

    # Not "pyrie-...": a pyrie starting removes directories of that name in the temporary directory it takes for
    # abandoned socket directories (supervisor/frontend_link/socket_directory.py).
    with tempfile.TemporaryDirectory(prefix="bench-of-pyrie-") as tmp:
        workdir = Path(tmp)
        bootstrap = workdir / "bootstrap"
        bootstrap.write_text(runtimes.bootstrap_source(sys.executable), encoding="utf-8")
        bootstrap.chmod(0o755)
        runner = Runner(settings, workdir, bootstrap, profiler)
        try:
            for index, turn in enumerate(order):
                runner.round = index
                progress(f"round {index + 1} of {len(order)}: {' then '.join(kind.name for kind in turn)}")
                found: dict[str, list[Result]] = {kind.name: [] for kind in kinds}
                if "client" in args.selected:  # no emulator: the client's own floor, filed with pyrie's figures
                    found[PYRIE] += runner.guarded("client", "client", lambda: workloads.client_overhead(settings))
                for kind in turn:
                    found[kind.name] += runner.run(kind, args.selected)
                rounds.append(found)
            if args.dist is not None and "spawn" in args.selected:
                progress(f"single file: {args.dist}")
                figures = dist.measure(
                    args.dist.resolve(),
                    kinds[0].command,
                    go,
                    workdir=workdir,
                    bootstrap=bootstrap,
                    settings=settings,
                    rounds=args.rounds,
                    progress=progress,
                )
        finally:
            _keep_logs(workdir, args.output.parent / "logs", [kind.name for kind in kinds])

    names = [[kind.name for kind in turn] for turn in order]
    rows = build_rows(rounds, go_ran=go is not None)
    print(report.render_table(rows, order=names, go_ran=go is not None, profiled=profiler is not None))
    document = report.to_json(
        rows,
        order=names,
        commands={PYRIE: kinds[0].command, GO: go},
        quick=settings.quick,
        scale=args.scale,
        selected=args.selected,
        client_note=CLIENT_NOTE,
        profile=None if profiler is None else profiler.directory,
    )
    if figures is not None:
        print("\n" + dist.render(figures))
        document["dist"] = figures
    report.write_json(args.output, document)
    print(f"\nwritten {args.output} (emulator logs in {args.output.parent / 'logs'})")
    if profiler is not None:
        summary = profiler.summary()
        path = profiler.directory / "summary.txt"
        path.write_text(summary + "\n", encoding="utf-8")
        print(f"\nprofiles in {profiler.directory} (summary in {path}):")
        print(profiler.summary(top=6) if profiler.recordings else "none: py-spy did not attach (see above)")
    pyrie_failed = any(result.value is None for found in rounds for result in found[PYRIE])
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
