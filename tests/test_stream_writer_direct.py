"""StreamWriter's direct path: a small write to a pipe (or a file) with nothing queued goes out from the loop at once,
without waking the writer thread; to a full pipe it never waits, and is queued for the thread instead."""

from __future__ import annotations

import fcntl
import os
import time

from supervisor.observe.stream_writer import StreamWriter
from tests.cpu_wait import Stopwatch, assert_on_time


def test_a_small_write_to_a_pipe_goes_out_without_the_thread() -> None:
    read_end, write_end = os.pipe()
    try:
        writer = StreamWriter(write_end, 1 << 20, 1 << 20)
        writer.write(b"START RequestId: 1\n")
        assert os.read(read_end, 100) == b"START RequestId: 1\n"
        assert writer._thread is None
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_full_pipe_is_never_waited_for() -> None:
    read_end, write_end = os.pipe()
    try:
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
        writer = StreamWriter(write_end, 1 << 20, 1 << 20)
        with Stopwatch() as writes:
            for i in range(100):
                writer.write(b"%04d" % i + b"x" * 1000 + b"\n")
        assert_on_time("100 writes", writes.took, 0.5, writes.waited)  # none blocked on the reader, who reads nothing
        assert writer.pending > 0  # what the pipe could not take waits for the thread, in order
        received = b""
        deadline = time.monotonic() + 5
        while len(received) < 100 * 1005 and time.monotonic() < deadline:
            received += os.read(read_end, 65536)
        assert received == b"".join(b"%04d" % i + b"x" * 1000 + b"\n" for i in range(100))
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_regular_file_is_written_at_once(tmp_path) -> None:
    path = tmp_path / "out.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        writer = StreamWriter(fd, 1 << 20, 1 << 20)
        writer.write(b"one\n")
        writer.write(b"two\n")
        assert path.read_bytes() == b"one\ntwo\n"
        assert writer._thread is None
    finally:
        os.close(fd)
