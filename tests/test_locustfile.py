"""deploy/locustfile.py against a real pyrie: a few seconds of load, bounded, on loopback only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import StartPyrie
from tests.harness import ROOT

EXAMPLES = ROOT / "examples"
LOCUST = Path(sys.executable).parent / "locust"
NAMES = {"invoke", "invoke (DryRun)", "invoke (unknown function)", "healthz"}
# At the end of --run-time, each user finishes the invoke it is in (an SSE invoke takes 2 s): on a loaded machine the
# first may still be running then, and an invoke cut short is not counted.
STOP = ["--stop-timeout", "30"]


def run_locust(*args: str, env: dict[str, str], cwd: Path) -> dict[str, dict]:
    result = subprocess.run(
        [
            str(LOCUST),
            "-f",
            str(ROOT / "deploy" / "locustfile.py"),
            "--headless",
            "--only-summary",
            "--json",
            *STOP,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, **env},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    stats = {entry["name"]: entry for entry in json.loads(result.stdout)}
    failures = {name: entry["num_failures"] for name, entry in stats.items() if entry["num_failures"]}
    assert not failures, result.stderr[-2000:]
    return stats


@pytest.mark.parametrize(
    ("example", "how"),
    [("python-sse", "by-url"), ("python-buffered", "by-host")],
)
def test_the_locustfile_loads_pyrie_without_failures(start_pyrie: StartPyrie, tmp_path, example, how):
    pyrie = start_pyrie("--max-concurrency", "2", "app.handler", cwd=EXAMPLES / example)
    # one caller per environment, so they are never all busy (no 429)
    if how == "by-url":  # as in the compose stack: the user class's own URL
        args = ["--users", "1", "--spawn-rate", "1", "--run-time", "3s", "PythonStreamingFunction"]
        stats = run_locust(*args, env={"PYTHON_FUNCTION_URL": pyrie.url}, cwd=tmp_path)
    else:  # every user class sent to one pyrie, as the README's load test does
        args = ["--users", "2", "--spawn-rate", "2", "--run-time", "3s", "--host", pyrie.url]
        stats = run_locust(*args, env={}, cwd=tmp_path)
    assert set(stats) <= NAMES, stats.keys()
    assert stats["invoke"]["num_requests"] >= 1
    # each invoke reached the function
    assert pyrie.stdout().count("START RequestId") >= stats["invoke"]["num_requests"]
