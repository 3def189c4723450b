"""The supervisor's end of the pipe in one process, over real sockets under gevent: a stream's relay shares the loop,
what one stream holds is bounded, and a stalled peer is cut."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import gevent
import gevent.event
import gevent.socket

from pyrie_core.pipe.frames import FrameDecoder
from pyrie_core.pipe.messages import ApiRequest, ApiResponse, Chunk, End, Invoke, Outcome, Status, decode, frames
from runtime_api.http_connection import FLUSH_SIZE, RECV_SIZE
from supervisor.frontend_link import pipe_connection
from supervisor.frontend_link.pipe_connection import HIGH_WATER, SEND_BUFFER, PipeConnection
from supervisor.frontend_link.pipe_server import PipeServer
from supervisor.invocation import DiscardingSink, Invocation, ResponseSink
from tests.cpu_wait import Stopwatch, assert_on_time

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
    conn.start_exchange()
    while conn.queued == 0:
        conn.send(Chunk(b"x" * RECV_SIZE))
    gevent.sleep(0.5)  # the writer waits for the socket, long before the invoke ends
    with Stopwatch() as cut:
        conn.send(end())
        with gevent.Timeout(3):
            while not conn.closed:
                gevent.sleep(0.01)
    assert cut.took >= 0.3
    assert_on_time("the cut", cut.took - 0.3, 0.1, cut.waited)
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
    conn.start_exchange()
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


# --- answers between invokes ---------------------------------------------------------------------------------------

BIG_ANSWER = 2 * 1024 * 1024


class _Desk:
    """What the pipe server hands requests to: an invoke answered at once, and API answers of BIG_ANSWER bytes."""

    def submit(self, request: Invoke, sink: ResponseSink) -> Invocation:
        invocation = Invocation(request, sink, "$LATEST")
        invocation.respond("application/json", b"{}")
        return invocation

    def status(self) -> Status:
        return Status(function="function", version="$LATEST", max_concurrency=1)

    def answer(self, request: ApiRequest) -> ApiResponse:
        return ApiResponse(200, {}, b"x" * BIG_ANSWER)


@contextlib.contextmanager
def served(tmp_path: Path) -> Iterator[gevent.socket.socket]:
    """A PipeServer with ``_Desk`` on a Unix socket, and a front end's connection to it."""
    listener = gevent.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "pipe.sock"))
    listener.listen(16)
    server = PipeServer(listener, _Desk())
    server.start()
    peer = gevent.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    peer.connect(str(tmp_path / "pipe.sock"))
    try:
        yield peer
    finally:
        peer.close()
        server.stop()


def read_until(peer: gevent.socket.socket, decoder: FrameDecoder, kind: type, pace: int | None = None) -> int:
    """Read frames until one of type ``kind``; ``pace``: at most that many bytes each 0.05 s (a slow, steady
    client). Returns the bytes read; 0 if the connection ended first."""
    read = 0
    while True:
        while isinstance(frame := decoder.next_frame(), bytes | memoryview):
            if isinstance(decode(frame), kind):
                return read
        data = peer.recv(pace or (1 << 20))
        if not data:
            return 0
        read += len(data)
        decoder.feed(data)
        if pace is not None:
            gevent.sleep(0.05)


def test_an_answer_on_a_reused_connection_is_not_cut_while_its_client_reads(monkeypatch, tmp_path: Path) -> None:
    """A pooled connection whose last invoke ended long ago carries an ApiResponse larger than the socket takes at
    once: a client that keeps reading it gets all of it (the stall clock starts with the answer, not the End)."""
    monkeypatch.setattr(pipe_connection, "STALL_S", 0.3)
    with served(tmp_path) as peer:
        decoder = FrameDecoder()
        peer.sendall(frames(Invoke(function="function", payload=b"{}")))
        assert read_until(peer, decoder, End)
        gevent.sleep(0.5)  # longer than STALL_S since that End
        peer.sendall(frames(ApiRequest("GET", "/durable")))
        with gevent.Timeout(10):
            assert read_until(peer, decoder, ApiResponse, pace=64 * 1024) > BIG_ANSWER


def test_a_client_that_takes_no_answer_is_cut(monkeypatch, tmp_path: Path) -> None:
    """An ApiResponse on a fresh connection whose client reads nothing: the connection is cut STALL_S after the
    answer was queued, as after an invoke's End (the server's read loop no longer waits for that client for ever)."""
    monkeypatch.setattr(pipe_connection, "STALL_S", 0.3)
    with served(tmp_path) as peer:
        peer.sendall(frames(ApiRequest("GET", "/durable")))
        gevent.sleep(1.0)
        with gevent.Timeout(5):
            assert read_until(peer, FrameDecoder(), ApiResponse) == 0


def test_written_is_set_once_what_was_queued_is_written_out() -> None:
    """The event shutdown waits on before it stops the front end (``PipeServer.flush``): set while nothing waits to be
    written, cleared while the peer has not read enough for the queue to go out, set again once it has (or once the
    connection is gone)."""
    conn, theirs = connected_pair()
    assert conn.written.is_set()
    conn.send(ApiResponse(status=200, body=b"x" * (4 * SEND_BUFFER)))  # more than the kernel takes at once
    assert not conn.written.is_set()
    assert not conn.written.wait(0.1)  # the peer reads nothing: it stays unwritten
    peer = gevent.socket.socket(fileno=theirs.detach())
    reader = gevent.spawn(read_until, peer, FrameDecoder(), ApiResponse)
    assert conn.written.wait(5)
    reader.join(5)
    conn.close()
    peer.close()
    stalled, theirs = connected_pair()
    stalled.send(ApiResponse(status=200, body=b"y" * (4 * SEND_BUFFER)))
    assert not stalled.written.is_set()
    stalled.close()  # gone: nothing more will be written
    assert stalled.written.is_set()
    theirs.close()
