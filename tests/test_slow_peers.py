"""Slow and stalled peers (issue 9, items 1, 3, 4 and 10): a client that stops reading, a stdout nobody reads, a
runtime or extension slow to come back, and a flood of Event invokes. pyrie's loop never waits on any of them:
deadlines are met within 100 ms, everyone else is served, shutdown stays bounded, and memory stays bounded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import StartPyrie
from tests.harness import Pyrie, wait_until
from tests.peers import (
    StalledClient,
    announced,
)

FUNCTIONS = Path(__file__).parent / "functions"
# What a fault may take to be acted on: a deadline is met within this.
ON_TIME_S = 0.1


def event(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def start(start_pyrie: StartPyrie, tmp_path: Path, *args: str, timeout_s: int = 3, **env: str) -> Pyrie:
    """pyrie serving the hardening function; its runtimes note when they are sent SIGTERM (``signalled``)."""
    (tmp_path / "signals").mkdir(exist_ok=True)
    return start_pyrie(
        *args,
        "hardening.handler",
        cwd=FUNCTIONS,
        extra_env={
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout_s),
            "HARDENING_SIGNALS": str(tmp_path / "signals"),
            **env,
        },
    )


def signalled(tmp_path: Path, pid: int) -> float:
    """When pyrie sent the runtime ``pid`` SIGTERM (epoch seconds), as the runtime noted it."""
    path = tmp_path / "signals" / f"{pid}.term"
    wait_until(path.exists, 5, what=f"runtime {pid} to note its SIGTERM")
    return float(path.read_text())


# --- item 1: a client that stops reading -----------------------------------------------------------------------


def test_a_runtime_streaming_into_nothing_keeps_no_deadline_waiting(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    """A runtime streaming as fast as it can to a client that went away (its output is dropped) never holds up the
    loop: another invoke's timeout is still met, and so is its own. (One stream: more would measure how two cores
    share five busy processes.)"""
    pyrie = start(start_pyrie, tmp_path)
    with StalledClient(pyrie.port, event(kind="forever")) as client:
        client.sock.recv(1)  # the response has begun; then the client goes away
    streams = announced(pyrie, "FOREVER")
    with StalledClient(pyrie.port, event(kind="sleep", seconds=10)):
        [sleeping] = announced(pyrie, "SLEEP")
        ended = signalled(tmp_path, sleeping["pid"])
    late = {"sleep": ended - sleeping["deadline_ms"] / 1000}
    for n, stream in enumerate(streams):
        late[f"stream {n}"] = signalled(tmp_path, stream["pid"]) - stream["deadline_ms"] / 1000
    assert all(0 <= seconds < ON_TIME_S for seconds in late.values()), late
