"""pyrie's gunicorn worker class: gunicorn's ``gevent_pywsgi`` worker with a lighter request handler.

gevent's pywsgi handler spends most of its time per request outside the application: it parses the request headers
with the ``email`` package (``http.client.parse_headers``), then parses them again to build the WSGI environ; gunicorn
builds two ``datetime``s for its access log even when there is none; and the first piece of a response goes out in a
``send`` of its own after the head. Here the headers are read line by line into a list once, the environ is built
from that list, the access log is skipped when it is off, and the head and the first piece of the body leave in one
``send`` (a streamed response's head still goes out at once: its first write is empty). And the worker boots faster:
gevent's monkey-patching looks its plugins up once, not at each of its steps, leaves ``subprocess`` alone, and the
server's name is its listener's address, not looked up in DNS.

Keep-alive, chunked request bodies, ``Expect: 100-continue`` and streaming write by write are pywsgi's own. pyrie's
worker (``invoke_api.worker.Worker``) builds on this one: it reads each request whole before the application runs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from importlib import metadata
from typing import Any, Final

from gevent import events, monkey, pywsgi, socket
from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler, PyWSGIServer

from pyrie_core.socket_io import send_all

__all__ = ["InvokeHandler", "InvokeServer", "InvokeWorker", "RequestHeaders", "read_headers"]

# http.client's limits, which pywsgi's header parsing had: a header line's length, and how many lines the header
# section may have (the empty line that ends it counts: at most 99 headers).
MAX_LINE: Final = 65536
MAX_HEADERS: Final = 100
_NOT_IN_ENVIRON: Final = frozenset(("CONTENT_TYPE", "CONTENT_LENGTH"))  # as pywsgi: only the CGI names carry them
_WRITE_TOGETHER: Final = 64 * 1024  # a first piece of body up to this size leaves in the head's send
_GATHER_MIN: Final = 4096  # a chunk of a streamed body at least this large is sent with its framing, not copied into it
_HTTP_VERSIONS: Final = frozenset(("HTTP/1.1", "HTTP/1.0"))


class RequestHeaders:
    """Request headers as pywsgi and gunicorn read them (the subset of ``http.client.HTTPMessage`` they use): names
    as sent, looked up without regard to case, the first of repeated ones winning."""

    __slots__ = ("_first", "_items", "status")

    def __init__(self, items: list[tuple[str, str]], status: str = "") -> None:
        self._items = items
        self._first: dict[str, str] = {}
        for name, value in items:
            self._first.setdefault(name.lower(), value)
        self.status = status  # non-empty: the headers could not be read (pywsgi then answers 400)

    def get(self, name: str, default: Any = None) -> Any:
        return self._first.get(name.lower(), default)

    getheader = get

    def __getitem__(self, name: str) -> str | None:
        return self._first.get(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first

    def __delitem__(self, name: str) -> None:
        key = name.lower()
        self._items = [(n, v) for n, v in self._items if n.lower() != key]
        self._first.pop(key, None)

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def headers(self) -> Iterator[str]:
        return (f"{name}: {value}\r\n" for name, value in self._items)

    @property
    def typeheader(self) -> str | None:
        return self._first.get("content-type")


def read_headers(rfile: Any, *_: Any, max_headers: int = MAX_HEADERS) -> RequestHeaders:
    """The header section from ``rfile``, up to and including its empty line. A line that is too long, or a header
    line without a name, gives headers with a ``status`` (a 400 for the client, as pywsgi does); more than
    ``max_headers`` lines (the empty one counted) raise, which pywsgi also answers with a 400."""
    items: list[tuple[str, str]] = []
    while True:
        line = rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            return RequestHeaders(items, "Line too long")
        if line in (b"\r\n", b"\n", b""):
            return RequestHeaders(items)
        text = line.decode("latin-1")
        if text[0] in " \t":  # obsolete line folding: the line continues the previous header's value
            if not items:
                return RequestHeaders(items, "Continuation line without a header")
            name, value = items[-1]
            items[-1] = (name, f"{value} {text.strip()}".strip())
            continue
        name, colon, value = text.partition(":")
        if not colon or not name or name != name.strip():
            return RequestHeaders(items, "Invalid header line")
        if len(items) + 1 >= max_headers:
            raise pywsgi._InvalidClientRequest(f"got more than {max_headers} headers")
        items.append((name, value.strip()))


class InvokeHandler(PyWSGIHandler):
    MessageClass = staticmethod(read_headers)
    # pywsgi's own attributes, set per request: the status line (bytes, or a str once the socket failed), the status
    # code (negative once the socket failed) and the Date the application gave.
    status: Any
    code: int
    provided_date: Any

    def get_environ(self) -> dict[str, Any]:
        """pywsgi's environ (and gunicorn's two additions), from the headers as read once."""
        env = self.server.get_environ()
        headers: RequestHeaders = self.headers
        env["REQUEST_METHOD"] = self.command
        env["SCRIPT_NAME"] = ""
        path, _, query = self.path.partition("?")
        env["PATH_INFO"] = pywsgi.unquote_latin1(path) if "%" in path else path
        env["QUERY_STRING"] = query
        content_type = headers.typeheader
        if content_type is not None:
            env["CONTENT_TYPE"] = content_type
        length = headers.get("content-length")
        if length:
            env["CONTENT_LENGTH"] = length
        env["SERVER_PROTOCOL"] = self.request_version
        client_address = self.client_address
        if isinstance(client_address, tuple):
            env["REMOTE_ADDR"] = str(client_address[0])
            env["REMOTE_PORT"] = str(client_address[1])
        for name, value in headers.items():
            if "_" in name:
                continue  # as pywsgi: a name with an underscore could pose as another one
            key = name.replace("-", "_").upper()
            if key in _NOT_IN_ENVIRON:
                continue
            key = "HTTP_" + key
            if key in env:
                env[key] += ("; " if "COOKIE" in key else ",") + value
            else:
                env[key] = value
        chunked = env.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"
        self.wsgi_input = self.make_input(chunked, env.get("HTTP_EXPECT", "").lower() == "100-continue")
        handling_reads = not self._connection_upgrade_requested()
        env["wsgi.input"] = self.wsgi_input if handling_reads else self.rfile
        env["wsgi.input_terminated"] = handling_reads
        env["gunicorn.sock"] = self.socket
        env["RAW_URI"] = self.path
        return env

    def make_input(self, chunked: bool, expects_continue: bool) -> pywsgi.Input:
        """The request's body as pywsgi reads it (answering ``Expect: 100-continue`` on the first read)."""
        socket = self.socket if expects_continue else None
        return pywsgi.Input(self.rfile, self.content_length, socket=socket, chunked_input=chunked)

    def log_request(self) -> None:
        if self.server.log.access_log_enabled:
            super().log_request()

    def _check_http_version(self) -> bool:
        return self.request_version in _HTTP_VERSIONS or super()._check_http_version()

    def finalize_headers(self) -> None:
        if self.provided_date is None:
            self.response_headers.append((b"Date", _http_date()))
            self.provided_date = "Date"
        super().finalize_headers()

    def _sendall(self, data: bytes) -> None:
        # As pywsgi's, with one send for what the socket takes at once (gevent's sendall asks the kernel for the
        # socket's buffer size first, every time).
        try:
            send_all(self.socket, data)
        except OSError as exc:
            self.status = f"socket error: {exc}"
            if self.code > 0:
                self.code = -self.code
            raise
        self.response_length += len(data)

    def _write(self, data: bytes) -> None:
        if not (self.response_use_chunked and len(data) >= _GATHER_MIN):
            super()._write(data)
            return
        # One chunk of a streamed body: its size line, the data and the CRLF in one sendmsg, without copying the
        # data into a new buffer as pywsgi does.
        parts = (b"%x\r\n" % len(data), data, b"\r\n")
        total = len(parts[0]) + len(data) + 2
        try:
            sent = self.socket.sendmsg(parts)
            if sent < total:
                send_all(self.socket, b"".join(parts)[sent:])
        except OSError as exc:
            self.status = f"socket error: {exc}"
            if self.code > 0:
                self.code = -self.code
            raise
        self.response_length += total

    def _write_with_headers(self, data: bytes) -> None:
        # pywsgi sends the head, then the data: one send for both when the data is small.
        if not data or len(data) > _WRITE_TOGETHER:
            super()._write_with_headers(data)
            return
        self.headers_sent = True
        self.finalize_headers()
        if self.response_use_chunked:  # no length was given: pywsgi frames each piece as a chunk
            self._sendall(self._head())
            self._write(data)
        else:
            self._sendall(self._head() + data)

    def _head(self) -> bytes:
        head = bytearray(b"HTTP/1.1 ")
        head += self.status
        head += b"\r\n"
        for header, value in self.response_headers:
            head += header
            head += b": "
            head += value
            head += b"\r\n"
        head += b"\r\n"
        return bytes(head)


_date: tuple[int, bytes] = (0, b"")


def _http_date() -> bytes:
    """The Date header's value, formatted once a second."""
    global _date  # noqa: PLW0603 - one cache for the worker process
    now = int(time.time())
    if _date[0] != now:
        _date = (now, pywsgi.format_date_time(now))
    return _date[1]


class InvokeServer(PyWSGIServer):
    def update_environ(self) -> None:
        """``SERVER_NAME`` is the listener's address: pywsgi would look its name up (``socket.getfqdn``, under gevent
        a DNS lookup in a thread of the worker's: about 20 ms and 1.7 MiB of each worker's boot, on the way to the
        first invoke). Nothing in pyrie reads it."""
        if isinstance(self.address, tuple):
            self.environ.setdefault("SERVER_NAME", str(self.address[0]))
        super().update_environ()


class InvokeWorker(GeventPyWSGIWorker):
    server_class = InvokeServer
    wsgi_handler = InvokeHandler
    sockets: list[Any]  # gunicorn's listeners, then gevent's over the same descriptors

    def patch(self) -> None:
        """gunicorn's patching (``GeventWorker.patch``), without the ``subprocess`` module's: the front end starts no
        process, and gevent's ``subprocess`` is 6 ms of each worker's boot (on the way to the first invoke) and about
        1 MiB of its memory."""
        with _plugins_found_once():
            monkey.patch_all(subprocess=False)
        self.sockets = [socket.socket(s.FAMILY, socket.SOCK_STREAM, fileno=s.sock.detach()) for s in self.sockets]


@contextlib.contextmanager
def _plugins_found_once() -> Iterator[None]:
    """gevent's monkey-patching tells its plugins (entry points) about each of its 25 steps, and looks them up in every
    installed distribution's metadata each time: about 50 ms of a worker's boot, on the way to the first invoke.
    Here they are looked up once, and sorted by event; every plugin still hears every event."""
    everything = metadata.entry_points()
    found = {group: list(everything.select(group=group)) for group in everything.groups if group.startswith("gevent.")}
    original = events.notify_and_call_entry_points

    def notify_and_call_entry_points(event: Any) -> None:
        events.notify(event)
        for plugin in found.get(event.ENTRY_POINT_NAME, ()):
            plugin.load()(event)

    events.notify_and_call_entry_points = notify_and_call_entry_points
    try:
        yield
    finally:
        events.notify_and_call_entry_points = original
