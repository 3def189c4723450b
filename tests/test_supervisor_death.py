"""The front end when the supervisor dies (``invoke_api.supervisor_death``): it ends the run; its workers die with
their master. A master that finds the supervisor gone, one on its own, and kill -9 of a real pyrie's master."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from invoke_api import supervisor_death
from pyrie_core.frontend_contract import SupervisorRun
from pyrie_core.process_ownership import read_owner
from tests.conftest import StartPyrie
from tests.harness import RAW_RUNTIME, ROOT, wait_until
from tests.test_process_ownership import marked_sleep, no_sleep_left  # noqa: F401 - the fixture ends every sleep
from tests.test_resilience import dead, frontend_master


def exit_status(pid: int) -> int:
    """The wait status of a zombie (the last field of ``/proc/PID/stat``), before its parent reaps it."""
    return int(Path(f"/proc/{pid}/stat").read_bytes().rpartition(b")")[2].split()[-1])


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_front_end_that_finds_its_supervisor_dead_ends_the_run(tmp_path: Path) -> None:
    """The supervisor died while gunicorn was starting (before it could ask to be told): reading its configuration,
    the master finds it gone, ends the run and exits."""
    leftover = marked_sleep("run3/environment-1")
    socket_dir = tmp_path / "pyrie-run3"
    socket_dir.mkdir()
    # what the supervisor hands its forked front end, before gunicorn reads its configuration
    hand_over = (
        "from pyrie_core.frontend_contract import FrontEndSettings, SupervisorRun, hand_over; "
        f"hand_over(FrontEndSettings(run=SupervisorRun({dead_pid()}, 'run3', {str(socket_dir)!r}))); "
        "import invoke_api.gunicorn_conf"
    )
    wait_until(lambda: read_owner(leftover.pid), what="the sleep to exec")
    result = subprocess.run(
        [sys.executable, "-c", hand_over],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "died; its front end killed what it had started" in result.stderr
    assert leftover.wait(10) == -signal.SIGKILL
    assert not socket_dir.exists()


def test_a_front_end_on_its_own_watches_no_supervisor(tmp_path: Path) -> None:
    assert supervisor_death.watch_supervisor(None) is False
    # a run, but its parent is not that supervisor, and the supervisor lives
    assert supervisor_death.watch_supervisor(SupervisorRun(1, "run4", str(tmp_path))) is False
    assert signal.getsignal(supervisor_death.SUPERVISOR_DIED) in (signal.SIG_DFL, None)


# --- a real pyrie's master ------------------------------------------------------------------------------------------


def test_kill_9_of_the_front_end_master_takes_its_workers_along(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(sys.executable, RAW_RUNTIME, extra_env={"RAW_SCENARIO": "echo", "PYRIE_WORKERS": "2"})
    master = frontend_master(pyrie)
    workers = wait_until(lambda: master.children() if len(master.children()) == 2 else None, what="2 workers")
    pyrie.process.send_signal(signal.SIGSTOP)  # pyrie cannot end them itself meanwhile
    try:
        master.kill()
        wait_until(lambda: all(dead(worker) for worker in workers), what="the workers to die")
        # Killed by the kernel when their master died, not gone by gunicorn's own check of its parent (an exit 0
        # within a second or so): they wait, zombies, for pyrie (the subreaper they were handed to) to reap them.
        assert [exit_status(worker.pid) for worker in workers] == [signal.SIGKILL, signal.SIGKILL]
        assert all(worker.ppid() == pyrie.process.pid for worker in workers)
    finally:
        pyrie.process.send_signal(signal.SIGCONT)
    pyrie.wait_for_stderr("exited unexpectedly (signal: killed); starting a new one")
    wait_until(lambda: pyrie.invoke(b'{"n": 1}').json() == {"n": 1}, timeout=10, what="a new front end to serve")
