"""pyrie as a process: start-up errors in one clear line, --help, and an orderly shutdown that leaves nothing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest

from tests.conftest import StartPyrie
from tests.harness import RAW_RUNTIME, free_port
from tests.test_process_escape import run_of


def run_pyrie(
    *args: str, env: dict[str, str] | None = None, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: PLW1510 (the tests check returncode)
        [sys.executable, "-m", "supervisor", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def test_help() -> None:
    result = run_pyrie("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: pyrie")
    for flag in ("--runtime-interface-emulator-address", "--runtime-api-address", "--log-level"):
        assert flag in result.stdout


def addresses() -> list[str]:
    return [
        "--runtime-interface-emulator-address",
        f"127.0.0.1:{free_port()}",
        "--runtime-api-address",
        f"127.0.0.1:{free_port()}",
    ]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ((RAW_RUNTIME,), {"AWS_LAMBDA_FUNCTION_TIMEOUT": "abc"}, "AWS_LAMBDA_FUNCTION_TIMEOUT: 'abc' is not a whole"),
        (("--runtime-api-address", "nonsense", RAW_RUNTIME), {}, "--runtime-api-address: 'nonsense' is not HOST:PORT"),
        (("./no-such-bootstrap", "app.handler"), {}, "bootstrap './no-such-bootstrap' not found"),
        (("--log-level", "loud", RAW_RUNTIME), {}, "--log-level: 'loud' is not one of"),
        (
            ("--supervisor-address", "127.0.0.1:9100", RAW_RUNTIME),
            {"PYRIE_SUPERVISOR_TOKEN": ""},
            "--supervisor-address needs PYRIE_SUPERVISOR_TOKEN",
        ),
        (("--gunicorn-config", "/no/such/gunicorn.conf.py", RAW_RUNTIME), {}, "--gunicorn-config: /no/such/"),
    ],
)
def test_bad_configuration_stops_at_start_up_with_one_line(
    args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    result = run_pyrie(*args, env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pyrie: error: ")
    assert message in lines[0]


def test_busy_port_stops_at_start_up_with_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_pyrie("--runtime-interface-emulator-address", f"127.0.0.1:{port}", RAW_RUNTIME)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"pyrie: error: cannot listen on 127.0.0.1:{port} for the Invoke API: Address already in use"
    ]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_everything_and_exits_0(start_pyrie: StartPyrie, sig: int) -> None:
    pyrie = start_pyrie(sys.executable, RAW_RUNTIME, extra_env={"RAW_SCENARIO": "echo"})
    assert pyrie.invoke(b"{}").status_code == 200  # a runtime is running now
    tree = pyrie.descendants()
    assert len(tree) >= 3  # gunicorn master, a worker, the runtime
    _, socket_dir = run_of(pyrie)
    assert os.path.isdir(socket_dir)
    assert pyrie.stop(sig) == 0  # stop() also fails if any of the tree is left
    assert not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not os.path.exists(socket_dir)


def test_shutdown_lets_an_in_flight_invoke_finish(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(sys.executable, RAW_RUNTIME, extra_env={"RAW_SCENARIO": "stream"})
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(pyrie.invoke(b"{}").content))
    reader.start()
    pyrie.wait_for_output("START RequestId")
    assert pyrie.stop() == 0
    reader.join(10)
    assert received == [b"a\nb\nc\n"]


def test_no_command_and_no_bootstrap_file_is_a_clear_error(tmp_path: Path) -> None:
    result = run_pyrie(*addresses(), cwd=str(tmp_path))
    if any(os.path.isfile(p) for p in ("/var/task/bootstrap", "/opt/bootstrap", "/var/runtime/bootstrap")):
        pytest.skip("this machine has a default bootstrap file")
    assert result.returncode == 2
    assert "no bootstrap" in result.stderr
