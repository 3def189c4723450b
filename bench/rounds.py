"""Rounds: the order in which the emulators run, and the statistics over the rounds.

On a shared, noisy machine a figure taken once says little, and two emulators measured one after the other see
different neighbours. So the bench runs in rounds: in each, every emulator runs the selected workloads, the
order alternating (A B, B A, A B, ...: A B B A A B ...) so that neither always goes first. A figure is the median
over the rounds, with its spread; a ratio pyrie / Go is taken within each round, where both ran close together in
time, and reported as the median of those per-round ratios with their spread.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from bench.workloads import METRICS, Metric, Result

PYRIE = "pyrie"
GO = "go"

T = TypeVar("T")


def schedule(kinds: Sequence[T], rounds: int) -> list[list[T]]:
    """The order of `kinds` in each round: as given in even rounds, reversed in odd ones."""
    return [list(kinds) if index % 2 == 0 else list(reversed(kinds)) for index in range(rounds)]


@dataclass(frozen=True)
class Spread:
    """The median of some per-round figures, with their range and quartiles."""

    median: float
    low: float
    high: float
    q1: float
    q3: float
    count: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread | None:
        if not values:
            return None
        if len(values) == 1:
            q1 = q3 = values[0]
        else:
            q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        return cls(statistics.median(values), min(values), max(values), q1, q3, len(values))


@dataclass(frozen=True)
class Series:
    """One emulator's results for one metric, round by round (None: the workload did not run that round)."""

    results: tuple[Result | None, ...]

    @property
    def values(self) -> list[float | None]:
        return [None if result is None else result.value for result in self.results]

    @property
    def spread(self) -> Spread | None:
        return Spread.of([value for value in self.values if value is not None])

    @property
    def errors(self) -> list[tuple[int, str]]:
        """(round index, error) of each round in which the workload ran and failed."""
        return [
            (index, result.error or "no value")
            for index, result in enumerate(self.results)
            if result is not None and result.value is None
        ]


@dataclass(frozen=True)
class Row:
    metric: Metric
    pyrie: Series
    go: Series | None  # None: the Go emulator was not run at all, or cannot run this metric

    @property
    def ratios(self) -> list[float | None]:
        """pyrie / Go in each round in which both have a figure."""
        if self.go is None:
            return [None] * len(self.pyrie.results)
        return [
            mine / theirs if mine is not None and theirs is not None and theirs != 0 else None
            for mine, theirs in zip(self.pyrie.values, self.go.values, strict=True)
        ]

    @property
    def ratio(self) -> Spread | None:
        return Spread.of([ratio for ratio in self.ratios if ratio is not None])

    @property
    def met(self) -> bool | None:
        """Whether the targets that can be judged are met: the absolute one on pyrie's median, the ratio one on
        the median ratio (only when the Go emulator ran). None when there is nothing to judge, or no figure."""
        verdicts: list[bool] = []
        if self.metric.target is not None:
            spread = self.pyrie.spread
            if spread is None:
                return None
            verdicts.append(self.metric.target.met(spread.median))
        if self.metric.ratio_target is not None and self.go is not None:
            ratio = self.ratio
            if ratio is None:
                return None
            verdicts.append(self.metric.ratio_target.met(ratio.median))
        return all(verdicts) if verdicts else None


def build_rows(rounds: Sequence[Mapping[str, Sequence[Result]]], *, go_ran: bool) -> list[Row]:
    """One row per metric that pyrie has a result for in some round, in the catalogue's order.

    `rounds` holds, for each round, each emulator's results by its name (PYRIE, GO)."""
    indexes = [
        {name: {(result.workload, result.key): result for result in results} for name, results in found.items()}
        for found in rounds
    ]

    def series(name: str, metric: Metric) -> Series:
        key = (metric.workload, metric.key)
        return Series(tuple(index.get(name, {}).get(key) for index in indexes))

    rows = []
    for metric in METRICS:
        mine = series(PYRIE, metric)
        if all(result is None for result in mine.results):
            continue
        theirs = series(GO, metric) if go_ran and metric.go_runs else None
        rows.append(Row(metric, mine, theirs))
    return rows
