"""The supervisor's end of the pipe in one process, over real sockets under gevent: a stream's relay shares the loop,
what one stream holds is bounded, and a stalled peer is cut."""

from __future__ import annotations

import contextlib
import socket
import time

import gevent
import gevent.event
import gevent.socket

from pyrie_core.pipe.messages import Chunk, End, Invoke, Outcome
from runtime_api.http_connection import FLUSH_SIZE, RECV_SIZE
from supervisor.frontend import pipe_connection
from supervisor.frontend.pipe_connection import HIGH_WATER, SEND_BUFFER, PipeConnection
from supervisor.invocation import DiscardingSink, Invocation

# The largest piece of a streamed body the Runtime API hands on at once: what it gathered up to FLUSH_SIZE, and one
# more read.
PIECE = FLUSH_SIZE + RECV_SIZE


def end() -> End:
    return End(outcome=Outcome.OK, request_id="r", executed_version="$LATEST")


def connected_pair() -> tuple[PipeConnection, socket.socket]:
    """A PipeConnection on the supervisor's end of a Unix socket pair (sized as the pipe server sizes it), and the
    front end's end, which the test reads, or does not."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return PipeConnection(gevent.socket.socket(fileno=ours.detach())), theirs


def test_a_stream_that_never_waits_still_lets_the_loop_run() -> None:
    """A relay whose sink always has room (a fast client, or a client gone and its output dropped) reads its
    runtime's socket without ever blocking; each piece must still let the loop's other work (a timer, a kill) run."""
    invocation = Invocation(Invoke(function="function", payload=b"{}"), DiscardingSink(), "$LATEST")
    ran: list[int] = []
    for n in range(3):
        gevent.spawn(ran.append, n)
        invocation.write(b"piece")
        assert ran == list(range(n + 1))
    invocation.succeed()
    gevent.spawn(ran.append, 3)
    invocation.write(b"after the end")  # dropped, and still a chance for the others
    assert ran == [0, 1, 2, 3]


def test_one_stream_holds_a_bounded_amount_while_its_peer_reads_nothing() -> None:
    """What one stream holds in the supervisor: at most HIGH_WATER bytes queued plus the piece that crossed it, and
    the kernel's send buffer (Linux doubles what is asked): under 1 MiB (DESIGN.md §1 says well under; with the
    largest piece the Runtime API hands on it is 832 KiB)."""
    conn, theirs = connected_pair()
    stream = Invocation(Invoke(function="function", payload=b"{}"), conn, "$LATEST")
    stream.start_stream("text/plain")
    relay = gevent.spawn(lambda: [stream.write(b"x" * PIECE) for _ in range(1000)])
    gevent.sleep(0.2)
    assert not relay.dead, "the relay should wait for room"
    assert stream.waiting_for_room
    assert HIGH_WATER <= conn.queued <= HIGH_WATER + PIECE + 64
    kernel = conn._sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    assert kernel <= 2 * SEND_BUFFER
    held = HIGH_WATER + PIECE + kernel
    assert held < 2**20, f"one stream may hold {held} bytes"
    stream.fail("Sandbox.Timedout", b"{}")  # the invoke ends: the relay gives up waiting
    relay.join(1)
    assert relay.dead and not stream.waiting_for_room
    conn.close()
    theirs.close()


def test_a_peer_that_takes_nothing_after_the_end_is_cut(monkeypatch) -> None:
    """The invoke's End is queued while the writer already waits for the peer: the peer is still cut STALL_S after
    the End (a writer that began waiting before the End must not wait for ever)."""
    monkeypatch.setattr(pipe_connection, "STALL_S", 0.3)
    conn, theirs = connected_pair()
    conn.start_invoke()
    while conn.queued == 0:
        conn.send(Chunk(b"x" * RECV_SIZE))
    gevent.sleep(0.5)  # the writer waits for the socket, long before the invoke ends
    ended = time.monotonic()
    conn.send(end())
    with gevent.Timeout(3):
        while not conn.closed:
            gevent.sleep(0.01)
    assert 0.3 <= time.monotonic() - ended < 0.3 + 0.1
    theirs.setblocking(False)
    data = b""
    try:
        while chunk := theirs.recv(1 << 20):
            data += chunk
    except BlockingIOError:
        raise AssertionError("the connection was not shut") from None
    theirs.close()
    conn.close()


def test_a_peer_that_keeps_reading_after_the_end_is_not_cut(monkeypatch) -> None:
    """A slow peer that still takes bytes is not stalled: only STALL_S without progress cuts it. (Progress is seen a
    kernel buffer at a time: a Unix socket frees its sender's room as whole buffers are read.)"""
    monkeypatch.setattr(pipe_connection, "STALL_S", 0.3)
    conn, theirs = connected_pair()
    conn.start_invoke()
    for _ in range(16):
        conn.send(Chunk(b"x" * RECV_SIZE))
    conn.send(end())
    theirs.setblocking(False)
    deadline = time.monotonic() + 10
    while conn.queued and time.monotonic() < deadline:
        gevent.sleep(0.1)  # takes 256 KiB a second: slower than the writer, never stalled for 0.3 s
        with contextlib.suppress(BlockingIOError):
            theirs.recv(RECV_SIZE // 2)
    assert not conn.closed and conn.queued == 0
    theirs.close()
    conn.close()
