"""One front-end connection of the pipe, as the response sink of the invoke it carries: sending never waits.

``send`` queues whole frames and writes what the socket takes at once; a writer greenlet of its own sends the rest as
the socket drains. So a timeout, a crash or a shutdown that has to tell the front end something acts on time however
slowly the client behind that worker reads. Backpressure is kept where it belongs: the runtime's relay waits in
``wait_for_room`` (in its own greenlet, never the loop's) while more than ``HIGH_WATER`` bytes are queued, so a slow
client slows only its own runtime.

What one stream holds in pyrie is bounded: at most ``HIGH_WATER`` bytes queued here plus the last piece handed in,
and what the kernel holds for the socket (``SEND_BUFFER``, which Linux doubles). A connection whose exchange has
ended (an invoke's ``End``, or the ``Status`` or ``ApiResponse`` answering a request was queued) but whose client
takes nothing more for ``STALL_S`` is cut (its socket shut), so the worker ends the response visibly incomplete and
nothing waits for that client past its exchange. What the peer takes is seen in the kernel's queue for it
(``TIOCOUTQ``), not only when the socket reports room again: a Unix socket does that only once three quarters of its
buffer have been read, which a slow but steady reader can take longer than ``STALL_S`` to do.
"""

from __future__ import annotations

import collections
import errno
import fcntl
import logging
import socket
import struct
import termios
import time
from typing import Any, Final

import gevent
import gevent.event
import gevent.socket

from pyrie_core.pipe.frames import MAX_FRAME_SIZE, FrameDecoder
from pyrie_core.pipe.messages import ApiResponse, End, Message, Status, frame_parts
from pyrie_core.socket_io import dropping, read_message

__all__ = ["FRAME_REST_S", "HIGH_WATER", "SEND_BUFFER", "STALL_S", "PipeConnection"]

log = logging.getLogger(__name__)

RECV_SIZE: Final = 256 * 1024
# The kernel's send buffer for the socket (Linux doubles what is asked: 512 KiB in flight) ...
SEND_BUFFER: Final = 256 * 1024
# ... and what may wait here before a streaming runtime is made to wait (one piece may come on top of it).
HIGH_WATER: Final = 128 * 1024
# After its invoke has ended, a connection that takes nothing for this long is cut; meanwhile its writer looks at
# what the peer has taken this many times per STALL_S.
STALL_S: Final = 2.0
STALL_CHECKS: Final = 4
# Once a frame has begun to arrive, the rest of it must come within this long.
FRAME_REST_S: Final = 10.0
_AGAIN: Final = (errno.EAGAIN, errno.EWOULDBLOCK)
_NOW: Final = socket.MSG_DONTWAIT  # a sendmsg that takes what the socket takes now, and never waits
# The last frame of an exchange: an invoke's, or the answer to a request.
_LAST_FRAMES: Final = frozenset({End, Status, ApiResponse})


class PipeConnection:
    def __init__(self, sock: Any, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        self._sock = sock
        self.decoder = FrameDecoder(max_frame_size)
        self._outbox: collections.deque[memoryview] = collections.deque()
        self._queued = 0
        self._room = gevent.event.Event()  # set while fewer than HIGH_WATER bytes wait, or once closed
        self._room.set()
        self._writer: gevent.Greenlet[Any] | None = None
        self._ended_at: float | None = None  # when the exchange's last frame was queued: a stall from then on is cut
        self._progress_at = 0.0  # when the socket last took bytes of ours
        self.closed = False  # the peer is gone, or the connection was cut: what is sent is dropped

    @property
    def queued(self) -> int:
        """Bytes waiting to be written."""
        return self._queued

    def read_message(self, first_within: float | None = None) -> Message | None:
        """The next message, or ``None`` when the peer closed the connection (a broken one counts as closed).

        Between frames the connection may stay idle (a front end keeps connections for reuse), unless
        ``first_within`` bounds the wait for the first byte; once a frame has started, all of it must come within
        ``FRAME_REST_S``. ``TimeoutError`` when a deadline passes; ``FrameError``/``ProtocolError`` for a bad
        frame."""
        return read_message(self._sock, self.decoder, RECV_SIZE, first_within, FRAME_REST_S)

    def send(self, *messages: Message) -> None:
        """Queue ``messages``, writing at once what the socket takes; never waits."""
        if self.closed:
            return
        parts = frame_parts(*messages)  # a large chunk's data is sent as it is, not copied into its frame
        if type(messages[-1]) in _LAST_FRAMES:  # from now on a client that stalls is cut
            self._ended_at = time.monotonic()
        sent = 0
        if not self._outbox:
            try:
                sent = self._sock.sendmsg(parts, (), _NOW) if len(parts) > 1 else self._sock.send(parts[0], 0, 0.0)
            except OSError as exc:
                if exc.errno not in _AGAIN:
                    self._lost()
                    return
            if sent == sum(map(len, parts)):
                return
            if sent:  # progress, for the writer that takes the rest (none runs while the queue is empty)
                self._progress_at = time.monotonic()
        for part in parts:
            if sent >= len(part):
                sent -= len(part)
                continue
            rest = memoryview(part)[sent:]
            sent = 0
            self._outbox.append(rest)
            self._queued += len(rest)
        if self._queued >= HIGH_WATER:
            self._room.clear()
        if self._writer is None:
            self._writer = gevent.spawn(self._drain)

    def start_exchange(self) -> None:
        """A request (an invoke, a status or API request) was read: until its last frame is queued, the client is
        not judged on how fast it takes what was queued before."""
        self._ended_at = None

    def wait_for_room(self, abort: gevent.event.Event) -> None:
        """Wait (a streaming runtime's relay waits here) until fewer than ``HIGH_WATER`` bytes are queued, the
        connection is gone, or ``abort`` is set."""
        if not self._room.is_set():
            gevent.wait([self._room, abort], count=1)

    def close(self) -> None:
        self.closed = True
        self._room.set()
        self._outbox.clear()
        self._queued = 0
        writer, self._writer = self._writer, None
        if writer is not None and writer is not gevent.getcurrent():
            writer.kill(block=False)
        with dropping(log, "closing a front-end connection"):
            self._sock.close()

    def cut(self, reason: str) -> None:
        """Shut the connection now: the worker sees its end and ends its client's response short."""
        log.info("front-end connection cut: %s", reason)
        with dropping(log, "shutting a front-end connection"):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._lost()

    def _lost(self) -> None:
        self.closed = True
        self._room.set()
        self._outbox.clear()
        self._queued = 0

    def _drain(self) -> None:
        """Write the queue out as the socket drains; cut a client that stalls after its exchange ended.

        The exchange may end (its last frame queued behind what waits) while this waits for the socket, so no wait
        lasts longer than ``STALL_S`` before the stall is judged again, and once the exchange has ended, the peer's
        progress is looked at ``STALL_CHECKS`` times per ``STALL_S``."""
        outbox = self._outbox
        fileno = self._sock.fileno()
        unread = _unread(fileno)  # what the kernel holds for the peer, after our last write
        try:
            while outbox and not self.closed:
                now_unread = _unread(fileno)
                if now_unread < unread:  # the peer read from the kernel's buffer since
                    self._progress_at = time.monotonic()
                unread = now_unread
                if self._ended_at is None:
                    timeout = STALL_S
                else:
                    idle = time.monotonic() - max(self._ended_at, self._progress_at)
                    if idle >= STALL_S:
                        self.cut(f"its client took nothing for {STALL_S:g} s after its whole response was queued")
                        return
                    timeout = min(STALL_S - idle, STALL_S / STALL_CHECKS)
                try:
                    gevent.socket.wait_write(fileno, timeout=timeout)
                except TimeoutError:
                    continue
                while outbox:
                    head = outbox[0]
                    try:
                        sent = self._sock.send(head, 0, 0.0)
                    except OSError as exc:
                        if exc.errno in _AGAIN:
                            break
                        self._lost()
                        return
                    self._queued -= sent
                    self._progress_at = time.monotonic()
                    if sent == len(head):
                        outbox.popleft()
                    else:
                        outbox[0] = head[sent:]
                        break
                unread = _unread(fileno)
                if self._queued < HIGH_WATER:
                    self._room.set()
        finally:
            if self._writer is gevent.getcurrent():
                self._writer = None


def _unread(fileno: int) -> int:
    """What the kernel holds for the peer and it has not taken yet (bytes for TCP; buffer memory for a Unix socket,
    freed as the peer reads); 0 if the socket cannot say."""
    with dropping(log, "what the kernel holds for a front-end connection"):
        return int(struct.unpack("i", fcntl.ioctl(fileno, termios.TIOCOUTQ, b"\0\0\0\0"))[0])
    return 0
