"""The front end's gunicorn dies, reloads or cannot boot: pyrie keeps serving, or stops with one clear line."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import requests

import supervisor
from supervisor.frontend_link.restart_policy import RestartPolicy, Verdict
from tests.conftest import StartPyrie
from tests.cpu_wait import assert_on_time
from tests.harness import INVOKE_PATH, RAW_RUNTIME, Pyrie, dead, free_port, wait_until
from tests.streaming import Received, stream_invoke

FUNCTIONS = Path(__file__).parent / "functions"


def is_frontend(process: psutil.Process) -> bool:
    """A process of the front end (gunicorn's master or a worker): forked from the supervisor, named so."""
    try:
        return process.name() == "pyrie-frontend"
    except psutil.Error:
        return False


def frontend_master(pyrie: Pyrie) -> psutil.Process:
    return wait_until(lambda: next((p for p in pyrie.psutil.children() if is_frontend(p)), None), what="gunicorn")


def workers_of(master: psutil.Process) -> set[int]:
    return {p.pid for p in master.children()}


# --- the policy ----------------------------------------------------------------------------------------------------


def test_a_front_end_that_had_booted_is_always_restarted():
    policy = RestartPolicy(boot_window_s=5, max_failed_boots=3)
    for returncode in (-9, 0, 1, 3, -15) * 3:
        assert policy.after_exit(60.0, returncode) is Verdict.RESTART
    assert policy.failed_boots == 0


def test_a_front_end_that_chose_to_exit_during_boot_is_given_up_at_once():
    assert RestartPolicy(boot_window_s=5).after_exit(0.3, 1) is Verdict.GIVE_UP
    assert RestartPolicy(boot_window_s=5).after_exit(4.9, 3) is Verdict.GIVE_UP


def test_a_front_end_killed_during_boot_is_tried_a_bounded_number_of_times():
    policy = RestartPolicy(boot_window_s=5, max_failed_boots=3)
    assert [policy.after_exit(0.5, -9) for _ in range(3)] == [Verdict.RESTART, Verdict.RESTART, Verdict.GIVE_UP]


def test_a_successful_boot_clears_the_failures():
    policy = RestartPolicy(boot_window_s=5, max_failed_boots=3)
    assert policy.after_exit(0.5, -9) is Verdict.RESTART
    assert policy.after_exit(0.5, -9) is Verdict.RESTART
    assert policy.after_exit(30.0, -9) is Verdict.RESTART
    assert policy.after_exit(0.5, -9) is Verdict.RESTART  # a fresh count


# --- a real pyrie --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("victim", ["master", "process-group"])
def test_killing_gunicorn_restores_service_within_2_s(start_pyrie: StartPyrie, victim):
    pyrie = start_pyrie(sys.executable, RAW_RUNTIME, extra_env={"RAW_SCENARIO": "echo"})
    assert pyrie.invoke(b'{"n": 0}').json() == {"n": 0}
    master = frontend_master(pyrie)
    old_workers = [psutil.Process(pid) for pid in workers_of(master)]
    queue = pyrie.run_queue()  # a new gunicorn boots: on a loaded machine, add what pyrie waited for a CPU
    killed = time.time()
    if victim == "master":
        master.kill()
    else:
        os.killpg(master.pid, signal.SIGKILL)
    pyrie.wait_for_stderr("exited unexpectedly (signal: killed); starting a new one")
    wait_until(lambda: all(dead(p) for p in old_workers), what="the dead master's workers to die")
    # A new connection: the test's pooled one died with the old worker (an SDK would retry it).
    response = requests.post(pyrie.url + INVOKE_PATH, data=b'{"n": 1}', timeout=10)
    restored = time.time() - killed
    queue.stop()
    assert response.json() == {"n": 1}
    assert_on_time("the service's return", restored, 2.0, queue.waited(killed, killed + restored))
    assert frontend_master(pyrie).pid != master.pid
    assert pyrie.invoke(b'{"n": 2}').json() == {"n": 2}
    assert pyrie.process.poll() is None


def open_files(pid: int) -> set[str]:
    """What the descriptors above stderr of process ``pid`` refer to (``socket:[inode]``, a path, ...)."""
    found = set()
    for name in os.listdir(f"/proc/{pid}/fd"):
        if int(name) > 2:
            try:
                found.add(os.readlink(f"/proc/{pid}/fd/{name}"))
            except OSError:
                continue
    return found


def test_a_front_end_forked_again_from_the_running_supervisor_is_like_the_first(start_pyrie: StartPyrie):
    """The first front end is forked before the supervisor's event loop exists; a new one is forked from the running
    supervisor, with its loop, threads and connections. It keeps none of them: it serves streams, reloads on SIGHUP,
    holds no descriptor of the supervisor's but the listener, carries the run's mark and ends the run when the
    supervisor is killed."""
    pyrie = start_pyrie("streams.ticks", cwd=FUNCTIONS, extra_env={"PYRIE_WORKERS": "2"})
    assert pyrie.invoke(b'{"count": 1}').status_code == 200  # the supervisor's loop, threads, pipe connections
    first = frontend_master(pyrie)
    old_workers = [psutil.Process(pid) for pid in workers_of(first)]
    first.kill()
    pyrie.wait_for_stderr("exited unexpectedly (signal: killed); starting a new one")
    # the dead master's workers are the supervisor's children for a moment (it is their subreaper): not the new one
    wait_until(lambda: all(dead(p) for p in old_workers), timeout=5, what="the dead master's workers to die")
    master = wait_until(lambda: (m := frontend_master(pyrie)).pid != first.pid and m, what="a new front end")
    workers = wait_until(lambda: len(found := workers_of(master)) == 2 and found, what="its 2 workers")
    received = stream_invoke(pyrie.port, INVOKE_PATH, b'{"count": 3, "interval": 0.1}')
    assert received.complete
    assert [chunk.split()[1] for _, chunk in received.chunks] == [b"0", b"1", b"2"]
    shared = open_files(master.pid) & open_files(pyrie.process.pid)
    assert len(shared) == 1 and shared.pop().startswith("socket:"), shared  # the Invoke API's listener alone
    assert master.environ()["PYRIE_OWNER"].endswith("/frontend")
    assert master.cmdline() == ["pyrie-frontend"]
    pyrie.process.send_signal(signal.SIGHUP)  # its signal handlers are gunicorn's, not the supervisor's loop's
    wait_until(lambda: len(workers_of(master) - workers) == 2, timeout=10, what="new workers after SIGHUP")
    everything = [master, *(psutil.Process(pid) for pid in workers_of(master))]
    pyrie.process.kill()
    assert pyrie.stop() == -signal.SIGKILL
    wait_until(lambda: all(dead(p) for p in everything), timeout=5, what="the front end to end the run")
    assert "died; its front end killed what it had started" in pyrie.stderr()


def test_a_stream_in_flight_during_sighup_completes_on_the_old_worker(start_pyrie: StartPyrie):
    pyrie = start_pyrie("streams.ticks", cwd=FUNCTIONS)
    master = frontend_master(pyrie)
    wait_until(lambda: workers_of(master), what="a worker")
    before = workers_of(master)
    result: list[Received] = []
    reader = threading.Thread(
        target=lambda: result.append(stream_invoke(pyrie.port, INVOKE_PATH, b'{"count": 15, "interval": 0.2}'))
    )
    reader.start()
    pyrie.wait_for_output("START RequestId")
    pyrie.process.send_signal(signal.SIGHUP)
    replaced = wait_until(lambda: workers_of(master) - before, timeout=10, what="new workers")
    assert reader.is_alive(), "the stream ended before the reload was done; it proves nothing"
    assert frontend_master(pyrie).pid == master.pid  # the same master, new workers
    reader.join(15)
    (received,) = result
    assert received.complete
    assert [frame.split()[1] for _, frame in received.frames()] == [str(n).encode() for n in range(15)]
    wait_until(lambda: not (workers_of(master) & before), timeout=10, what="the old worker to leave")
    assert workers_of(master) == replaced
    assert pyrie.invoke(b'{"count": 1}').content.startswith(b"data: 0 ")  # the new worker serves
    assert "reloading the front end" in pyrie.stderr()


def pyrie_exits(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    addresses = [
        "--runtime-interface-emulator-address",
        f"127.0.0.1:{free_port()}",
        "--runtime-api-address",
        f"127.0.0.1:{free_port()}",
    ]
    return subprocess.run(
        [sys.executable, "-m", "supervisor", *addresses, *args, sys.executable, RAW_RUNTIME],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.parametrize(
    ("how", "gunicorn_says"),
    [("config-file", "Failed to read config file"), ("cmd-args", "invalid int value: 'abc'")],
)
def test_a_front_end_that_cannot_boot_stops_pyrie_with_one_line(tmp_path, how, gunicorn_says):
    bad = tmp_path / "gunicorn.conf.py"
    bad.write_text("raise RuntimeError('this configuration is broken')\n")
    if how == "config-file":
        result = pyrie_exits("--gunicorn-config", str(bad), env={})
    else:
        result = pyrie_exits(env={"GUNICORN_CMD_ARGS": "--workers abc"})
    assert result.returncode == 1
    assert result.stderr.count(gunicorn_says) == 1, result.stderr  # gunicorn ran once: no respawn loop
    ours = [line for line in result.stderr.splitlines() if "[ERROR] (pyrie)" in line]
    assert len(ours) == 1, result.stderr
    assert "the front end (gunicorn) failed to start (exit status " in ours[0]
    assert "giving up" in ours[0]


def test_pyrie_refuses_to_start_when_supervisor_is_not_its_own(tmp_path):
    """Supervisord's package is also called ``supervisor``: installed over pyrie's, it replaces its ``__init__.py``.
    pyrie then says so in one line instead of failing somewhere deep."""
    shadow = tmp_path / "site"
    shutil.copytree(Path(supervisor.__file__).parent, shadow / "supervisor")
    (shadow / "supervisor" / "__init__.py").write_text("# this is a package\n")  # Supervisord's own __init__.py
    result = subprocess.run(
        [sys.executable, "-m", "supervisor", "app.handler"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(shadow)},
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"pyrie: error: the Python package 'supervisor' in {shadow / 'supervisor'} is not pyrie's (another program's "
        "package of that name, such as Supervisord's, was installed over it); install pyrie into a virtual "
        "environment of its own"
    ]


# --- the supervisor's own start and end ----------------------------------------------------------------------------

# ``supervisor.__main__.main`` with one fault put in: the pool's start takes a second (a SIGTERM can arrive during
# it), or no new gunicorn can be spawned.
SLOW_POOL_START = """
import sys, gevent
from supervisor.pool import environment_pool
start = environment_pool.Pool.start
def slow_start(self):
    print("probe: the pool is starting", file=sys.stderr, flush=True)
    gevent.sleep(1.0)
    start(self)
environment_pool.Pool.start = slow_start
from supervisor.__main__ import main
sys.exit(main())
"""
NO_SPAWN = """
import sys
from supervisor import arbiter
def fork_gunicorn(config, listeners):
    raise OSError(24, "Too many open files (probe)")
arbiter.fork_gunicorn = fork_gunicorn
from supervisor.__main__ import main
sys.exit(main())
"""


def test_a_sigterm_while_the_pool_starts_shuts_down_in_order(start_pyrie: StartPyrie):
    """The signal handlers are in place before anything is started: SIGTERM then is an ordered shutdown, exit 0."""
    launcher = (sys.executable, "-c", SLOW_POOL_START)
    pyrie = start_pyrie(sys.executable, RAW_RUNTIME, ready=False, launcher=launcher, extra_env={"RAW_SCENARIO": "echo"})
    pyrie.wait_for_stderr("probe: the pool is starting")
    assert pyrie.stop() == 0, pyrie.stderr()
    assert "shutting down" in pyrie.stderr()


def test_a_front_end_that_cannot_be_spawned_again_still_shuts_down_in_order(start_pyrie: StartPyrie):
    """An OSError while a new gunicorn is spawned ends pyrie, after the ordered shutdown: its environments ended and
    its socket directory removed."""
    launcher = (sys.executable, "-c", NO_SPAWN)
    pyrie = start_pyrie(sys.executable, RAW_RUNTIME, launcher=launcher, extra_env={"RAW_SCENARIO": "echo"})
    socket_dir = os.path.dirname(pyrie.pipe_path())
    assert pyrie.invoke(b'{"n": 0}').json() == {"n": 0}
    runtimes = [p for p in pyrie.psutil.children() if not is_frontend(p)]
    assert runtimes
    frontend_master(pyrie).kill()
    pyrie.process.wait(10)
    assert pyrie.stop() == 1
    assert "shutting down" in pyrie.stderr()
    assert "Too many open files (probe)" in pyrie.stderr()
    assert not os.path.exists(socket_dir)
    wait_until(lambda: all(dead(p) for p in runtimes), what="the runtime to be ended")
