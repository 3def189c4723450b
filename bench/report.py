"""The bench's output: a plain-text table for people and a JSON document for tools."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.workloads import METRICS, Metric, Result

PYRIE = "pyrie"
GO = "go"


@dataclass(frozen=True)
class Row:
    metric: Metric
    pyrie: Result | None
    go: Result | None

    @property
    def met(self) -> bool | None:
        if self.metric.target is None or self.pyrie is None or self.pyrie.value is None:
            return None
        return self.metric.target.met(self.pyrie.value)

    @property
    def ratio(self) -> float | None:
        if self.pyrie is None or self.go is None or self.pyrie.value is None or self.go.value is None:
            return None
        if self.go.value == 0:
            return None
        return self.pyrie.value / self.go.value


def build_rows(results: Mapping[str, Sequence[Result]]) -> list[Row]:
    """One row per metric that any emulator has a result for, in the catalogue's order."""
    index = {name: {(r.workload, r.key): r for r in found} for name, found in results.items()}
    rows = []
    for metric in METRICS:
        key = (metric.workload, metric.key)
        pyrie = index.get(PYRIE, {}).get(key)
        go = index.get(GO, {}).get(key)
        if pyrie is not None or go is not None:
            rows.append(Row(metric, pyrie, go))
    return rows


def format_value(value: float, unit: str) -> str:
    if unit == "ms":
        text = f"{value:.3f}" if value < 10 else f"{value:.1f}"
    elif unit in ("s", "MiB", "x"):
        text = f"{value:.3f}"
    else:
        text = f"{value:.1f}" if value < 1000 else f"{value:.0f}"
    return f"{text} {unit}"


def _cell(result: Result | None, unit: str, notes: list[str]) -> str:
    if result is None:
        return "-"
    if result.value is None:
        note = result.error or "no value"
        if note not in notes:
            notes.append(note)
        return f"error [{notes.index(note) + 1}]"
    return format_value(result.value, unit)


def render_table(rows: Sequence[Row], *, go_ran: bool) -> str:
    notes: list[str] = []
    header = ["workload", "metric", "pyrie", "target", "met", "Go", "pyrie/Go"]
    body = []
    for row in rows:
        unit = row.metric.unit
        target = f"{row.metric.target} {unit}" if row.metric.target else "-"
        met = "-" if row.met is None else ("yes" if row.met else "NO")
        go = _cell(row.go, unit, notes) if go_ran else "not run"
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
        body.append([row.metric.workload, row.metric.label, _cell(row.pyrie, unit, notes), target, met, go, ratio])
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    right = {2, 5, 6}

    def fmt(line: Sequence[str]) -> str:
        cells = [
            cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    lines = [fmt(header), fmt(["-" * w for w in widths]), *(fmt(line) for line in body)]
    if notes:
        lines.append("")
        lines += [f"[{i}] {note}" for i, note in enumerate(notes, 1)]
    if not go_ran:
        lines += ["", "Go emulator not run: set RIE_BIN to an aws-lambda-rie binary to compare."]
    return "\n".join(lines)


def _result_json(result: Result | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {"value": result.value, "error": result.error, "detail": result.detail}


def to_json(
    rows: Sequence[Row],
    *,
    commands: Mapping[str, Sequence[str] | None],
    quick: bool,
    selected: Sequence[str],
    client_note: str,
) -> dict[str, Any]:
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "workloads": list(selected),
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
        "emulators": {name: (list(cmd) if cmd is not None else None) for name, cmd in commands.items()},
        "client": client_note,
        "results": [
            {
                "workload": row.metric.workload,
                "metric": row.metric.key,
                "label": row.metric.label,
                "unit": row.metric.unit,
                "target": (
                    {"op": row.metric.target.op, "value": row.metric.target.value} if row.metric.target else None
                ),
                "met": row.met,
                PYRIE: _result_json(row.pyrie),
                GO: _result_json(row.go),
                "ratio_pyrie_go": row.ratio,
            }
            for row in rows
        ],
    }


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
