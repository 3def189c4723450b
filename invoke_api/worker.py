"""The front end's gunicorn worker: gunicorn's ``gevent_pywsgi`` worker, with requests read whole before they run.

gevent's pywsgi, left to itself, runs the application for requests that never fully arrived: it reads header lines
until an empty one *or the end of the stream*, so a connection that sends only its request line, or closes in the
middle of its headers, becomes a complete request with no headers (and an empty body) and invokes the function; a
body shorter than its ``Content-Length`` raises in the application's ``read``; more than 100 header fields raise
``http.client``'s error with a traceback; and nothing bounds how long a client may take to send its request.

This worker's handler reads each request itself, and the application only ever sees one that arrived whole:

- the head (request line and header fields) must end with its empty line: one cut short by the end of the
  connection is refused, and so are a request line over 8 KiB, a header line over 64 KiB and more than 100 header
  fields;
- the body's length must be told one way: a Content-Length of digits (repeated only with the same value), or a
  Transfer-Encoding that is just ``chunked``. Anything else (both, two lengths, another coding) is refused: pywsgi
  would read such a body one way and the connection's next request another, and the client and pyrie would disagree
  on where one request ends;
- the body is read completely before the application runs (up to one byte over the largest request Lambda takes,
  6 MiB, which is as much as any route reads); one that ends before its ``Content-Length`` or a broken chunked body
  is refused. So nothing reaches the supervisor before the whole request has been read;
- all of it within ``PYRIE_REQUEST_READ_TIMEOUT`` seconds (default 60) of the request's first byte: a client that
  stalls in the middle of its request is cut off, and so is one that stalls while the rest of an oversize body is
  read and dropped after the answer. An idle keep-alive connection waits for its next request's first byte for up to
  gunicorn's ``keepalive`` seconds (pyrie's default 75, longer than load balancers keep idle connections, so SDK
  connection pools can reuse it between invokes), then is closed; pywsgi alone would keep it until the client goes.

A refused request is answered in Lambda's shape for its listener, ``400 InvalidRequestContentException`` (Lambda's
error for "a request header is invalid" or a body it cannot parse), and the connection is closed; a request whose
time ran out is dropped without an answer. Each gets one line in pyrie's log, and neither runs anything.

The worker also gives the front end's log lines pyrie's log format on stderr.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import time
from typing import Any, BinaryIO, Final

import gevent
from gevent import pywsgi

from invoke_api import app, gunicorn_settings
from invoke_api.gunicorn_worker import MAX_HEADERS, MAX_LINE, InvokeHandler, InvokeWorker, RequestHeaders, read_headers
from invoke_api.responses import service_error_json, status_line
from pyrie_core.ids import new_request_id
from pyrie_core.lambda_errors import ServiceError
from pyrie_core.limits import Limits
from pyrie_core.log_format import GoStyleFormatter
from pyrie_core.socket_io import dropping

__all__ = ["MAX_HEADER_FIELDS", "MAX_HEADER_LINE", "MAX_REQUEST_LINE", "RequestHandler", "Worker", "read_head"]

log = logging.getLogger("pyrie.invoke_api")

MAX_REQUEST_LINE: Final = pywsgi.MAX_REQUEST_LINE  # 8192 bytes, pywsgi's own limit
MAX_HEADER_LINE: Final = MAX_LINE  # http.client's limit, which pywsgi applies
MAX_HEADER_FIELDS: Final = MAX_HEADERS  # http.client's limit, which pywsgi applies
# The most any route reads of a body: one byte over Lambda's largest request tells it apart from a request at the limit.
MAX_BODY: Final = Limits().request_bytes + 1
REFUSED_CODE: Final = ServiceError.INVALID_REQUEST_CONTENT


class RequestRefused(Exception):
    """The request cannot be run: answer it with ``status`` and ``reason``, then close the connection."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def read_head(fp: BinaryIO) -> bytes:
    """The header section of a request whose request line has been read: its lines up to and including the empty
    line that ends it. ``RequestRefused`` when the stream ends before that line, a line is too long, or there are
    more than ``MAX_HEADER_FIELDS`` fields."""
    lines: list[bytes] = []
    while True:
        line = fp.readline(MAX_HEADER_LINE + 1)
        if len(line) > MAX_HEADER_LINE:
            raise RequestRefused(f"A header line of the request is longer than {MAX_HEADER_LINE} bytes.")
        if not line.endswith(b"\n"):
            raise RequestRefused("The connection ended in the middle of the request's headers.")
        if line in (b"\r\n", b"\n"):
            return b"".join(lines) + line
        if len(lines) == MAX_HEADER_FIELDS:
            raise RequestRefused(f"The request has more than {MAX_HEADER_FIELDS} header fields.")
        lines.append(line)


def read_whole_headers(rfile: Any, *_: Any, max_headers: int = MAX_HEADER_FIELDS + 1) -> RequestHeaders:
    """A request's headers, read whole (``read_head``: else the request is refused), then parsed once into a list
    (``invoke_api.gunicorn_worker.read_headers``); ``RequestRefused`` for a malformed header line, or a body whose
    length is not told one clear way (``check_framing``)."""
    headers = read_headers(io.BytesIO(read_head(rfile)), max_headers=max_headers)
    if headers.status:
        raise RequestRefused(f"The request's headers are malformed: {headers.status}.")
    check_framing(headers)
    return headers


def check_framing(headers: RequestHeaders) -> None:
    """``RequestRefused`` unless the body's length is told one way: Content-Length headers that are all the same
    number (digits only), or no Content-Length and a Transfer-Encoding that is just ``chunked``."""
    lengths = {value for name, value in headers.items() if name.lower() == "content-length"}
    codings = [
        coding.strip().lower()
        for name, value in headers.items()
        if name.lower() == "transfer-encoding"
        for coding in value.split(",")
    ]
    if codings:
        if codings != ["chunked"]:
            raise RequestRefused(
                f"The request's Transfer-Encoding {', '.join(codings)} is not supported: only chunked is."
            )
        if lengths:
            raise RequestRefused("The request has both a Content-Length and a Transfer-Encoding.")
    if len(lengths) > 1:
        raise RequestRefused(f"The request's Content-Length headers disagree: {', '.join(sorted(lengths))}.")
    for length in lengths:
        if not (length.isascii() and length.isdigit()):
            raise RequestRefused(f"The request's Content-Length {length!r} is not a number of bytes.")


class _Body(pywsgi.Input):
    """pywsgi's request body, whose unread rest (of a body over ``MAX_BODY``) is read and dropped after the answer,
    as pywsgi does to find the connection's next request, but within a deadline."""

    __slots__ = ("deadline_s", "expired")

    def __init__(self, *args: Any, deadline_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deadline_s = deadline_s
        self.expired = False

    def _discard(self) -> None:
        timer = gevent.Timeout(self.deadline_s)
        timer.start()
        try:
            super()._discard()
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            self.expired = True
            raise OSError("the rest of the request's body was not read in time") from None  # pywsgi ignores it
        finally:
            timer.close()


class RequestHandler(InvokeHandler):
    """pyrie's lighter pywsgi handler, reading each request whole, within ``read_timeout_s``, before the
    application."""

    read_timeout_s: float = gunicorn_settings.REQUEST_READ_TIMEOUT_S
    keepalive_s: float = gunicorn_settings.KEEPALIVE_S

    def handle_one_request(self) -> bool | None:
        """One request of the connection: ``True`` to read the next one, ``None`` to close (pywsgi's contract; this
        handler sends its own refusals, so it never returns pywsgi's ``(status, body)``)."""
        if self.rfile.closed:
            return None
        started = b""
        try:
            with gevent.Timeout(self.keepalive_s, False):
                started = self.rfile.peek(1)
        except OSError as exc:  # the client reset its idle connection
            log.debug("a keep-alive connection dropped after %s", exc.strerror or exc)
            return None
        if not started:
            return None  # the client closed the connection between requests, or left it idle too long
        timer = gevent.Timeout(self.read_timeout_s)
        timer.start()
        try:
            self._read_request()
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            self._log(f"dropped: not read within {self.read_timeout_s:g} s of its first byte")
            return None
        except RequestRefused as exc:
            self._refuse(exc)
            return None
        except OSError as exc:  # the connection broke (reset) while the request was read
            self._log(f"dropped: the connection broke while it was read ({exc})")
            return None
        finally:
            timer.close()
        self.application = self.server.application
        self.handle_one_response()
        if self.wsgi_input.expired:
            self._log(f"connection closed: the rest of its body was not read within {self.read_timeout_s:g} s")
            return None
        if self.close_connection or self.rfile.closed:
            return None
        return True

    def _read_request(self) -> None:
        """Read the request line, the headers and the body, and build the WSGI environment with the body in it."""
        self.time_start = time.time()
        self.response_length = 0
        self.requestline = self.read_requestline()
        if not self.requestline.endswith("\n"):
            if len(self.requestline) >= MAX_REQUEST_LINE:
                raise RequestRefused(f"The request line is longer than {MAX_REQUEST_LINE} bytes.", 414)
            raise RequestRefused("The connection ended in the middle of the request line.")
        try:
            self.read_request(self.requestline)
        except RequestRefused:
            raise
        except Exception as exc:  # pywsgi's parse errors: a malformed request line, version or length
            raise RequestRefused(f"The request is malformed: {exc}") from None
        self.environ = self.get_environ()
        try:
            body = self.wsgi_input.read(MAX_BODY)
        except OSError as exc:  # pywsgi's: the stream ended before Content-Length, or a broken chunked body
            if self.wsgi_input.chunked_input:
                raise RequestRefused(f"The request's chunked body is malformed or cut short: {exc}") from None
            raise RequestRefused(
                f"The request's body ended after {self.wsgi_input.position} of its {self.content_length} bytes."
            ) from None
        self.environ["wsgi.input"] = io.BytesIO(body)
        self.environ["wsgi.input_terminated"] = True

    MessageClass = staticmethod(read_whole_headers)  # pywsgi's name
    wsgi_input: _Body

    def make_input(self, chunked: bool, expects_continue: bool) -> _Body:
        socket = self.socket if expects_continue else None
        return _Body(
            self.rfile, self.content_length, socket=socket, chunked_input=chunked, deadline_s=self.read_timeout_s
        )

    def _refuse(self, exc: RequestRefused) -> None:
        self._log(f"refused: {exc.status} {REFUSED_CODE}: {exc.reason}")
        listener = {"SERVER_PORT": self.server.environ.get("SERVER_PORT"), "gunicorn.sock": self.socket}
        if on_url := app.on_url_listener(listener):
            body = json.dumps({"Message": exc.reason}, separators=(",", ":")).encode()
        else:
            body = service_error_json(REFUSED_CODE, exc.reason)
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("X-Amzn-RequestId", new_request_id()),
            ("x-amzn-ErrorType" if on_url else "X-Amzn-ErrorType", REFUSED_CODE),
            ("Connection", "close"),
        ]
        head = "".join(f"{name}: {value}\r\n" for name, value in headers)
        with dropping(log, "the answer to a refused request (its client is gone)"):
            self.socket.sendall(f"HTTP/1.1 {status_line(exc.status)}\r\n{head}\r\n".encode("latin-1") + body)

    def _log(self, what: str) -> None:
        client = self.client_address
        log.info("request from %s %s", f"{client[0]}:{client[1]}" if isinstance(client, tuple) else client or "?", what)


class Worker(InvokeWorker):
    """pyrie's ``gevent_pywsgi`` worker with ``RequestHandler``; the front end's log lines as pyrie's own (gunicorn's
    loggers keep their own handlers)."""

    wsgi_handler = RequestHandler

    def init_process(self) -> None:
        RequestHandler.read_timeout_s = gunicorn_settings.request_read_timeout()
        RequestHandler.keepalive_s = self.cfg.keepalive
        _log_to_stderr(gunicorn_settings.pyrie_log_level())
        super().init_process()


def _log_to_stderr(level: str) -> None:
    """The front end's log lines go to stderr in pyrie's layout (a worker may wait on stderr: it is no arbiter)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(GoStyleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
