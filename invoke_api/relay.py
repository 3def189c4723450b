"""An invoke's way through the supervisor, shared by every route that runs the function (Invoke,
InvokeWithResponseStream, Function URLs): send it, wait for its first answer, then read the rest as it arrives.

A route turns the messages into its own wire form; the relay owns the connection: it is given back for reuse once
the invoke's ``End`` was read, and dropped with a ``Cancel`` to the supervisor when the client went away first.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
from collections.abc import Iterator
from typing import Any, NoReturn

from invoke_api.responses import StartResponse
from invoke_api.supervisor_client import SupervisorClient, SupervisorConnection, SupervisorUnavailable
from pyrie_core.pipe.messages import Cancel, Chunk, End, Head, Invoke, Outcome
from pyrie_core.socket_io import dropping

__all__ = ["Relay", "RelayBody", "start", "start_streaming"]

log = logging.getLogger("pyrie.invoke_api")


def start(client: SupervisorClient, request: Invoke) -> tuple[SupervisorConnection, Head | End]:
    """Send the invoke and wait for its first answer, as long as the function takes."""
    conn = client.send(request)
    first: Head | End = conn.expect((Head, End), "an invoke")
    return conn, first


def start_streaming(start_response: StartResponse, status: str, headers: list[tuple[str, str]]) -> None:
    """Start a response whose body streams: the status line and headers go out now, before the first chunk
    (gevent's pywsgi skips empty pieces of a body, so only its ``write`` callable sends them early)."""
    write = start_response(status, headers)
    write(b"")


class Relay:
    """The rest of a started response: ``read`` its chunks up to its ``End``, or ``truncate`` it."""

    def __init__(
        self, client: SupervisorClient, conn: SupervisorConnection, environ: dict[str, Any], request_id: str
    ) -> None:
        self._client = client
        self._conn = conn
        self._environ = environ
        self.request_id = request_id
        self.ended = False
        self._closed = False
        # The supervisor cuts the connection when the client takes nothing for a while after the invoke has ended;
        # this worker may then be waiting to write to that client, with nothing else to tell it: the kernel does.
        conn.on_hangup = self._supervisor_cut
        if conn.hung_up:
            self._supervisor_cut()

    def read(self) -> Chunk | End:
        """The next message of the response; a broken supervisor connection truncates the response."""
        try:
            message = self._conn.read()
        except SupervisorUnavailable as exc:
            self.truncate(f"the supervisor connection broke: {exc}")
        if isinstance(message, End):
            self.ended = True
        elif not isinstance(message, Chunk):
            self.truncate(f"unexpected {type(message).__name__} inside a response")
        return message

    def chunks(self) -> Iterator[bytes]:
        """The body's bytes as they arrive, up to its ``End``; a failed end (an error trailer, a timeout, a crash
        after the head) cannot change the status any more, so it cuts the response short."""
        while True:
            message = self.read()
            if isinstance(message, Chunk):
                yield message.data
                continue
            if message.outcome is not Outcome.OK:
                self.truncate(f"{message.error_type}: {message.body[:200]!r}")
            return

    def truncate(self, reason: str) -> NoReturn:
        """End the response here, visibly incomplete to the client: shut its connection, stop gunicorn quietly."""
        log.info("response %s cut short: %s", self.request_id, reason)
        self._shut_client()
        # gunicorn treats EPIPE as the client having gone: it closes the connection without an error page.
        raise BrokenPipeError(errno.EPIPE, f"response truncated: {reason}")

    def _shut_client(self) -> None:
        # gunicorn's own gevent worker names the client's socket "gunicorn.socket", its pywsgi one "gunicorn.sock"
        client_socket = self._environ.get("gunicorn.socket") or self._environ.get("gunicorn.sock")
        if client_socket is None:
            return
        # Shut through a duplicate of its descriptor: gevent's own shutdown would wake a greenlet waiting to write
        # to it with EBADF (a traceback in the log), where the kernel's gives it EPIPE (the client has gone).
        with (
            dropping(log, "shutting a client's connection"),
            socket.socket(fileno=os.dup(client_socket.fileno())) as duplicate,
        ):
            duplicate.shutdown(socket.SHUT_RDWR)

    def _supervisor_cut(self) -> None:
        """The supervisor shut this connection: shut the client's too, so a write to it that waits for ever fails
        and the worker lets go of both (the client sees its response end short). Runs in the loop."""
        if self.ended or self._closed:
            return
        log.info("response %s cut short: the supervisor cut its connection", self.request_id)
        self._shut_client()

    def close(self) -> None:
        """Give the connection back if the response ended, else tell the supervisor the client has gone. Once."""
        if self._closed:
            return
        self._closed = True
        self._conn.on_hangup = None
        if self.ended:
            self._client.release(self._conn)
            return
        with contextlib.suppress(SupervisorUnavailable):
            self._conn.send(Cancel())
        self._conn.close()


class RelayBody:
    """A WSGI response body: ``pieces``, made from a relay's messages as they arrive.

    gunicorn writes and flushes each yielded piece at once. If the client goes away, gunicorn stops iterating and
    calls ``close``; the supervisor is then told (``Cancel``) and the connection is dropped, not reused.
    """

    def __init__(self, relay: Relay, pieces: Iterator[bytes]) -> None:
        self._relay = relay
        self._pieces = pieces

    def __iter__(self) -> Iterator[bytes]:
        return self._pieces

    def close(self) -> None:
        self._relay.close()
