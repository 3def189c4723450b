"""The POST that delivers a batch to an HTTP subscriber (``supervisor.observe.telemetry_hub._post``), against a real
socket: the request is checked with h11 as a reference parser, and each kind of answer gives its outcome."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import h11
import pytest

from runtime_api.subscription import Destination
from supervisor.observe.telemetry_hub import _post

BODY = b'[{"time":"2024-01-01T00:00:00.000Z","type":"platform.start","record":{}}]'


@contextlib.contextmanager
def subscriber(answer: bytes) -> Iterator[tuple[int, list[bytes]]]:
    """A listener on a free loopback port that reads one request (its head and Content-Length bytes of body), sends
    ``answer`` and closes; yields its port and, once done, the request's bytes."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            fields = dict(line.lower().split(b":", 1) for line in head.split(b"\r\n")[1:])
            length = int(fields[b"content-length"])
            while len(body) < length:
                body += conn.recv(65536)
            received.append(head + b"\r\n\r\n" + body)
            conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], received
    finally:
        thread.join(5)
        listener.close()


def test_the_request_is_a_post_of_the_batch_that_h11_reads_whole() -> None:
    with subscriber(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") as (port, received):
        _post(Destination("HTTP", port, "/telemetry/in"), BODY)
    server = h11.Connection(h11.SERVER)
    server.receive_data(received[0])
    request = server.next_event()
    assert isinstance(request, h11.Request)
    assert (request.method, request.target) == (b"POST", b"/telemetry/in")
    assert dict(request.headers) == {
        b"host": f"sandbox.localdomain:{port}".encode(),
        b"content-type": b"application/json",
        b"content-length": str(len(BODY)).encode(),
    }
    data = server.next_event()
    assert isinstance(data, h11.Data) and data.data == BODY
    assert isinstance(server.next_event(), h11.EndOfMessage)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"HTTP/1.1 202 Accepted\r\n\r\n", None),  # no length: the head is enough
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", None),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", "the subscriber answered 503"),
        (b"HTTP/1.0 404 Not Found\r\n\r\n", "the subscriber answered 404"),
        (b"", "the subscriber closed the connection before answering"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "the subscriber closed the connection before answering"),
        (b"hello there\r\n\r\n", "bad HTTP from the subscriber"),
    ],
)
def test_the_answer_s_status_decides(answer: bytes, error: str | None) -> None:
    with subscriber(answer) as (port, _):
        if error is None:
            _post(Destination("HTTP", port, "/"), BODY)
        else:
            with pytest.raises(OSError, match=error):
                _post(Destination("HTTP", port, "/"), BODY)


@pytest.mark.parametrize("path", ["/a b", "/caf\u00e9", "/x\x00"])
def test_a_path_that_cannot_be_a_request_target_is_refused_without_a_connection(path: str) -> None:
    with pytest.raises(OSError, match="cannot be sent in a request line"):
        _post(Destination("HTTP", 1, path), BODY)
