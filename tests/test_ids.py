"""Request and trace ids stay unique across processes forked from one parent (gunicorn's preloaded workers)."""

from __future__ import annotations

import http.client
import os

import psutil

from pyrie_core import ids
from tests.conftest import StartPyrie
from tests.harness import RAW_RUNTIME, Pyrie


def _ids_in_children(count: int) -> list[str]:
    """Fork ``count`` children from this process's generator state; each reports its first ids."""
    ids.new_request_id()  # the parent has used its generator before the fork, as the front end's master has
    reads = []
    for _ in range(count):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: whatever happens, it never returns into pytest
            try:
                os.close(read_end)
                os.write(write_end, f"{ids.new_request_id()} {ids.new_trace_id()} {ids.new_span_id()}".encode())
            finally:
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
    answered_by = set()
    for _ in range(150):  # a new connection each: gunicorn's workers take turns accepting
        connection = http.client.HTTPConnection("127.0.0.1", pyrie.port, timeout=5)
        try:
            connection.request("GET", "/no-such-path")
            answer = connection.getresponse()
            answer.read()
            seen.append(answer.headers["X-Amzn-RequestId"])
            assert connection.sock is not None  # still open: its server end tells which worker answered
            answered_by.add(_server_of(pyrie, connection.sock.getsockname()[1]))
        finally:
            connection.close()
    assert len(set(seen)) == len(seen)
    assert len(answered_by - {None}) >= 2, answered_by  # several workers answered: their ids did not collide


def _server_of(pyrie: Pyrie, client_port: int) -> int | None:
    """The pid of the process that holds the server end of the connection from ``client_port``."""
    for process in pyrie.descendants():
        try:
            if any(c.raddr and c.raddr.port == client_port for c in process.net_connections("tcp")):
                return process.pid
        except psutil.Error:
            continue
    return None


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
