"""pyrie's gunicorn worker class, checked against gunicorn's own gevent_pywsgi handler on the same requests: the WSGI
environ the application sees, the body it reads and the bytes the client gets back must be the same (but for the
Date header), and so must the answers to bad requests."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

import gevent
import gevent.socket
import pytest
from gevent import pywsgi
from gunicorn.workers.ggevent import PyWSGIHandler

from invoke_api.gunicorn_worker import MAX_HEADERS, InvokeHandler, InvokeWorker, read_headers
from pyrie_core.frontend_contract import WORKER_CLASS


class QuietLog:
    """What the handlers use of gunicorn's logger, with the access log off."""

    access_log_enabled = False

    def write(self, message: str) -> None:
        pass

    def access(self, *args: Any) -> None:
        pass


def application(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    body = environ["wsgi.input"].read()
    if environ["PATH_INFO"] == "/stream":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"")
        return iter([b"one", b"two"])
    if environ["PATH_INFO"] == "/big-stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return iter([bytes([65 + i]) * (5000 * (i + 1)) for i in range(4)])
    shown = {k: v for k, v in environ.items() if isinstance(v, str) and k not in ("REMOTE_PORT", "SERVER_PORT")}
    shown["body"] = body.decode("latin-1")
    data = json.dumps(shown, sort_keys=True).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def exchange(handler: type, request: bytes) -> bytes:
    server = pywsgi.WSGIServer(("127.0.0.1", 0), application, handler_class=handler, log=QuietLog())
    server.start()
    try:
        sock = gevent.socket.create_connection(("127.0.0.1", server.server_port))
        with sock:
            sock.sendall(request)
            sock.shutdown(gevent.socket.SHUT_WR)
            chunks = []
            with gevent.Timeout(5):
                while data := sock.recv(65536):
                    chunks.append(data)
        return b"".join(chunks)
    finally:
        server.stop()


def without_date(response: bytes) -> bytes:
    return b"\r\n".join(line for line in response.split(b"\r\n") if not line.startswith(b"Date: "))


REQUESTS = {
    "invoke": (
        b"POST /2015-03-31/functions/function/invocations HTTP/1.1\r\nHost: localhost:8080\r\n"
        b"Content-Type: application/json\r\nContent-Length: 13\r\nX-Amz-Log-Type: Tail\r\n"
        b'X-Amz-Client-Context: eyJhIjoxfQ==\r\n\r\n{"hello":"x"}'
    ),
    "query and escapes": b"GET /a%20b/c?Qualifier=%24LATEST&x=1 HTTP/1.1\r\nHost: h\r\n\r\n",
    "repeated headers and cookies": (
        b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nCookie: a=1\r\nCookie: b=2\r\nAccept: */*\r\n\r\n"
    ),
    "underscore names are dropped": b"GET / HTTP/1.1\r\nHost: h\r\nX_Forwarded: evil\r\nX-Forwarded: good\r\n\r\n",
    "whitespace": b"GET / HTTP/1.1\r\nHost: h\r\nX-A:   padded  \r\nX-B:\r\n\r\n",
    "chunked body": (
        b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
        b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
    ),
    "keep-alive, two requests": (
        b"GET /one HTTP/1.1\r\nHost: h\r\n\r\nPOST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok"
    ),
    "HTTP/1.0": b"GET / HTTP/1.0\r\n\r\n",
    "HTTP/1.0 keep-alive": b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /again HTTP/1.0\r\n\r\n",
    "latin-1 value": b"GET / HTTP/1.1\r\nHost: h\r\nX-A: caf\xe9\r\n\r\n",
    "streamed response": b"GET /stream HTTP/1.1\r\nHost: h\r\n\r\n",
    "large streamed chunks": b"GET /big-stream HTTP/1.1\r\nHost: h\r\n\r\nGET /big-stream HTTP/1.0\r\n\r\n",
    "expect 100-continue": b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
    "a line too long": b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"v" * 70000 + b"\r\n\r\n",
    "too many headers": b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS)) + b"\r\n",
    "as many headers as allowed": (
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS - 1)) + b"\r\n"
    ),
    "bad content-length": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_the_same_as_gunicorns_pywsgi_handler(name: str) -> None:
    ours = exchange(InvokeHandler, REQUESTS[name])
    reference = exchange(PyWSGIHandler, REQUESTS[name])
    assert without_date(ours) == without_date(reference)
    assert ours.startswith(b"HTTP/1.1 ")
    assert ours.count(b"\r\nDate: ") == reference.count(b"\r\nDate: ")


def test_a_small_response_leaves_in_one_send() -> None:
    sends: list[bytes] = []

    class Counting(InvokeHandler):
        def _sendall(self, data: bytes) -> None:
            sends.append(bytes(data))
            super()._sendall(data)

    exchange(Counting, REQUESTS["invoke"])
    assert len(sends) == 1 and sends[0].endswith(b"}")


def test_a_streamed_response_sends_its_head_before_the_body() -> None:
    sends: list[bytes] = []

    class Counting(InvokeHandler):
        def _sendall(self, data: bytes) -> None:
            sends.append(bytes(data))
            super()._sendall(data)

    exchange(Counting, REQUESTS["streamed response"])
    assert sends[0].endswith(b"\r\n\r\n") and b"one" not in sends[0]
    assert sends[1:] == [b"3\r\none\r\n", b"3\r\ntwo\r\n", b"0\r\n\r\n"]


class Lines:
    def __init__(self, data: bytes) -> None:
        self._lines: Iterator[bytes] = iter(data.splitlines(keepends=True))

    def readline(self, limit: int = -1) -> bytes:
        return next(self._lines, b"")


def test_read_headers() -> None:
    headers = read_headers(Lines(b"Content-Type: a/b\r\nX-A: 1\r\nx-a: 2\r\nX-Fold: one\r\n  two\r\n\r\nbody"))
    assert headers.status == ""
    assert headers.get("content-type") == headers.typeheader == "a/b"
    assert headers.get("X-A") == "1"  # the first one, as email.message does
    assert headers.items() == [("Content-Type", "a/b"), ("X-A", "1"), ("x-a", "2"), ("X-Fold", "one two")]
    del headers["x-A"]
    assert "X-A" not in headers and headers.get("x-a") is None
    assert read_headers(Lines(b"No colon here\r\n\r\n")).status
    assert read_headers(Lines(b"Name : space\r\n\r\n")).status


def test_pyrie_names_a_worker_class_built_on_this_one() -> None:
    module, _, name = WORKER_CLASS.rpartition(".")
    worker = getattr(importlib.import_module(module), name)
    assert issubclass(worker, InvokeWorker)
    assert issubclass(worker.wsgi_handler, InvokeHandler)


# Where pyrie's handler differs: http.client (through the email package) quietly drops every header from a malformed
# line on; pyrie refuses the request with a 400, as RFC 9112 section 5.1 asks of whitespace before the colon.
MALFORMED = {
    "a line without a colon": b"GET / HTTP/1.1\r\nHost: h\r\nNo colon\r\nX-A: 1\r\n\r\n",
    "whitespace before the colon": b"GET / HTTP/1.1\r\nHost: h\r\nX-B : 2\r\nX-A: 1\r\n\r\n",
    "a continuation line first": b"GET / HTTP/1.1\r\n folded first\r\nX-A: 1\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_header_lines_are_refused_where_pywsgi_drops_them(name: str) -> None:
    assert exchange(InvokeHandler, MALFORMED[name]).startswith(b"HTTP/1.1 400 ")
    assert exchange(PyWSGIHandler, MALFORMED[name]).startswith(b"HTTP/1.1 200 ")


heard: list[Any] = []


def hear(event: Any) -> None:
    heard.append(event)


def test_gevent_plugins_still_hear_every_patch_event(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    from gevent import events

    from invoke_api import gunicorn_worker

    group = events.GeventWillPatchAllEvent.ENTRY_POINT_NAME
    plugin = metadata.EntryPoint(name="test", value=f"{__name__}:hear", group=group)
    lookups: list[int] = []

    def entry_points() -> metadata.EntryPoints:
        lookups.append(1)
        return metadata.EntryPoints([plugin])

    monkeypatch.setattr(gunicorn_worker.metadata, "entry_points", entry_points)
    original = events.notify_and_call_entry_points
    event = events.GeventWillPatchAllEvent({}, {})
    with gunicorn_worker._plugins_found_once():
        for _ in range(3):
            events.notify_and_call_entry_points(event)
            events.notify_and_call_entry_points(events.GeventDidPatchAllEvent({}, {}))
    assert heard == [event] * 3
    assert len(lookups) == 1
    assert events.notify_and_call_entry_points is original


def test_the_server_takes_its_name_from_its_address_without_a_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    """pywsgi would look the listener's address up (socket.getfqdn: under gevent, a DNS lookup in a thread of the
    worker's, on the way to its first request)."""
    import socket

    from gevent import pywsgi as gevent_pywsgi

    from invoke_api.gunicorn_worker import InvokeServer

    def no_lookup(name: str = "") -> str:
        raise AssertionError(f"looked up {name!r}")

    monkeypatch.setattr(gevent_pywsgi.socket, "getfqdn", no_lookup)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        server = InvokeServer(listener, application=lambda environ, start_response: [])
        server.update_environ()
        assert server.environ["SERVER_NAME"] == "127.0.0.1"
        assert server.environ["SERVER_PORT"] == str(listener.getsockname()[1])
