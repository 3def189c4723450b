"""The single executable file (`make dist`) beside pyrie from its virtual environment and the Go emulator: spawn ->
first answered invoke, in rounds whose order rotates.

The file unpacks itself once per machine or container into $TMPDIR (packaging/launcher.c), so each of its cold
starts gets a TMPDIR of its own, fresh and empty, as in a new container; its warm start is a second start with the
same TMPDIR, which reuses what the first unpacked. The target: the cold start at most 1.5 times pyrie's own.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import runtimes
from bench.emulator import Emulator, EmulatorError, EmulatorKind
from bench.rounds import Spread
from bench.workloads import Settings

RATIO_TARGET = 1.5
VENV, COLD, WARM, GO = "pyrie (venv)", "file, first start", "file, second start", "Go"


def _sample(kind: EmulatorKind, workdir: Path, bootstrap: Path, settings: Settings, env: dict[str, str]) -> float:
    with Emulator(
        kind,
        [str(bootstrap)],
        workdir,
        runtime_argv=runtimes.runtime_argv(str(bootstrap)),
        env=env,
        label=f"{kind.name}-spawn",
    ) as emu:
        emu.start()
        return emu.wait_until_answers(settings.ready_timeout) * 1e3


def measure(
    dist_file: Path,
    pyrie: Sequence[str],
    go: Sequence[str] | None,
    *,
    workdir: Path,
    bootstrap: Path,
    settings: Settings,
    rounds: int,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Each round: every kind once per spawn run, the kinds taking turns to go first. Returns the figures (ms)."""
    samples: dict[str, list[list[float]]] = {VENV: [], COLD: [], WARM: []}
    if go is not None:
        samples[GO] = []
    errors: list[str] = []
    kinds = list(samples)
    for index in range(rounds):
        order = kinds[index % len(kinds) :] + kinds[: index % len(kinds)]
        found: dict[str, list[float]] = {name: [] for name in kinds}
        for _ in range(settings.spawn_runs):
            for name in order:
                if name == WARM:
                    continue  # measured right after its cold start, with the same TMPDIR
                try:
                    if name == COLD:
                        tmp = Path(tempfile.mkdtemp(prefix="tmpdir-", dir=workdir))
                        try:
                            env = {**os.environ, "TMPDIR": str(tmp)}
                            kind = EmulatorKind("dist", (str(dist_file),))
                            found[COLD].append(_sample(kind, workdir, bootstrap, settings, env))
                            found[WARM].append(_sample(kind, workdir, bootstrap, settings, env))
                        finally:
                            shutil.rmtree(tmp, ignore_errors=True)
                    else:
                        command = tuple(pyrie) if name == VENV else tuple(go or ())
                        kind = EmulatorKind("pyrie" if name == VENV else "go", command)
                        found[name].append(_sample(kind, workdir, bootstrap, settings, dict(os.environ)))
                except EmulatorError as exc:
                    errors.append(f"round {index + 1} {name}: {exc}")
                    progress(f"[dist round {index + 1}] {name} failed: {exc}")
        for name in kinds:
            samples[name].append(found[name])
        progress(f"[dist round {index + 1}] " + ", ".join(f"{n} {_median(found[n])}" for n in kinds))

    def per_round_ratio(mine: str, theirs: str) -> Spread | None:
        ratios = [
            statistics.median(a) / statistics.median(b)
            for a, b in zip(samples[mine], samples[theirs], strict=True)
            if a and b
        ]
        return Spread.of(ratios)

    medians = {name: _flat_median(rounds_of) for name, rounds_of in samples.items()}
    ratios = {f"{COLD} / {VENV}": per_round_ratio(COLD, VENV), f"{WARM} / {VENV}": per_round_ratio(WARM, VENV)}
    if go is not None:
        ratios[f"{COLD} / {GO}"] = per_round_ratio(COLD, GO)
        ratios[f"{VENV} / {GO}"] = per_round_ratio(VENV, GO)
    cold = ratios[f"{COLD} / {VENV}"]
    return {
        "file": str(dist_file),
        "size_bytes": dist_file.stat().st_size,
        "spawn_ms": {name: rounds_of for name, rounds_of in samples.items()},
        "median_ms": medians,
        "ratios": {name: None if spread is None else spread.median for name, spread in ratios.items()},
        "ratio_ranges": {
            name: None if spread is None else [spread.low, spread.high] for name, spread in ratios.items()
        },
        "target": f"{COLD} / {VENV} <= {RATIO_TARGET}",
        "met": None if cold is None else cold.median <= RATIO_TARGET,
        "errors": errors,
    }


def _median(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.0f} ms" if values else "-"


def _flat_median(rounds_of: Sequence[Sequence[float]]) -> float | None:
    values = [value for found in rounds_of for value in found]
    return statistics.median(values) if values else None


def render(figures: dict[str, Any]) -> str:
    lines = [
        f"single file {figures['file']} ({figures['size_bytes'] / 1e6:.1f} MB): spawn -> first answered invoke, "
        "median over all rounds",
    ]
    for name, value in figures["median_ms"].items():
        lines.append(f"  {name:<22} {'-' if value is None else f'{value:.0f} ms'}")
    for name, value in figures["ratios"].items():
        low, high = figures["ratio_ranges"][name] or (None, None)
        shown = "-" if value is None else f"{value:.2f}x (per round {low:.2f}-{high:.2f})"
        lines.append(f"  {name:<38} {shown}")
    verdict = {True: "met", False: "MISSED", None: "not judged"}[figures["met"]]
    lines.append(f"  target {figures['target']}: {verdict}")
    lines.extend(f"  error: {error}" for error in figures["errors"])
    return "\n".join(lines)
