"""deploy/locustfile.py against a real pyrie: a few seconds of load from one user, bounded, on loopback only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import StartPyrie
from tests.harness import ROOT

EXAMPLES = ROOT / "examples"
LOCUST = Path(sys.executable).parent / "locust"


def test_the_locustfile_loads_pyrie_without_failures(start_pyrie: StartPyrie, tmp_path):
    pyrie = start_pyrie("app.handler", cwd=EXAMPLES / "python-sse")
    result = subprocess.run(
        [
            str(LOCUST),
            "-f",
            str(ROOT / "deploy" / "locustfile.py"),
            "--headless",
            "--users",
            "1",  # one caller: pyrie's one execution environment is never found busy (no 429)
            "--spawn-rate",
            "1",
            "--run-time",
            "3s",
            "--only-summary",
            "--json",
            "PythonStreamingFunction",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHON_FUNCTION_URL": pyrie.url},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    stats = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert stats["invoke (streamed)"]["num_requests"] >= 1, stats.keys()
    assert set(stats) <= {"invoke (streamed)", "invoke (DryRun)", "invoke (unknown function)", "healthz"}
    failures = {name: entry["num_failures"] for name, entry in stats.items() if entry["num_failures"]}
    assert not failures, result.stderr[-2000:]
    # each streamed invoke reached the function (locust may stop in the middle of one more)
    assert pyrie.stdout().count("START RequestId") >= stats["invoke (streamed)"]["num_requests"]
