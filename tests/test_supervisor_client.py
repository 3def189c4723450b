"""The front end's pooled connections to the supervisor, against a stand-in supervisor on a real TCP socket."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from invoke_api import supervisor_client
from invoke_api.supervisor_client import SupervisorClient, SupervisorEndpoint, SupervisorUnavailable
from pyrie_core.address import Address
from pyrie_core.pipe.frames import FrameDecoder
from pyrie_core.pipe.messages import Hello, Status, StatusRequest, frames
from pyrie_core.socket_io import read_message
from tests.cpu_wait import Stopwatch, assert_on_time

TOKEN = "s3cret"
STATUS = Status(function="f", version="$LATEST", max_concurrency=1)


class OneAnswerSupervisor:
    """Answers one status request per connection, then shuts the connection (as a supervisor that restarted
    would have): it counts the connections and the requests it saw."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.connections = 0
        self.requests = 0
        self.shut = threading.Semaphore(0)  # released as each connection is shut
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> SupervisorEndpoint:
        return SupervisorEndpoint(address=Address("127.0.0.1", self.listener.getsockname()[1]), token=TOKEN)

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with sock:
                sock.settimeout(5)
                decoder = FrameDecoder()
                assert read_message(sock, decoder, 65536) == Hello(TOKEN)
                if isinstance(read_message(sock, decoder, 65536), StatusRequest):
                    self.requests += 1
                    sock.sendall(frames(STATUS))
            self.shut.release()

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept
        self.listener.close()
        self._thread.join(5)


@pytest.fixture
def supervisor() -> Iterator[OneAnswerSupervisor]:
    server = OneAnswerSupervisor()
    yield server
    server.close()


def answered_twice(client: SupervisorClient, supervisor: OneAnswerSupervisor) -> None:
    for _ in range(2):
        conn = client.send(StatusRequest())
        assert conn.expect(Status, "a status request", 5) == STATUS
        client.release(conn)
        # idle in the pool when the supervisor shuts it (a thread of the stand-in's: on a loaded machine it may do
        # so only after the next request was sent, which then is lost, as it would be with any peer)
        assert supervisor.shut.acquire(timeout=10)


def test_an_idle_connection_the_supervisor_shut_is_not_reused(supervisor: OneAnswerSupervisor) -> None:
    """Over TCP a write to a connection its peer has shut still succeeds: the request would be lost, and the caller
    answered 502. The shut connection is seen before it is used, and a new one carries the request."""
    client = SupervisorClient(supervisor.endpoint)
    answered_twice(client, supervisor)
    assert (supervisor.connections, supervisor.requests) == (2, 2)


def test_a_reset_is_named_a_reset_not_a_clean_close(tmp_path) -> None:
    # A supervisor that closes the connection with the request unread resets it (on a Unix socket as on TCP): the
    # front end says the connection broke, and why, not that the supervisor closed it.
    path = str(tmp_path / "pipe.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()

    def reset_the_first() -> None:
        sock, _ = listener.accept()
        sock.recv(1)  # the request has arrived, and most of it is left unread
        sock.close()

    thread = threading.Thread(target=reset_the_first, daemon=True)
    thread.start()
    try:
        client = SupervisorClient(SupervisorEndpoint(path=path))
        with pytest.raises(SupervisorUnavailable, match="the supervisor connection broke: Connection reset by peer"):
            client.status()
    finally:
        thread.join(5)
        listener.close()


def test_a_hung_supervisor_is_given_one_deadline_not_one_per_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    # It answers once, then hangs (its loop stuck): the status request on the pooled connection gets no answer, and
    # is not tried again on a new connection, which would only wait as long again.
    monkeypatch.setattr(supervisor_client, "STATUS_TIMEOUT_S", 1.0)
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    hang = threading.Event()

    def answer_once_then_hang() -> None:
        while not hang.is_set():
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            accepted.append(sock)
            decoder = FrameDecoder()
            sock.settimeout(5)
            assert read_message(sock, decoder, 65536) == Hello(TOKEN)
            if isinstance(read_message(sock, decoder, 65536), StatusRequest):
                sock.sendall(frames(STATUS))
            hang.set()

    thread = threading.Thread(target=answer_once_then_hang, daemon=True)
    thread.start()
    try:
        endpoint = SupervisorEndpoint(address=Address("127.0.0.1", listener.getsockname()[1]), token=TOKEN)
        client = SupervisorClient(endpoint)
        assert client.status() == STATUS
        with Stopwatch() as asked, pytest.raises(SupervisorUnavailable, match="did not answer within 1 s"):
            client.status()
        assert asked.took >= 1.0, asked.took
        # one deadline (two would take 2 s), give or take this thread's wait for a CPU
        assert_on_time("the refusal", asked.took - 1.0, 0.8, asked.waited)
        assert len(accepted) == 1
    finally:
        listener.close()
        for sock in accepted:
            sock.close()
        thread.join(5)
