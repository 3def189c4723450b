"""The Runtime API's request parser (llhttp through httptools), checked against h11 on the same bytes.

h11 is the reference: every valid request below gives the same events from both, fed whole, one byte at a time, and
in uneven pieces; every bad one is refused by both with the same status. The few places where llhttp is stricter
or laxer than h11 are listed, each with what both do, so that a change on either side shows here.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import h11
import pytest

from runtime_api.http_connection import ConnectionClosed, HttpConnection
from runtime_api.http_parser import (
    CLOSED,
    MAX_HEAD_SIZE,
    NEED_DATA,
    EndOfMessage,
    ParseError,
    RequestHead,
    RequestParser,
)

Normalised = list[tuple[Any, ...]]

VALID = {
    "get": b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1:9001\r\nUser-Agent: x/1\r\n\r\n",
    "query": b"GET /a/b?c=d&e=%20 HTTP/1.1\r\nHost: h\r\n\r\n",
    "content-length": (
        b"POST /2018-06-01/runtime/invocation/abc/response HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
        b'Content-Length: 11\r\n\r\n{"a":"bcd"}'
    ),
    "empty body": b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
    "chunked": (
        b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
        b"Lambda-Runtime-Function-Response-Mode: streaming\r\n\r\n"
        b"5\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n"
    ),
    "chunked with trailers": (
        b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
        b"Trailer: Lambda-Runtime-Function-Error-Type\r\n\r\n"
        b"3\r\nabc\r\n0\r\nLambda-Runtime-Function-Error-Type: Function.Boom\r\n"
        b"Lambda-Runtime-Function-Error-Body: eyJhIjoxfQ==\r\n\r\n"
    ),
    "chunk extensions": (
        b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'3;name=value\r\nabc\r\n2;a;b="c d"\r\nde\r\n0;last\r\nX-T: 1\r\n\r\n'
    ),
    "chunked, upper-case coding": b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
    "empty chunked": b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "repeated headers": b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nX-B:3\r\n\r\n",
    "whitespace around values": b"GET / HTTP/1.1\r\nHost: h\r\nX-A:   spaced out \t \r\nX-B:\r\n\r\n",
    "latin-1 value": b"GET / HTTP/1.1\r\nHost: h\r\nX-A: caf\xe9\r\n\r\n",
    "HTTP/1.0": b"GET / HTTP/1.0\r\n\r\n",
    "connection close": b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    "short body": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab",
    "pipelined": (
        b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: h\r\n\r\n"
        b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"
        b"POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nT: v\r\n\r\n"
        b"GET /c HTTP/1.1\r\nHost: h\r\n\r\n"
    ),
}

# Refused by both, with the same status.
BAD = {
    "garbage": (b"hello there\r\n\r\n", 400),
    "space in a header name": (b"GET / HTTP/1.1\r\nHost: h\r\nBad Header: y\r\n\r\n", 400),
    "space before the colon": (b"GET / HTTP/1.1\r\nHost: h\r\nX : a\r\n\r\n", 400),
    "NUL in a value": (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", 400),
    "space in the target": (b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    "control byte in the target": (b"GET /a\x01b HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    "no Host": (b"GET / HTTP/1.1\r\n\r\n", 400),
    "two different Content-Lengths": (
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        400,
    ),
    "bad Content-Length": (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n", 400),
    "negative Content-Length": (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400),
    "bad chunk size": (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    "chunk longer than its size": (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
        400,
    ),
    "gzip coding": (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    "gzip, chunked": (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    "garbage after a good request": (b"GET / HTTP/1.1\r\nHost: h\r\n\r\nnot http at all\r\n\r\n", 400),
}

# Where the two differ: (bytes, what h11 does, what pyrie's parser does); "ok" means accepted.
DIFFERENT = {
    # llhttp is stricter: these are refused, where h11 is lenient.
    "bare LF line ends": (b"GET / HTTP/1.1\nHost: h\n\n", "ok", 400),
    "obsolete line folding": (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", "ok", 400),
    "Content-Length with Transfer-Encoding": (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        "ok",
        400,
    ),
    "the same Content-Length twice": (
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        "ok",
        400,
    ),
    "lower-case method": (b"get / HTTP/1.1\r\nHost: h\r\n\r\n", "ok", 400),
    # llhttp is laxer: an empty line before the request line is skipped, as RFC 9112 section 2.2 asks.
    "empty line first": (b"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "ok"),
}


# -- running each parser -----------------------------------------------------------------------------------------


def pieces(data: bytes, how: str) -> Iterator[bytes]:
    if how == "whole":
        yield data
    elif how == "bytewise":
        for i in range(len(data)):
            yield data[i : i + 1]
    else:  # uneven pieces, cutting across every boundary sooner or later
        i, step = 0, 1
        while i < len(data):
            yield data[i : i + step]
            i += step
            step = step % 7 + 2


def run_ours(data: bytes, how: str) -> tuple[Normalised, int | None]:
    """The events of ``data`` (with adjacent body pieces joined) and the status of the error, if any."""
    parser = RequestParser()
    events: list[Any] = []
    status = None
    try:
        for piece in pieces(data, how):
            parser.receive_data(piece)
            while (event := parser.next_event()) is not NEED_DATA:
                events.append(event)
        parser.receive_data(b"")
        while (event := parser.next_event()) is not CLOSED:
            events.append(event)
    except ParseError as exc:
        status = exc.status
    out: Normalised = []
    for event in events:
        if isinstance(event, RequestHead):
            out.append(("request", event.method, event.target, event.headers))
        elif isinstance(event, bytes):
            if out and out[-1][0] == "data":
                out[-1] = ("data", out[-1][1] + event)
            else:
                out.append(("data", event))
        elif isinstance(event, EndOfMessage):
            out.append(("end", event.trailers))
    return out, status


def run_h11(data: bytes, how: str) -> tuple[Normalised, int | None]:
    conn = h11.Connection(h11.SERVER)
    out: Normalised = []
    status = None

    def drain() -> bool:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                return event is h11.NEED_DATA
            if isinstance(event, h11.Request):
                headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in event.headers]
                out.append(("request", event.method.decode(), event.target.decode("latin-1"), headers))
            elif isinstance(event, h11.Data):
                if out and out[-1][0] == "data":
                    out[-1] = ("data", out[-1][1] + bytes(event.data))
                else:
                    out.append(("data", bytes(event.data)))
            elif isinstance(event, h11.EndOfMessage):
                out.append(("end", [(n.decode("latin-1"), v.decode("latin-1")) for n, v in event.headers]))
                # Answer it, so that h11 moves on to the next pipelined request.
                conn.send(h11.Response(status_code=200, headers=[("Content-Length", "0")]))
                conn.send(h11.EndOfMessage())
                if conn.our_state is h11.MUST_CLOSE:
                    return False
                conn.start_next_cycle()

    try:
        for piece in pieces(data, how):
            conn.receive_data(piece)
            if not drain():
                break
    except h11.RemoteProtocolError as exc:
        status = exc.error_status_hint
    return out, status


HOW = ["whole", "bytewise", "uneven"]


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_requests_give_h11s_events(name: str, how: str) -> None:
    ours, our_status = run_ours(VALID[name], how)
    reference, reference_status = run_h11(VALID[name], how)
    assert our_status is None and reference_status is None
    assert ours == reference
    assert ours[-1][0] == "end"


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_requests_get_h11s_status(name: str, how: str) -> None:
    data, expected = BAD[name]
    ours, our_status = run_ours(data, how)
    reference, reference_status = run_h11(data, how)
    assert (our_status, reference_status) == (expected, expected)
    assert ours == reference  # the events before the bad bytes, the same


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("name", sorted(DIFFERENT))
def test_known_differences_from_h11(name: str, how: str) -> None:
    data, h11_does, we_do = DIFFERENT[name]
    _, our_status = run_ours(data, how)
    _, reference_status = run_h11(data, how)
    assert (reference_status or "ok") == h11_does
    assert (our_status or "ok") == we_do


@pytest.mark.parametrize("how", ["whole", "uneven"])
def test_an_overlong_head_is_431(how: str) -> None:
    many = b"GET / HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 100) for i in range(200)) + b"\r\n"
    one = b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"v" * (MAX_HEAD_SIZE + 1) + b"\r\n\r\n"
    for data in (many, one):
        assert run_ours(data, how)[1] == 431
    # h11 says the same when the head arrives in pieces (it judges what it holds while incomplete).
    assert run_h11(one, "uneven")[1] == 431


def test_a_header_line_that_never_ends_is_refused_without_holding_it() -> None:
    parser = RequestParser()
    parser.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\nX: ")
    with pytest.raises(ParseError) as refused:
        for _ in range(100):
            parser.receive_data(b"v" * 1024)
            parser.next_event()
    assert refused.value.status == 431


def test_a_large_body_is_not_a_long_head() -> None:
    body = b"x" * (4 * MAX_HEAD_SIZE)
    data = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    ours, status = run_ours(data, "whole")
    assert status is None
    assert ours[1] == ("data", body)


def test_keep_alive() -> None:
    def keep_alive(data: bytes) -> bool:
        parser = RequestParser()
        parser.receive_data(data)
        events = [parser.next_event() for _ in range(2)]
        assert isinstance(events[-1], EndOfMessage)
        return events[-1].keep_alive

    assert keep_alive(VALID["get"])
    assert not keep_alive(VALID["connection close"])
    assert not keep_alive(VALID["HTTP/1.0"])
    assert keep_alive(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") is False  # HTTP/1.1 or nothing
    assert not keep_alive(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")


def test_eof_inside_a_request_is_an_error_and_between_requests_is_closed() -> None:
    parser = RequestParser()
    parser.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab")
    assert isinstance(parser.next_event(), RequestHead)
    assert parser.next_event() == b"ab"
    parser.receive_data(b"")
    with pytest.raises(ParseError):
        parser.next_event()

    parser = RequestParser()
    parser.receive_data(VALID["get"])
    assert isinstance(parser.next_event(), RequestHead)
    assert isinstance(parser.next_event(), EndOfMessage)
    parser.receive_data(b"")
    assert parser.next_event() is CLOSED


# -- the connection around it ------------------------------------------------------------------------------------


def exchange(request: bytes, answer: Any) -> bytes:
    """Send ``request`` to an ``HttpConnection``, let ``answer(conn, request)`` respond to each request, and return
    everything the connection wrote before it closed."""
    ours, peer = socket.socketpair()
    with ours, peer:
        peer.sendall(request)
        peer.shutdown(socket.SHUT_WR)
        conn = HttpConnection(ours)
        try:
            while (req := conn.next_request()) is not None:
                answer(conn, req)
        except ConnectionClosed:
            pass
        conn.close()
        chunks = []
        while data := peer.recv(65536):
            chunks.append(data)
        return b"".join(chunks)


def test_responses_are_whole_and_keep_the_connection() -> None:
    def answer(conn: HttpConnection, request: Any) -> None:
        body = conn.read_body(100)[0]
        conn.respond(202, [("Content-Type", "application/json")], b'{"n":%d}' % len(body))

    out = exchange(VALID["pipelined"], answer)
    assert out.count(b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n") == 4
    assert b'{"n":3}' in out and b'{"n":2}' in out


def test_connection_close_is_honoured_and_said() -> None:
    out = exchange(VALID["connection close"] + VALID["get"], lambda conn, req: conn.respond(200, [], b"ok"))
    assert out == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


def test_an_unread_body_is_discarded_before_the_answer() -> None:
    def answer(conn: HttpConnection, request: Any) -> None:
        conn.respond(404, [], b"no")

    out = exchange(VALID["chunked with trailers"] + VALID["get"], answer)
    assert out.count(b"HTTP/1.1 404 Not Found\r\n") == 2


def test_trailers_reach_the_request() -> None:
    seen: dict[str, str] = {}

    def answer(conn: HttpConnection, request: Any) -> None:
        assert b"".join(conn.body()) == b"abc"
        seen.update(request.trailers)
        conn.respond(202)

    exchange(VALID["chunked with trailers"], answer)
    assert seen == {
        "lambda-runtime-function-error-type": "Function.Boom",
        "lambda-runtime-function-error-body": "eyJhIjoxfQ==",
    }


EXPECTING = b"POST /x HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n"


def test_a_peer_expecting_100_continue_gets_it_before_its_body_is_read() -> None:
    ours, peer = socket.socketpair()
    with ours, peer:
        peer.sendall(EXPECTING)
        conn = HttpConnection(ours)
        assert conn.next_request() is not None
        peer.settimeout(5)
        reader = threading.Thread(target=lambda: got.append(conn.read_body(100)))
        got: list[tuple[bytes, int]] = []
        reader.start()
        assert peer.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"  # the body is asked for, and only then sent
        peer.sendall(b"hello")
        reader.join(5)
        assert got == [(b"hello", 5)]
        conn.respond(200, [], b"ok")
        assert peer.recv(100) == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.mark.parametrize("answer", ["read", "unread"])
def test_no_100_continue_once_the_body_came_anyway(answer: str) -> None:
    def respond(conn: HttpConnection, request: Any) -> None:
        if answer == "read":
            conn.read_body(100)
        conn.respond(200, [], b"ok")

    out = exchange(EXPECTING + b"hello" + VALID["get"], respond)
    assert out == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" * 2


@pytest.mark.parametrize("name", ["garbage", "gzip coding", "no Host"])
def test_bad_requests_are_answered_and_closed(name: str) -> None:
    data, status = BAD[name]
    out = exchange(data, lambda conn, req: conn.respond(200))
    assert out.startswith(b"HTTP/1.1 %d " % status)
    assert b"\r\nConnection: close\r\n" in out


def test_a_header_with_a_line_break_is_never_sent() -> None:
    def answer(conn: HttpConnection, request: Any) -> None:
        conn.respond(200, [("X-Injected", "a\r\nSet-Cookie: b")])

    assert exchange(VALID["get"], answer) == b""


def test_head_responses_have_no_body() -> None:
    out = exchange(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", lambda conn, req: conn.respond(405, [("Allow", "GET")], b"x"))
    assert out == b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nContent-Length: 1\r\n\r\n"
