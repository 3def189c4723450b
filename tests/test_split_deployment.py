"""The front end and the supervisor as separate processes: gunicorn with deploy/gunicorn.conf.py talking to
``pyrie --supervisor-address`` over TCP, each connection admitted by the shared token."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import requests

from pyrie_core.pipe.frames import FrameDecoder
from pyrie_core.pipe.messages import Hello, Invoke, Status, StatusRequest, decode, frames
from tests.conftest import StartFrontEnd, StartPyrie
from tests.cpu_wait import MachineWait, assert_one_by_one
from tests.harness import INVOKE_PATH, Pyrie, free_port
from tests.streaming import stream_invoke
from tests.test_resilience import frontend_master

EXAMPLES = Path(__file__).parent.parent / "examples"
TOKEN = "split-deployment-token-0123456789"


def start_supervisor(start_pyrie: StartPyrie) -> tuple[Pyrie, str]:
    """pyrie serving examples/python-sse, also taking front ends on a TCP port; returns it and that address."""
    address = f"127.0.0.1:{free_port()}"
    pyrie = start_pyrie(
        "--supervisor-address",
        address,
        "app.handler",
        cwd=EXAMPLES / "python-sse",
        extra_env={"PYRIE_SUPERVISOR_TOKEN": TOKEN},
    )
    return pyrie, address


def test_a_split_deployment_serves_a_streamed_invoke(start_pyrie: StartPyrie, start_frontend: StartFrontEnd):
    pyrie, address = start_supervisor(start_pyrie)
    frontend = start_frontend({"PYRIE_SUPERVISOR_ADDRESS": address, "PYRIE_SUPERVISOR_TOKEN": TOKEN})
    payload = json.dumps({"count": 5, "interval_ms": 200}).encode()
    with MachineWait() as machine:
        received = stream_invoke(frontend.port, INVOKE_PATH, payload)
    assert b"HTTP/1.1 200 OK" in received.head
    assert b"Lambda-Runtime-Function-Response-Mode: streaming" in received.head
    assert received.complete
    frames = received.frames()
    assert [frame.split(b"\n")[0] for _, frame in frames] == [b"id: %d" % n for n in range(1, 6)]
    # relayed event by event across both processes, not all at the function's end
    assert_one_by_one([arrival for arrival, _ in frames], 0.2, machine.waited)
    big = frontend.invoke(json.dumps({"count": 1, "padding": "x" * 100_000}).encode())  # past the untrusted limit
    assert big.status_code == 200
    assert big.content.startswith(b"id: 1\n")
    health = requests.get(f"{frontend.url}/healthz", timeout=10).json()
    assert health["environments"] == [
        {"name": "environment-1", "state": "idle", "runtimeState": "Ready", "invokesInFlight": 0}
    ]
    assert pyrie.invoke(b'{"count": 1}').status_code == 200  # pyrie's own front end serves on


def test_a_wrong_token_is_refused_and_everyone_else_served(start_pyrie: StartPyrie, start_frontend: StartFrontEnd):
    pyrie, address = start_supervisor(start_pyrie)
    impostor = start_frontend({"PYRIE_SUPERVISOR_ADDRESS": address, "PYRIE_SUPERVISOR_TOKEN": "not-" + TOKEN})
    refused = impostor.invoke(b'{"count": 1}')
    assert refused.status_code == 503
    assert refused.headers["X-Amzn-ErrorType"] == "ServiceException"
    assert refused.json()["Type"] == "Service"
    assert requests.get(f"{impostor.url}/healthz", timeout=10).status_code == 503
    assert "PYRIE_SUPERVISOR_TOKEN" in impostor.stderr()  # its log says what to check
    pyrie.wait_for_stderr("refused a front-end connection from 127.0.0.1:")
    assert "wrong token" in pyrie.stderr()
    assert "START RequestId" not in pyrie.stdout()  # nothing reached the function
    frontend = start_frontend({"PYRIE_SUPERVISOR_ADDRESS": address, "PYRIE_SUPERVISOR_TOKEN": TOKEN})
    assert frontend.invoke(b'{"count": 1}').status_code == 200
    assert pyrie.invoke(b'{"count": 1}').status_code == 200


def pipe_exchange(address: str, *messages: object) -> bytes:
    """Send frames to the supervisor's TCP port as a front end would; return all it sends back until it closes."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(frames(*messages))  # type: ignore[arg-type]
        sock.shutdown(socket.SHUT_WR)
        received = b""
        try:
            while data := sock.recv(65536):
                received += data
        except ConnectionResetError:
            pass  # closed with our bytes unread: refused all the same
    return received


def test_the_token_is_checked_on_the_first_frame(start_pyrie: StartPyrie):
    pyrie, address = start_supervisor(start_pyrie)
    invoke = Invoke(function="function", payload=b'{"count": 1}')
    assert pipe_exchange(address, invoke) == b""  # no Hello: closed unanswered
    assert pipe_exchange(address, Hello("x" * len(TOKEN)), invoke) == b""
    assert pipe_exchange(address, Hello(TOKEN[:-1]), StatusRequest()) == b""
    assert pipe_exchange(address, Hello(TOKEN + "x" * 5000)) == b""  # a stranger's frames stay small
    assert "START RequestId" not in pyrie.stdout()
    stderr = pyrie.wait_for_stderr("wrong token")
    assert "it sent Invoke, not Hello" in stderr
    assert "exceeds the maximum of 4096" in pyrie.wait_for_stderr("exceeds the maximum of 4096")
    decoder = FrameDecoder()
    decoder.feed(pipe_exchange(address, Hello(TOKEN), StatusRequest()))
    frame = decoder.next_frame()
    assert isinstance(frame, bytes | memoryview)
    status = decode(frame)
    assert isinstance(status, Status)
    assert status.function == "test_function"


def test_the_unix_socket_needs_no_token(start_pyrie: StartPyrie):
    pyrie, _ = start_supervisor(start_pyrie)
    assert pyrie.invoke(b'{"count": 1}').status_code == 200  # pyrie's own gunicorn, over the Unix socket
    environ = frontend_master(pyrie).environ()
    assert "PYRIE_SUPERVISOR_TOKEN" not in environ
    assert environ["PYRIE_OWNER"].endswith("/frontend")
