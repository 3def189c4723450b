"""Socket directories: a pyrie's is served; those of pyries that died are removed at the next start, with what is
left of their runs (``supervisor.frontend_link.socket_directory``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pyrie_core.process_ownership import OWNER_ENV, owned_pids
from supervisor.frontend_link.socket_directory import bind_socket, remove_stale
from tests.conftest import StartPyrie
from tests.cpu_wait import Stopwatch, assert_on_time
from tests.harness import RAW_RUNTIME, wait_until


def test_only_the_socket_directories_nobody_serves_are_stale(short_tmp_path: Path) -> None:
    tmp_path = short_tmp_path
    dead = tmp_path / "pyrie-dead00000000"
    dead.mkdir(mode=0o700)
    with socket.socket(socket.AF_UNIX) as closed:
        closed.bind(str(dead / "supervisor.sock"))  # closed without listening: connections are refused
    live = tmp_path / "pyrie-live00000000"
    live.mkdir(mode=0o700)
    starting = tmp_path / "pyrie-starting0000"
    starting.mkdir(mode=0o700)
    just_made = tmp_path / "pyrie-justmade0000"  # a pyrie between making its directory and binding its socket
    just_made.mkdir(mode=0o700)
    never_bound = tmp_path / "pyrie-neverbound00"  # a pyrie killed before it bound its socket
    never_bound.mkdir(mode=0o700)
    never_renamed = tmp_path / "pyrie-neverrenamed"  # one killed between binding it and naming it
    never_renamed.mkdir(mode=0o700)
    not_ours = tmp_path / "pyrie-file"
    not_ours.write_text("")
    with (
        bind_socket(str(live), 8),
        socket.socket(socket.AF_UNIX) as half,
        socket.socket(socket.AF_UNIX) as left,
    ):
        half.bind(str(starting / "supervisor.sock.new"))  # a pyrie between bind and listen: not yet under its name
        left.bind(str(never_renamed / "supervisor.sock.new"))
        a_minute_ago = time.time() - 60
        for old in (never_bound, never_renamed):
            os.utime(old, (a_minute_ago, a_minute_ago))
        with Stopwatch() as removal:
            removed = remove_stale(str(tmp_path))
        assert_on_time("remove_stale", removal.took, 1.0, removal.waited)
    assert sorted(removed) == [(str(dead), 0), (str(never_bound), 0), (str(never_renamed), 0)]
    assert not dead.exists() and not never_bound.exists() and not never_renamed.exists()
    assert live.exists() and starting.exists() and just_made.exists() and not_ours.exists()


# --- at a real pyrie's start ---------------------------------------------------------------------------------------


def test_start_up_cleans_up_after_a_pyrie_that_died(start_pyrie: StartPyrie, short_tmp_path: Path) -> None:
    """Its supervisor and front end died together (nothing could clean up): the next pyrie removes its socket
    directory and ends the processes of its run, and leaves a live pyrie's alone."""
    tmp = short_tmp_path
    stale = tmp / "pyrie-0123456789ab"
    stale.mkdir(mode=0o700)
    with socket.socket(socket.AF_UNIX) as closed:
        closed.bind(str(stale / "supervisor.sock"))  # nobody listens any more
    live = tmp / "pyrie-ba9876543210"
    live.mkdir(mode=0o700)
    environ = {"PATH": os.environ["PATH"]}
    left = subprocess.Popen(["sleep", "600"], env={**environ, OWNER_ENV: "0123456789ab/environment-1"})
    theirs = subprocess.Popen(["sleep", "600"], env={**environ, OWNER_ENV: "ba9876543210/environment-1"})
    try:
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(str(live / "supervisor.sock"))
            listener.listen()
            wait_until(lambda: owned_pids("0123456789ab") and owned_pids("ba9876543210"), what="the sleeps to exec")
            pyrie = start_pyrie(sys.executable, RAW_RUNTIME, extra_env={"TMPDIR": str(tmp)})
            assert not stale.exists()
            assert left.wait(10) == -signal.SIGKILL
            assert live.exists()
            assert theirs.poll() is None
        assert "cleaned up after a pyrie that died: removed " + str(stale) in pyrie.stderr()
        assert pyrie.invoke(b'{"n": 1}').json() == {"n": 1}
        (own,) = (entry for entry in tmp.iterdir() if entry.name.startswith("pyrie-") and entry != live)
        assert (own / "supervisor.sock").exists()
    finally:
        for process in (left, theirs):
            process.kill()
            process.wait()
