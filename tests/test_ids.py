"""Request and trace ids stay unique across processes forked from one parent (gunicorn's preloaded workers)."""

from __future__ import annotations

import os

import requests

from pyrie_core import ids
from tests.conftest import StartPyrie
from tests.test_lifecycle import RAW_RUNTIME


def _ids_in_children(count: int) -> list[str]:
    """Fork ``count`` children from this process's generator state; each reports its first ids."""
    ids.new_request_id()  # the parent has used its generator before the fork, as the front end's master has
    reads = []
    for _ in range(count):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            os.close(read_end)
            os.write(write_end, f"{ids.new_request_id()} {ids.new_trace_id()} {ids.new_span_id()}".encode())
            os._exit(0)
        os.close(write_end)
        reads.append((pid, read_end))
    found = []
    for pid, read_end in reads:
        with os.fdopen(read_end, "rb") as pipe:
            found.extend(pipe.read().decode().split())
        os.waitpid(pid, 0)
    return found


def test_forked_children_hand_out_different_ids() -> None:
    found = _ids_in_children(4)
    assert len(found) == 12
    assert len(set(found)) == 12


def test_request_ids_are_unique_across_front_end_workers(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(RAW_RUNTIME, extra_env={"PYRIE_WORKERS": "3"})
    seen = []
    for _ in range(150):  # a new connection each: gunicorn's workers take turns accepting
        answer = requests.get(f"{pyrie.url}/no-such-path", timeout=5, headers={"Connection": "close"})
        seen.append(answer.headers["X-Amzn-RequestId"])
    assert len(set(seen)) == len(seen)


def test_request_ids_are_version_4_uuids_as_the_uuid_module_writes_them() -> None:
    import random
    import uuid

    for _ in range(1000):
        value = random.getrandbits(128)
        ids._random.getrandbits = lambda bits, value=value: value  # type: ignore[method-assign]
        try:
            assert ids.new_request_id() == str(uuid.UUID(int=value, version=4))
        finally:
            del ids._random.getrandbits
    text = ids.new_request_id()
    assert uuid.UUID(text).version == 4 and str(uuid.UUID(text)) == text
