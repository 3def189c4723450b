"""No process an environment started outlives it or pyrie, however it detached: ``supervisor.processes.containment``
with real processes.

It runs in a process of its own (``tests/containment_probe.py``: a gevent loop and the child subreaper flag, as in
the supervisor), once with cgroups where this machine offers them and once with the owner mark alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import psutil
import pytest

from supervisor.processes.process_census import _ParentMap, children, descendants
from supervisor.processes.process_tree import ProcessTreeMemory
from tests.cpu_wait import assert_on_time
from tests.harness import ROOT

BACKENDS = ["cgroup", "mark"]


def probe(scenario: str, backend: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "tests.containment_probe", scenario, backend],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    outcome: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    for pid in outcome.get("pids", {}).values():  # what containment should have ended: never left for long
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if "skip" in outcome:
        pytest.skip(outcome["skip"])
    return outcome


# --- an environment's processes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_ending_an_environment_ends_what_got_away(backend: str) -> None:
    outcome = probe("end", backend)
    supervisor = outcome["supervisor"]
    assert outcome["parents"]["double-fork"] == supervisor  # an orphan, handed to the child subreaper
    assert outcome["parents"]["wiped"] == supervisor
    assert outcome["parents"]["setsid"] == outcome["parents"]["wiped-child"] == outcome["pids"]["runtime"]
    # Its members: however they detached; a child that wiped its environment counts as its parent's.
    caught = ["runtime", "setsid", "double-fork", "wiped-child"]
    if backend == "cgroup":
        caught.append("wiped")  # the orphan that wiped its environment too: only the cgroup holds it
    assert {kind for kind, member in outcome["members"].items() if member} == set(caught)
    if backend == "cgroup":  # each joined it: the runtime after its exec, the rest by starting inside
        assert {kind for kind, inside in outcome["in_cgroup"].items() if inside} == set(caught)
    assert outcome["end"] is True
    # 0.2 s of grace at most, and they all take SIGTERM (give or take what the machine waited for a CPU)
    assert_on_time("the environment's end", outcome["took"], 1.0, outcome["waited"])
    assert not [kind for kind in caught if outcome["alive"][kind]]
    assert outcome["neighbour_alive"]  # another environment's process is left alone
    assert outcome["memory_mb"] > 0  # the members' memory, through the same membership
    assert not outcome["cgroup_left"]
    assert outcome["cgroup_removed"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_ending_an_environment_as_it_starts_a_process_kills_that_process(backend: str) -> None:
    outcome = probe("end-around-a-spawn", backend)
    assert outcome["started_before_end"] == 1  # starting a process does not yield: end() found it exec'd
    assert outcome["end"] is True
    # the first ended by end()'s SIGTERM, the one started after end() killed as soon as it existed
    assert outcome["exit"] == [-signal.SIGTERM, -signal.SIGKILL]
    assert outcome["alive"] == [False, False]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_last_sweep_ends_orphans_that_belong_to_no_environment(backend: str) -> None:
    outcome = probe("end-all", backend)
    assert outcome["parents"]["double-fork"] == outcome["supervisor"]
    assert outcome["count"] == 5
    assert not [kind for kind, alive in outcome["alive"].items() if alive]
    assert outcome["cgroup_removed"]


# --- a runtime's own tree ------------------------------------------------------------------------------------------


def test_a_runtimes_tree_is_walked_down_from_it_as_psutil_finds_it_by_scanning() -> None:
    """``children``/``descendants`` (and so ``ProcessTreeMemory.processes``, the processes a runtime's stop signals,
    and the workers a concurrent runtime's connection is traced to) read ``/proc/PID/task/TID/children`` rather than
    every process on the machine, and find what psutil's scan finds."""

    class NoMembers:
        def pids(self, fresh: bool = False) -> list[int]:
            return []

    script = "sh -c 'sleep 60 & sleep 60 & wait' & sleep 60 & echo ready; wait"
    process = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        root = psutil.Process(process.pid)
        deadline = time.monotonic() + 10
        while len(root.children(recursive=True)) < 4:  # the inner shell's two sleeps may still be forking
            assert time.monotonic() < deadline
            time.sleep(0.01)
        scanned = {child.pid for child in root.children(recursive=True)}
        direct = {child.pid for child in root.children()}
        assert len(scanned) == 4 and len(direct) == 2
        assert set(children(process.pid)) == direct == set(_ParentMap().children(process.pid))
        assert set(descendants(process.pid)) == scanned
        tree = ProcessTreeMemory(process.pid, NoMembers())
        assert {found.pid for found in tree.processes()} == scanned | {process.pid}
    finally:
        for found in psutil.Process(process.pid).children(recursive=True):
            found.kill()
        process.kill()
        process.wait()
