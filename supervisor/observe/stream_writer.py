"""Writing to a file descriptor another process drains (pyrie's stdout and stderr) without ever waiting for it.

A paused terminal, a pipe nobody reads or a container log driver that falls behind must not stop the supervisor's
loop. ``write`` only appends to a buffer; one writer thread (a real thread: the file descriptor stays blocking, as the
processes sharing it expect) writes the buffer out. The buffer is bounded twice: past ``soft_limit`` bytes
``has_room`` turns false, so a producer that can wait (a runtime's output relay, which then stops reading the
runtime's pipe and so slows that runtime) waits in ``wait_for_room``; past ``hard_limit`` bytes what cannot wait is
dropped, counted, and the count written once the reader is back.
"""

from __future__ import annotations

import collections
import os
import stat
import threading
import time
from collections.abc import Callable
from typing import Final

import gevent
import gevent.event

__all__ = ["StreamWriter"]

MAX_WRITE: Final = 1024 * 1024
# A write of at most this much (PIPE_BUF: a pipe takes it whole or not at all) may go out at once, from the loop.
DIRECT_MAX: Final = 4096


class StreamWriter:
    def __init__(self, fd: int, soft_limit: int, hard_limit: int) -> None:
        self._fd = fd
        self.soft_limit = soft_limit
        self.hard_limit = hard_limit
        self._chunks: collections.deque[bytes] = collections.deque()
        self._pending = 0  # bytes appended and not yet written
        self._dropped = 0  # writes given up past hard_limit, not yet reported
        self._broken = False  # the descriptor is closed for good: everything is dropped quietly
        self._lock = threading.Lock()
        self._more = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._direct = _direct_writer(fd)
        # The writer thread wakes the loop through an async watcher, the one thread-safe way into gevent's hub.
        self._room = gevent.event.Event()
        self._room.set()
        self._signal = gevent.get_hub().loop.async_()
        self._signal.start(self._room_changed)

    @property
    def pending(self) -> int:
        return self._pending

    @property
    def has_room(self) -> bool:
        return self._pending < self.soft_limit

    def write(self, data: bytes) -> None:
        """Queue ``data``; never waits. Past ``hard_limit`` it is dropped (and counted)."""
        if self._broken or not data:
            return
        if self._direct is not None and not self._pending and len(data) <= DIRECT_MAX:
            # Nothing is queued or being written: write it now when that cannot wait (saves waking the thread).
            written = self._direct(data)
            if written == len(data):
                return
            data = data[written:]
        with self._lock:
            if self._pending + len(data) > self.hard_limit:
                self._dropped += 1
                return
            self._chunks.append(data)
            self._pending += len(data)
            if self._pending >= self.soft_limit:
                self._room.clear()
            self._more.notify()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"writer-fd{self._fd}", daemon=True)
            self._thread.start()

    def wait_for_room(self) -> None:
        """Wait (a greenlet that can, such as a runtime's output relay) until the buffer is below ``soft_limit``."""
        while not self.has_room and not self._broken:
            self._room.clear()
            if self.has_room:
                break
            self._room.wait()

    def flush(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for everything queued to be written; whether it was."""
        deadline = time.monotonic() + timeout_s
        while self._pending and not self._broken and time.monotonic() < deadline:
            gevent.sleep(0.01)
        return not self._pending or self._broken

    def _room_changed(self) -> None:
        if self.has_room or self._broken:
            self._room.set()

    def _run(self) -> None:
        chunks = self._chunks
        while True:
            # At most about MAX_WRITE bytes at a time: a buffer that filled while the reader was away is not copied
            # whole (that would hold it twice).
            with self._lock:
                while not chunks:
                    self._more.wait()
                batch = [chunks.popleft()]
                size = len(batch[0])
                while chunks and size < MAX_WRITE:
                    batch.append(chunks.popleft())
                    size += len(batch[-1])
                dropped = 0
                if not chunks:  # the drops came after everything written so far: say so after it
                    dropped, self._dropped = self._dropped, 0
            self._write_all(b"".join(batch))
            if dropped:
                self._write_all(f"pyrie: {dropped} log writes were dropped: the reader did not keep up\n".encode())
            with self._lock:
                self._pending -= size
                room = self._pending < self.soft_limit
            if room or self._broken:
                self._signal.send()

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view and not self._broken:
            try:
                written = os.write(self._fd, view[:MAX_WRITE])
            except InterruptedError:
                continue
            except OSError:
                self._broken = True  # stdout is gone (a closed pipe): the function goes on without its log
                return
            view = view[written:]


def _direct_writer(fd: int) -> Callable[[bytes], int] | None:
    """How to write a small piece to ``fd`` from the loop without ever waiting for a reader, or ``None`` when only
    the thread can: a pipe takes it with ``RWF_NOWAIT`` (whole, or refused at once when full); a regular file has no
    reader to wait for. It returns how many bytes went out (0 when none could)."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return None
    if stat.S_ISFIFO(mode) and hasattr(os, "RWF_NOWAIT"):

        def to_pipe(data: bytes) -> int:
            try:
                return os.pwritev(fd, [data], -1, os.RWF_NOWAIT)
            except OSError:
                return 0  # full (EAGAIN), or a kernel without RWF_NOWAIT for pipes: the thread writes it

        return to_pipe
    if stat.S_ISREG(mode):

        def to_file(data: bytes) -> int:
            try:
                return os.write(fd, data)
            except OSError:
                return 0  # the thread tries again, and gives up on the descriptor if it fails too

        return to_file
    return None
