"""Sockets that never finish, garbage and floods on the supervisor's pipe (issue 9, item 8), on its Unix socket and on
``--supervisor-address`` (TCP, with PYRIE_SUPERVISOR_TOKEN): each bad connection is closed on its deadline (or at
once) with one log line, and pyrie keeps serving everyone else."""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
import gevent.socket
import msgpack
import pytest

from pyrie_core.pipe.frames import MAX_FRAME_SIZE, FrameDecoder
from pyrie_core.pipe.messages import Chunk, End, Hello, Invoke, Kind, Outcome, Status, StatusRequest, decode, frames
from supervisor.frontend_link import pipe_server
from supervisor.frontend_link.pipe_connection import FRAME_REST_S, HIGH_WATER
from supervisor.frontend_link.pipe_server import HELLO_S, MAX_UNADMITTED, RESERVED_DESCRIPTORS, PipeServer
from supervisor.invocation import Invocation, ResponseSink
from tests.conftest import StartPyrie
from tests.cpu_wait import assert_on_time, thread_run_delay
from tests.harness import Pyrie, free_port, wait_until

FUNCTIONS = Path(__file__).parent / "functions"
TOKEN = "pipe-faults-token-0123456789abcdef"
# A deadline is met within this (the server's loop, then the kernel's close reaching the peer).
ON_TIME_S = 0.3
PROTOCOL_ERROR = "supervisor protocol error from the front end, closing its connection: "
REFUSED = "refused a front-end connection from "


@dataclass
class Endpoints:
    pyrie: Pyrie
    unix: str  # the pipe's Unix socket
    tcp: tuple[str, int]  # --supervisor-address


def start(start_pyrie: StartPyrie, **kwargs: Any) -> Endpoints:
    port = free_port()
    pyrie = start_pyrie(
        "--supervisor-address",
        f"127.0.0.1:{port}",
        "hardening.handler",
        cwd=FUNCTIONS,
        extra_env={"PYRIE_SUPERVISOR_TOKEN": TOKEN},
        **kwargs,
    )
    return Endpoints(pyrie, pyrie.pipe_path(), ("127.0.0.1", port))


def connect(where: str | tuple[str, int]) -> socket.socket:
    if isinstance(where, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(where)
        return sock
    return socket.create_connection(where)


def frame(message: Any) -> bytes:
    return bytes(frames(message))


def raw_frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def closed_after(sock: socket.socket, timeout: float, since: float | None = None) -> float | None:
    """Seconds until the peer closed (or reset) the connection, reading and dropping what it sends, from ``since``
    (monotonic; by default now); ``None`` if it was still open after ``timeout``."""
    began = time.monotonic() if since is None else since
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - began


def status_over(sock: socket.socket) -> Status:
    """Ask for the pool's status on a connection, as a front end's /healthz does."""
    sock.sendall(frame(StatusRequest()))
    decoder = FrameDecoder()
    sock.settimeout(5)
    while True:
        message = decoder.next_frame()
        if isinstance(message, bytes | memoryview):
            status = decode(message)
            assert isinstance(status, Status)
            return status
        data = sock.recv(65536)
        assert data, "the supervisor closed a connection it should serve"
        decoder.feed(data)


def test_sockets_that_never_finish_are_closed_on_their_deadlines(start_pyrie: StartPyrie) -> None:
    """A frame begun and never finished (Unix socket; TCP after Hello) is closed after FRAME_REST_S; a TCP connection
    that sends no Hello, or only part of one, after HELLO_S; each with one log line. An idle connection between frames
    (a front end's pooled one) stays open and usable."""
    ends = start(start_pyrie)
    pyrie = ends.pyrie
    queue = pyrie.run_queue()
    began, opened = time.time(), time.monotonic()
    cases: dict[str, tuple[socket.socket, float]] = {}
    unix_partial = connect(ends.unix)
    unix_partial.sendall(struct.pack(">I", 100) + b"only part")
    cases["unix: a frame begun"] = (unix_partial, FRAME_REST_S)
    tcp_partial = connect(ends.tcp)
    tcp_partial.sendall(frame(Hello(TOKEN)) + struct.pack(">I", 100))
    cases["tcp: a frame begun after Hello"] = (tcp_partial, FRAME_REST_S)
    cases["tcp: no Hello"] = (connect(ends.tcp), HELLO_S)
    tcp_half_hello = connect(ends.tcp)
    tcp_half_hello.sendall(frame(Hello(TOKEN))[:7])
    cases["tcp: half a Hello"] = (tcp_half_hello, HELLO_S)
    idle = connect(ends.unix)
    results: dict[str, float | None] = {}
    threads = [
        threading.Thread(
            target=lambda n=name, s=sock: results.__setitem__(n, closed_after(s, FRAME_REST_S + 5, since=opened))
        )
        for name, (sock, _) in cases.items()
    ]
    for thread in threads:
        thread.start()
    assert pyrie.invoke(b'{"kind": "hello", "n": 1}').json()["hello"] == 1  # served meanwhile
    for thread in threads:
        thread.join()
    queue.stop()
    waited = queue.waited(began, time.time())  # what pyrie and the test waited for a CPU, at most
    print({name: None if seconds is None else round(seconds, 3) for name, seconds in results.items()})
    for name, (_, deadline) in cases.items():
        seconds = results[name]
        assert seconds is not None, f"{name}: still open"
        # opened just after ``opened``: not closed before its deadline, and closed on time
        assert seconds >= deadline - 0.05, f"{name}: closed after {seconds:.3f} s"
        assert_on_time(f"{name}: the close", max(seconds - deadline, 0.0), ON_TIME_S, waited)
    assert closed_after(idle, 0.1) is None  # 15 s idle between frames: still open
    assert status_over(idle).function == "test_function"
    errors = pyrie.stderr()
    assert errors.count(f"a frame began but did not arrive whole within {FRAME_REST_S:g} s") == 2
    assert errors.count(f"no Hello within {HELLO_S:g} s") == 2
    assert "Traceback" not in errors
    for sock, _ in cases.values():
        sock.close()
    idle.close()


GARBAGE = {
    "a length over the maximum": struct.pack(">I", MAX_FRAME_SIZE + 1),
    "not msgpack": raw_frame(b"\xc1\xc1\xc1"),
    "msgpack, not a map": raw_frame(msgpack.packb([1, 2, 3])),
    "an unknown type": raw_frame(msgpack.packb({"t": 99})),
    "a malformed Invoke": raw_frame(msgpack.packb({"t": int(Kind.INVOKE), "function": 7, "payload": "str"})),
    "a message only the supervisor sends": frame(End(Outcome.OK, "r", "$LATEST")),
    "a chunk of nothing": frame(Chunk(b"x")),
}


@pytest.mark.parametrize("where", ["unix", "tcp after Hello", "tcp before Hello"])
def test_garbage_frames_close_only_their_connection(start_pyrie: StartPyrie, where: str) -> None:
    ends = start(start_pyrie)
    pyrie = ends.pyrie
    keeper = connect(ends.unix if where == "unix" else ends.tcp)  # a good connection, open throughout
    if where != "unix":
        keeper.sendall(frame(Hello(TOKEN)))
    assert status_over(keeper).function == "test_function"
    for name, garbage in GARBAGE.items():
        with connect(ends.unix if where == "unix" else ends.tcp) as sock, pyrie.run_queue() as queue:
            sent = time.time()
            sock.sendall((frame(Hello(TOKEN)) if where == "tcp after Hello" else b"") + garbage)
            seconds = closed_after(sock, 5)
            assert seconds is not None, f"{name}: still open"
            assert_on_time(f"{name}: the close", seconds, ON_TIME_S, queue.waited(sent, time.time()))
    expected = REFUSED if where == "tcp before Hello" else PROTOCOL_ERROR
    wait_until(lambda: pyrie.stderr().count(expected) >= len(GARBAGE), 5, what="a line for each")
    time.sleep(0.2)  # and no more
    lines = [line for line in pyrie.stderr().splitlines() if expected in line]
    print("\n".join(lines))
    assert len(lines) == len(GARBAGE), lines  # one line each
    assert all(line.split(": ")[-1].strip() for line in lines), lines  # each with its reason
    assert "Traceback" not in pyrie.stderr()
    assert status_over(keeper).function == "test_function"  # the good connection is still served
    assert pyrie.invoke(b'{"kind": "hello", "n": 2}').json()["hello"] == 2
    keeper.close()


# --- the cap on connections ------------------------------------------------------------------------------------


class _Pool:
    """What the pipe server hands invokes to, for the in-process tests: only its status is asked for."""

    def submit(self, request: Invoke, sink: ResponseSink) -> Invocation:
        raise AssertionError("no invoke is sent here")

    def status(self) -> Status:
        return Status(function="test_function", version="$LATEST", max_concurrency=1, environments=())


def gevent_status(sock: gevent.socket.socket) -> bool:
    """Whether the server answers a status request on ``sock`` (False: it closed the connection)."""
    try:
        sock.sendall(frame(StatusRequest()))
        with gevent.Timeout(5):
            return bool(sock.recv(65536))
    except (ConnectionResetError, BrokenPipeError):  # closed with the request unread
        return False


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_connections_beyond_the_cap_are_refused_with_one_line_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, transport: str
) -> None:
    """The PipeServer itself, with a cap of 3, over real sockets."""
    caplog.set_level(logging.WARNING)
    if transport == "unix":
        listener = gevent.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address: Any = str(tmp_path / "pipe.sock")
    else:
        listener = gevent.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        address = ("127.0.0.1", 0)
    listener.bind(address)
    address = listener.getsockname()
    listener.listen(16)
    server = PipeServer(listener, _Pool(), token=TOKEN if transport == "tcp" else None, max_connections=3)
    server.start()

    def opened() -> gevent.socket.socket:
        sock = gevent.socket.socket(listener.family, socket.SOCK_STREAM)
        sock.connect(address)
        if transport == "tcp":
            sock.sendall(frame(Hello(TOKEN)))
        return sock

    try:
        with contextlib.ExitStack() as sockets:
            held = [sockets.enter_context(opened()) for _ in range(3)]
            assert all(gevent_status(sock) for sock in held)
            refused = [sockets.enter_context(opened()) for _ in range(2)]
            assert not any(gevent_status(sock) for sock in refused)
            lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(REFUSED)]
            assert len(lines) == 2 and all("3 are open already" in line for line in lines), lines
            held.pop().close()
            gevent.sleep(0.1)
            again = sockets.enter_context(opened())
            assert gevent_status(again)  # room again
    finally:
        server.stop()


def test_strangers_cannot_crowd_out_front_ends_that_know_the_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """At most MAX_UNADMITTED connections may be waiting to show the token; beyond them, new ones are refused, while
    the front ends that show it are served (they are admitted at once)."""
    caplog.set_level(logging.WARNING)
    listener = gevent.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    address = listener.getsockname()
    listener.listen(256)
    server = PipeServer(listener, _Pool(), token=TOKEN)
    server.start()
    try:
        with contextlib.ExitStack() as sockets:

            def connect() -> gevent.socket.socket:
                return sockets.enter_context(gevent.socket.create_connection(address))

            strangers = [connect() for _ in range(MAX_UNADMITTED + 5)]
            gevent.sleep(0.2)
            lines = [r.getMessage() for r in caplog.records if "still to show the token" in r.getMessage()]
            assert len(lines) == 5, lines
            friend = connect()
            friend.sendall(frame(Hello(TOKEN)))
            assert not gevent_status(friend)  # all the stranger slots are taken: refused too, with its line
            for sock in strangers[:10]:
                sock.close()
            gevent.sleep(0.1)
            friend = connect()
            friend.sendall(frame(Hello(TOKEN)))
            assert gevent_status(friend)
    finally:
        server.stop()


def test_a_flood_of_connections_leaves_pyrie_the_descriptors_it_needs(start_pyrie: StartPyrie) -> None:
    """With ``ulimit -n`` at 512, each pipe server takes at most (512 - RESERVED_DESCRIPTORS) / 2 connections: a front
    end that opens too many on the TCP port has the rest refused one line each, with no traceback (the process never
    runs out of descriptors), and pyrie's own front end is still served, by an environment that had to start."""
    limit = 512
    cap = (limit - RESERVED_DESCRIPTORS) // 2
    assert pipe_server.connection_cap(10_000) >= cap  # this machine allows more than the test's limit
    ends = start(start_pyrie, descriptors=limit)
    pyrie = ends.pyrie
    with contextlib.ExitStack() as flood:
        for _ in range(limit + 20):  # more than the process may open
            sock = flood.enter_context(connect(ends.tcp))
            sock.sendall(frame(Hello(TOKEN)))
        refusals = limit + 20 - cap  # one line each, whether refused as over the cap or as one too many still to show
        wait_until(lambda: pyrie.stderr().count(REFUSED) >= refusals, 10, what="the refusals")
        time.sleep(0.2)
        errors = pyrie.stderr()
        assert errors.count(REFUSED) == refusals, errors[-2000:]
        assert errors.count(f"{cap} are open already") > 0
        assert "Traceback" not in errors and "Too many open files" not in errors
        # two invokes at once on pyrie's own front end: two environments start, descriptors and all
        sleeper = threading.Thread(target=lambda: pyrie.invoke(b'{"kind": "sleep", "seconds": 2}'))
        sleeper.start()
        wait_until(lambda: "SLEEP " in pyrie.stdout(), 10, what="the sleeper")
        assert pyrie.invoke(b'{"kind": "hello", "n": 1}').json()["hello"] == 1
        sleeper.join()
        assert "Traceback" not in pyrie.stderr()


def test_a_peer_that_asks_without_reading_is_held_and_shares_the_loop(tmp_path: Path) -> None:
    """A front end that sends 100,000 status requests at once and reads none of the answers: what waits for it stays
    bounded (its requests are read no further until it reads), the loop's other work runs meanwhile, and once it
    reads it gets every answer."""
    listener = gevent.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path = str(tmp_path / "pipe.sock")
    listener.bind(path)
    listener.listen(16)
    server = PipeServer(listener, _Pool())
    server.start()
    requests_count = 100_000
    ticks: list[tuple[float, float]] = []  # (when, the loop's wait for a CPU by then)

    def tick() -> None:
        while True:
            ticks.append((time.monotonic(), thread_run_delay()))
            gevent.sleep(0.005)

    ticker = gevent.spawn(tick)
    try:
        peer = gevent.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        peer.connect(path)
        sender = gevent.spawn(peer.sendall, frame(StatusRequest()) * requests_count)
        gevent.sleep(1.0)
        [conn] = server._connections
        assert conn.queued <= HIGH_WATER + 4096, conn.queued
        # the loop ran other work meanwhile: no gap between ticks but its wait for a CPU
        gaps = [(b - a) - (b_wait - a_wait) for (a, a_wait), (b, b_wait) in itertools.pairwise(ticks)]
        assert max(gaps) < 0.1, max(gaps)
        decoder = FrameDecoder()
        answers = 0
        with gevent.Timeout(60):
            while answers < requests_count:
                data = peer.recv(1 << 20)
                assert data, f"the server closed the connection after {answers} answers"
                decoder.feed(data)
                while isinstance(decoder.next_frame(), bytes | memoryview):
                    answers += 1
        sender.join(5)
        assert answers == requests_count
        peer.close()
    finally:
        ticker.kill()
        server.stop()
