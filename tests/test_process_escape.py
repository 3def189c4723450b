"""Nothing pyrie started outlives it: kill -9 of the supervisor, an environment's reset, pyrie's shutdown (issue 9,
items 5 and 9; kill -9 of gunicorn's master is in ``test_supervisor_death``, what a pyrie that died left in
``test_socket_directory``). Real pyrie, real processes, real signals.

Processes are looked for three ways: by pid, by the mark pyrie puts in their environment (``PYRIE_OWNER``, read here
from ``/proc`` independently of pyrie's own code), and by the port they would hold.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from pyrie_core.process_ownership import instance_cgroup
from tests.conftest import StartPyrie
from tests.cpu_wait import RunQueue, assert_on_time
from tests.harness import Pyrie, dead, wait_until
from tests.test_resilience import frontend_master

FUNCTIONS = Path(__file__).parent / "functions"


def cgroups_usable() -> bool:
    """Whether pyrie can keep an environment in a cgroup here: it can make one below its own, with ``cgroup.kill``."""
    probe = instance_cgroup(f"probe-{os.getpid()}")
    if probe is None:
        return False
    try:
        os.mkdir(probe)
    except OSError:
        return False
    try:
        return os.path.exists(os.path.join(probe, "cgroup.kill"))
    finally:
        os.rmdir(probe)


needs_cgroups = pytest.mark.skipif(
    not cgroups_usable(), reason="only a cgroup holds a process that wiped its environment; pyrie has none here"
)


def marked(instance: str) -> list[int]:
    """Every live process on the machine whose environment carries pyrie run ``instance``'s mark."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            environ = Path(f"/proc/{name}/environ").read_bytes()
        except OSError:
            continue
        if any(entry.startswith(f"PYRIE_OWNER={instance}/".encode()) for entry in environ.split(b"\0")):
            found.append(int(name))
    return found


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as pyrie binds it
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def run_of(pyrie: Pyrie) -> tuple[str, str]:
    """The instance a running pyrie marks its processes with (its front end's mark, as the kernel shows it), and its
    socket directory."""
    instance, group = frontend_master(pyrie).environ()["PYRIE_OWNER"].split("/")
    assert group == "frontend"
    return instance, os.path.join(tempfile.gettempdir(), f"pyrie-{instance}")


def read_pids(path: Path) -> dict[str, int] | None:
    try:
        pids: dict[str, int] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return pids


def leave_behind(pyrie: Pyrie, tmp_path: Path, kinds: list[str], sleep: float) -> dict[str, int]:
    """Have the function start ``kinds`` of processes that get away, then sleep ``sleep`` s (an Event invoke: the
    pids come through a file)."""
    pid_file = tmp_path / f"pids-{time.monotonic_ns()}.json"
    event = {"kinds": kinds, "pid_file": str(pid_file), "sleep": sleep}
    response = pyrie.invoke(json.dumps(event), headers={"X-Amz-Invocation-Type": "Event"})
    assert response.status_code == 202, response.text
    pids: dict[str, int] = wait_until(lambda: read_pids(pid_file), what="the handler to start its processes")
    return pids


# --- kill -9 of the supervisor -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kinds",
    [
        pytest.param([], id="runtime"),
        pytest.param(["setsid", "double-fork"], id="detached"),
    ],
)
def test_kill_9_of_the_supervisor_leaves_nothing_and_a_new_pyrie_binds_at_once(
    start_pyrie: StartPyrie, tmp_path: Path, kinds: list[str]
) -> None:
    pyrie = start_pyrie("detach.leave_behind", cwd=FUNCTIONS, extra_env={"PYRIE_WORKERS": "2"})
    pids = leave_behind(pyrie, tmp_path, kinds, sleep=600)  # the handler runs on
    instance, socket_dir = run_of(pyrie)
    # gunicorn's master and 2 workers (the second may still be booting), the runtime, what it left
    processes = wait_until(
        lambda: len(found := pyrie.descendants()) >= 4 + len(kinds) and found, what="every process to be up"
    )
    tree = {process.pid for process in processes}
    try:
        assert set(pids.values()) <= tree
        assert len(marked(instance)) >= 3
        assert os.path.isdir(socket_dir)

        queue = RunQueue(os.getpid(), *tree)  # what they waited for a CPU, to judge "at once" by
        pyrie.process.kill()
        killed = time.time()

        checks: list[float] = []

        def nothing_left() -> bool:
            checks.append(time.time())
            return (
                all(dead(pid) for pid in tree)
                and not marked(instance)
                and not os.path.exists(socket_dir)
                and port_free(pyrie.port)
            )

        # (a process that has exited counts as gone before its reaper, PID 1 for the orphans, has reaped it)
        wait_until(nothing_left, what="nothing of pyrie to be left")
        cleaned = checks[-1]  # when the check that found nothing left began (it reads every process's environment)
        queue.stop()
        assert_on_time("the clean-up", cleaned - killed, 1.0, queue.waited(killed, cleaned))
        assert pyrie.stop() == -signal.SIGKILL  # reaps it; its tree is no longer its to check
    finally:
        for process in processes:  # what a failure left running (psutil checks the pid was not reused)
            with contextlib.suppress(psutil.Error):
                process.kill()
    again = start_pyrie("detach.leave_behind", cwd=FUNCTIONS, port=pyrie.port)
    assert again.invoke(json.dumps({"kinds": []})).status_code == 200


# --- an environment's reset ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind",
    [
        "setsid",
        pytest.param("double-fork"),
        pytest.param("wiped", marks=needs_cgroups),
    ],
)
def test_a_timeout_ends_what_the_handler_left_running(start_pyrie: StartPyrie, tmp_path: Path, kind: str) -> None:
    pyrie = start_pyrie("detach.leave_behind", cwd=FUNCTIONS, extra_env={"AWS_LAMBDA_FUNCTION_TIMEOUT": "1"})
    pid_file = tmp_path / "pids.json"
    queue = pyrie.run_queue()
    response = pyrie.invoke(json.dumps({"kinds": [kind], "pid_file": str(pid_file), "sleep": 30}))
    answered = time.time()
    assert response.headers.get("X-Amz-Function-Error") == "Unhandled"
    assert "Task timed out after 1.00 seconds" in response.text
    pids = read_pids(pid_file)
    assert pids is not None
    wait_until(lambda: dead(pids["runtime"]) and dead(pids[kind]), what=f"the runtime and its {kind} child to die")
    ended = time.time()
    queue.stop()
    assert_on_time(f"the end of the runtime and its {kind} child", ended - answered, 1.0, queue.waited(answered, ended))
    assert pyrie.invoke(json.dumps({"kinds": []})).status_code == 200  # a new environment serves


# --- pyrie's shutdown ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["double-fork", "wiped"])
def test_shutdown_ends_the_orphans_handed_to_pyrie(start_pyrie: StartPyrie, tmp_path: Path, kind: str) -> None:
    pyrie = start_pyrie("detach.leave_behind", cwd=FUNCTIONS)
    response = pyrie.invoke(json.dumps({"kinds": [kind]}))
    orphan = psutil.Process(response.json()[kind])
    # Its parent exited: it was handed to pyrie, the child subreaper (the environment is idle now).
    wait_until(lambda: orphan.ppid() == pyrie.process.pid, what="the orphan to be handed to pyrie")
    assert pyrie.stop() == 0  # which also fails if anything of pyrie's tree is left
    assert dead(orphan.pid)
