"""The front end's pooled connections to the supervisor, against a stand-in supervisor on a real TCP socket."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from invoke_api.supervisor_client import SupervisorClient, SupervisorEndpoint
from pyrie_core.address import Address
from pyrie_core.pipe.frames import FrameDecoder, encode_frame
from pyrie_core.pipe.messages import Hello, Status, StatusRequest, encode
from pyrie_core.socket_io import read_message

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
                    sock.sendall(encode_frame(encode(STATUS)))
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
