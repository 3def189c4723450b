"""The sockets pyrie owns, opened first thing at start-up with nothing but the standard library.

The supervisor binds the Invoke API's listener, the Function URL listener when there is one, its private pipe
socket and, for a split deployment, the pipe's TCP listener before anything else (so a busy port stops pyrie at
once with one line), then hands the HTTP listeners to gunicorn by file descriptor. Before it binds, it cleans up
after pyries that died (``supervisor.frontend_link.socket_directory``): a front end of theirs may still hold the port.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from dataclasses import dataclass, field

from pyrie_core.address import Address
from supervisor.config import Config
from supervisor.frontend_link.socket_directory import (
    SOCKET_NAME,
    bind_socket,
    instance_of,
    make_socket_directory,
    remove_stale,
)

__all__ = ["Listeners", "StartupError", "open_listeners"]


class StartupError(Exception):
    """pyrie cannot start; the message is the one line shown to the user."""


@dataclass
class Listeners:
    invoke: socket.socket  # the Invoke API, passed to gunicorn
    pipe: socket.socket  # the supervisor's Unix socket, served by the supervisor
    socket_dir: str  # a private directory (mode 0700) holding the pipe's socket file, named after the instance
    url: socket.socket | None = None  # the Function URL listener, passed to gunicorn too; None when off
    pipe_tcp: socket.socket | None = None  # --supervisor-address: front ends deployed on their own (token required)
    # What pyries that died had left and start-up removed: each socket directory, with the processes killed.
    stale: list[tuple[str, int]] = field(default_factory=list)

    @property
    def instance(self) -> str:
        """This pyrie run's name: its processes carry it (``pyrie_core.process_ownership``)."""
        return instance_of(self.socket_dir)

    @property
    def pipe_path(self) -> str:
        return os.path.join(self.socket_dir, SOCKET_NAME)

    @property
    def frontend(self) -> list[socket.socket]:
        """The listeners gunicorn serves."""
        return [self.invoke] if self.url is None else [self.invoke, self.url]

    def close(self) -> None:
        for sock in (*self.frontend, self.pipe, self.pipe_tcp):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
        shutil.rmtree(self.socket_dir, ignore_errors=True)


def open_listeners(config: Config) -> Listeners:
    stale = remove_stale()
    invoke = listen_tcp(config.invoke_address, "the Invoke API")
    url = None
    pipe_tcp = None
    socket_dir = None
    try:
        if config.function_url_address is not None:
            url = listen_tcp(config.function_url_address, "Function URLs")
        # Fail at start-up, not at the first invoke, when the Runtime API address cannot be bound.
        listen_tcp(config.runtime_api_address, "the Runtime API").close()
        if config.supervisor_address is not None:
            pipe_tcp = listen_tcp(config.supervisor_address, "front ends (--supervisor-address)")
        socket_dir = make_socket_directory()  # mode 0700: only pyrie's user can reach the pipe
        pipe = bind_socket(socket_dir, 1024)
    except BaseException:
        invoke.close()
        if url is not None:
            url.close()
        if pipe_tcp is not None:
            pipe_tcp.close()
        if socket_dir is not None:
            shutil.rmtree(socket_dir, ignore_errors=True)
        raise
    return Listeners(invoke, pipe, socket_dir, url, pipe_tcp, stale)


def listen_tcp(address: Address, what: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address.host, address.port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on {address} for {what}: {exc.strerror}") from None
    return sock
