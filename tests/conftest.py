from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import pytest

from tests.harness import FrontEnd, Pyrie


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
