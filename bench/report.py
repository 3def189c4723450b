"""The bench's output: a plain-text table for people and a JSON document for tools."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.rounds import GO, PYRIE, Row, Series, Spread
from bench.workloads import Target


def format_value(value: float, unit: str) -> str:
    if unit == "ms":
        text = f"{value:.2f}" if value < 10 else f"{value:.1f}"
    elif unit == "x":
        text = f"{value:.3f}"
    elif unit == "MiB":
        text = f"{value:.1f}"
    else:  # us, MB/s, /s, %
        text = f"{value:.1f}" if value < 100 else f"{value:.0f}"
    return f"{text} {unit}"


class Notes:
    """Footnotes of the table, numbered in order of first use, each text once."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def mark(self, text: str) -> str:
        if text not in self.texts:
            self.texts.append(text)
        return f"[{self.texts.index(text) + 1}]"


def _series_cell(series: Series, who: str, unit: str, notes: Notes) -> str:
    spread = series.spread
    cell = format_value(spread.median, unit) if spread is not None else ("error" if series.errors else "-")
    by_error: dict[str, list[int]] = {}
    for index, error in series.errors:
        by_error.setdefault(error, []).append(index + 1)
    for error, rounds in by_error.items():
        which = ", ".join(str(number) for number in rounds)
        cell += " " + notes.mark(f"{who}: failed in round{'s' if len(rounds) > 1 else ''} {which}: {error}")
    return cell


def _target_cell(row: Row) -> str:
    parts = []
    if row.metric.target is not None:
        parts.append(f"{row.metric.target} {row.metric.unit}")
    if row.metric.ratio_target is not None:
        parts.append(f"ratio {row.metric.ratio_target}")
    return ", ".join(parts) or "-"


def _ratio_cell(ratio: Spread | None) -> str:
    if ratio is None:
        return "-"
    return f"{ratio.median:.2f} [{ratio.low:.2f}-{ratio.high:.2f}]"


def render_table(rows: Sequence[Row], *, order: Sequence[Sequence[str]], go_ran: bool, profiled: bool) -> str:
    notes = Notes()
    header = ["workload", "metric", "pyrie", "Go", "pyrie/Go [min-max]", "target", "met"]
    body = []
    for row in rows:
        unit = row.metric.unit
        if not go_ran:
            go = "not run"
        elif row.go is None:
            go = "n/a"
        else:
            go = _series_cell(row.go, "Go emulator", unit, notes)
        met = "-" if row.met is None else ("yes" if row.met else "NO")
        pyrie = _series_cell(row.pyrie, PYRIE, unit, notes)
        body.append([row.metric.workload, row.metric.label, pyrie, go, _ratio_cell(row.ratio), _target_cell(row), met])
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    right = {2, 3, 4}

    def fmt(line: Sequence[str]) -> str:
        cells = [
            cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rounds = " | ".join(" ".join(names) for names in order)
    lines = [
        f"{len(order)} round{'s' if len(order) != 1 else ''} ({rounds}); figures are medians over the rounds, "
        "ratios the median of the per-round ratios [their range]",
        "",
        fmt(header),
        fmt(["-" * w for w in widths]),
        *(fmt(line) for line in body),
    ]
    if notes.texts:
        lines.append("")
        lines += [f"[{i}] {note}" for i, note in enumerate(notes.texts, 1)]
    if not go_ran:
        lines += [
            "",
            "Go emulator not run: ratios and ratio targets need it (RIE_BIN=/path/to/aws-lambda-rie make bench).",
        ]
    if profiled:
        lines += ["", "Taken under py-spy: these figures are slowed by the profiler, not for comparison."]
    return "\n".join(lines)


def _target_json(target: Target | None) -> dict[str, Any] | None:
    return None if target is None else {"op": target.op, "value": target.value}


def _spread_json(spread: Spread | None) -> dict[str, Any]:
    if spread is None:
        return {"median": None}
    return {
        "median": spread.median,
        "min": spread.low,
        "max": spread.high,
        "q1": spread.q1,
        "q3": spread.q3,
        "n": spread.count,
    }


def _series_json(series: Series | None) -> dict[str, Any] | None:
    if series is None:
        return None
    return {
        **_spread_json(series.spread),
        "rounds": [
            None if result is None else {"value": result.value, "error": result.error, "detail": result.detail}
            for result in series.results
        ],
    }


def to_json(
    rows: Sequence[Row],
    *,
    order: Sequence[Sequence[str]],
    commands: Mapping[str, Sequence[str] | None],
    quick: bool,
    scale: int,
    selected: Sequence[str],
    client_note: str,
    profile: Path | None,
) -> dict[str, Any]:
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "scale": scale,
        "rounds": len(order),
        "order": [list(names) for names in order],
        "workloads": list(selected),
        "profile_dir": None if profile is None else str(profile),
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
                "target": _target_json(row.metric.target),
                "ratio_target": _target_json(row.metric.ratio_target),
                "met": row.met,
                PYRIE: _series_json(row.pyrie),
                GO: _series_json(row.go),
                "ratio_pyrie_go": (None if row.go is None else {**_spread_json(row.ratio), "rounds": row.ratios}),
            }
            for row in rows
        ],
    }


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
