from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from tests.harness import Pyrie


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
