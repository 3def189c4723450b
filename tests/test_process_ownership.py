"""The mark pyrie puts on the processes it starts, and ending a whole pyrie run by it
(``pyrie_core.process_ownership``), with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyrie_core.process_ownership import OWNER_ENV, end_instance, owned_pids, read_owner
from tests.harness import wait_until

_sleeps: list[subprocess.Popen[bytes]] = []


def marked_sleep(mark: str | None) -> subprocess.Popen[bytes]:
    env = {"PATH": os.environ["PATH"], **({OWNER_ENV: mark} if mark else {})}
    process = subprocess.Popen(["sleep", "600"], env=env, start_new_session=True, stdin=subprocess.DEVNULL)
    _sleeps.append(process)
    return process


@pytest.fixture(autouse=True)
def no_sleep_left() -> Iterator[None]:
    """Every ``marked_sleep`` ends with its test, whether the code under test ended it or not."""
    yield
    while _sleeps:
        process = _sleeps.pop()
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_mark_is_read_from_the_environment_a_process_started_with() -> None:
    first = subprocess.Popen(["sleep", "600"], env={OWNER_ENV: "abc/environment-1", "PATH": os.environ["PATH"]})
    later = marked_sleep("abc/environment-2")  # PATH first, the mark after it
    unmarked = marked_sleep(None)
    try:
        wait_until(lambda: read_owner(first.pid) and read_owner(later.pid), what="the sleeps to exec")
        assert read_owner(first.pid) == "abc/environment-1"
        assert read_owner(later.pid) == "abc/environment-2"
        assert read_owner(unmarked.pid) is None
        assert sorted(owned_pids("abc")) == sorted([first.pid, later.pid])
        assert owned_pids("abc", "environment-2") == [later.pid]
        assert owned_pids("ab") == []  # an instance is matched whole
    finally:
        for process in (first, later, unmarked):
            process.kill()
            process.wait()


def test_ending_a_run_kills_its_processes_only_and_removes_its_socket_directory(tmp_path: Path) -> None:
    ours = [marked_sleep("run1/environment-1"), marked_sleep("run1/frontend")]
    theirs = marked_sleep("run2/environment-1")
    socket_dir = tmp_path / "pyrie-run1"
    socket_dir.mkdir()
    try:
        wait_until(lambda: len(owned_pids("run1")) == 2, what="the sleeps to exec")
        end_instance("run1", socket_dir=str(socket_dir))
        assert [process.wait(10) for process in ours] == [-signal.SIGKILL, -signal.SIGKILL]
        assert theirs.poll() is None
        assert not socket_dir.exists()
    finally:
        theirs.kill()
        theirs.wait()
