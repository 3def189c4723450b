"""Fixtures every test may use, and what keeps tests that run side by side (``make test`` runs them in several
processes, pytest-xdist) out of each other's way: each test process gives pyrie a temporary directory of its own
(pyrie's socket directories, and the stale ones a starting pyrie removes, are there), and the ports a test reserves
with ``tests.harness.free_port`` are held until it ends. Long tests (more than ``LONG_TEST_S``) are marked ``soak``:
``make soak`` runs them, ``make test`` leaves them out and names any test that ran that long without the mark."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import pytest

from supervisor.frontend_link.socket_directory import remove_stale
from tests.harness import FrontEnd, Pyrie, release_ports

# A test that runs longer than this belongs to `make soak` (mark it soak).
LONG_TEST_S = 20.0


@pytest.fixture(scope="session", autouse=True)
def _own_temporary_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A temporary directory for this test process alone (TMPDIR, for the pyries it starts): a starting pyrie
    removes the socket directories it finds unserved there, which must not be those of a pyrie another test process,
    or another checkout's suite, has just killed on purpose and is looking at."""
    tmp_path_factory.getbasetemp()  # pytest's own directory stays where it is
    before = os.environ.get("TMPDIR")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    # Short: a Unix socket's path has at most 107 bytes.
    own = tempfile.mkdtemp(prefix=f"tests-{worker}-")  # not "pyrie-...": pyrie takes those for its own
    os.environ["TMPDIR"] = own
    tempfile.tempdir = own
    try:
        yield
    finally:
        remove_stale(own)  # what a pyrie killed on purpose left, as the next pyrie would have
        shutil.rmtree(own, ignore_errors=True)
        tempfile.tempdir = None
        if before is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = before


@pytest.fixture
def short_tmp_path() -> Iterator[Path]:
    """A temporary directory with a short path, for Unix sockets (at most 107 bytes; ``tmp_path`` is long under
    pytest-xdist)."""
    path = tempfile.mkdtemp()  # in this test process's own TMPDIR
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def _reserved_ports() -> Iterator[None]:
    """Ports reserved during a test (``tests.harness.free_port``) are given back after its last fixture."""
    yield
    release_ports()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    long = [
        f"{report.nodeid} ({report.duration:.0f} s)"
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        and getattr(report, "duration", 0) > LONG_TEST_S
        and "soak" not in report.keywords
    ]
    if long:
        terminalreporter.write_sep("=", f"tests that ran longer than {LONG_TEST_S:.0f} s without the soak mark")
        for line in long:
            terminalreporter.write_line(line)
        terminalreporter.write_line(
            "a test that takes that long on an idle machine is a soak: mark it @pytest.mark.soak (make soak runs it)"
        )


class StartPyrie(Protocol):
    def __call__(self, *args: str, **kwargs: Any) -> Pyrie: ...


@pytest.fixture
def start_pyrie(tmp_path: Path) -> Iterator[StartPyrie]:
    """Start pyrie (``args`` as on its command line) and wait until it answers; every one started is stopped at the
    end of the test, which fails if pyrie does not exit 0 or leaves a process behind."""
    started: list[Pyrie] = []

    def start(*args: str, ready: bool = True, **kwargs: Any) -> Pyrie:
        pyrie = Pyrie(args, log_dir=tmp_path, **kwargs)
        started.append(pyrie)
        return pyrie.wait_ready() if ready else pyrie

    yield start
    failures = []
    for pyrie in started:
        if pyrie.stopped:
            continue
        code = pyrie.stop()
        if code != 0:
            failures.append(f"pyrie exited with {code}:\n{pyrie.stderr()}")
    assert not failures, "\n".join(failures)


class StartFrontEnd(Protocol):
    def __call__(self, env: Mapping[str, str], *, ready: bool = True) -> FrontEnd: ...


@pytest.fixture
def start_frontend(tmp_path: Path) -> Iterator[StartFrontEnd]:
    """Start the front end on its own (gunicorn with deploy/gunicorn.conf.py) with ``env`` telling it where the
    supervisor is; each one started is stopped at the end of the test, which fails if it leaves a process behind."""
    started: list[FrontEnd] = []

    def start(env: Mapping[str, str], *, ready: bool = True) -> FrontEnd:
        frontend = FrontEnd(env, log_dir=tmp_path)
        started.append(frontend)
        return frontend.wait_ready() if ready else frontend

    yield start
    for frontend in started:
        frontend.stop()
