"""The private directory that holds the supervisor's Unix socket, and the ones pyries that died left behind.

Each pyrie run makes ``$TMPDIR/pyrie-<instance>`` (mode 0700: only pyrie's user can reach the pipe); the instance
also names the run's processes and cgroup (``pyrie_core.process_ownership``). The supervisor removes the directory
when it stops, and its front end does when the supervisor dies (``invoke_api.supervisor_death``). When both die at
once (kill -9 of the whole process group, the OOM killer), the next pyrie cleans up at start, before it binds
anything: a directory of its user whose socket nobody serves any more belongs to a pyrie that is gone, so the
processes of that run are killed (a front end that still held the port, a function's background process) and its
cgroups and directory removed. A socket is bound under another name and renamed once it listens, so a pyrie that is
starting is never taken for one that died; a directory that has had no socket under its name for ``UNBOUND_S``
(its pyrie binds it right after making the directory) belongs to a pyrie killed before it got that far. Standard
library only: this runs before gevent is imported.
"""

from __future__ import annotations

import os
import socket
import stat
import tempfile
import time
from typing import Final

from pyrie_core.process_ownership import INSTANCE_PREFIX, end_instance

__all__ = ["SOCKET_NAME", "UNBOUND_S", "bind_socket", "instance_of", "make_socket_directory", "remove_stale"]

SOCKET_NAME = "supervisor.sock"
# A socket directory whose last change is this old and that still has no socket under SOCKET_NAME is abandoned.
UNBOUND_S: Final = 5.0


def make_socket_directory(base: str | None = None) -> str:
    """A new ``pyrie-<instance>`` directory in ``base`` (the temporary directory), mode 0700."""
    base = tempfile.gettempdir() if base is None else base
    while True:
        path = os.path.join(base, INSTANCE_PREFIX + os.urandom(6).hex())  # not secrets: it loads OpenSSL, 3 MiB
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        return path


def instance_of(directory: str) -> str:
    """The instance a socket directory is named after."""
    name = os.path.basename(directory.rstrip("/"))
    assert name.startswith(INSTANCE_PREFIX), name
    return name[len(INSTANCE_PREFIX) :]


def bind_socket(directory: str, backlog: int) -> socket.socket:
    """The supervisor's listening Unix socket, ``SOCKET_NAME`` in ``directory``: it appears under that name only
    once it accepts connections."""
    path = os.path.join(directory, SOCKET_NAME)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path + ".new")
        sock.listen(backlog)
        os.rename(path + ".new", path)
    except BaseException:
        sock.close()
        raise
    return sock


def remove_stale(base: str | None = None) -> list[tuple[str, int]]:
    """End what pyries that died left in ``base`` (the temporary directory): for each of this user's socket
    directories whose socket refuses connections, or that has had no socket for ``UNBOUND_S``, kill the processes of
    its run and remove its cgroups and the directory. Returns each directory removed with the number of processes
    killed."""
    base = tempfile.gettempdir() if base is None else base
    try:
        names = os.listdir(base)
    except OSError:
        return []
    removed = []
    for name in names:
        path = os.path.join(base, name)
        if name.startswith(INSTANCE_PREFIX) and _abandoned(path):
            removed.append((path, end_instance(instance_of(path), socket_dir=path)))
    return removed


def _abandoned(directory: str) -> bool:
    """Whether ``directory`` is one of this user's socket directories, with a socket nobody serves, or without one
    since ``UNBOUND_S`` ago."""
    try:
        info = os.lstat(directory)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            return False
        try:
            mode = os.lstat(os.path.join(directory, SOCKET_NAME)).st_mode
        except FileNotFoundError:
            # Made, and its socket bound (or not yet) under another name, by a pyrie killed before it renamed it;
            # or by one starting now, which changed the directory (mkdir, bind) moments ago.
            return time.time() - info.st_mtime > UNBOUND_S
        if not stat.S_ISSOCK(mode):
            return False
    except OSError:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)
        try:
            probe.connect(os.path.join(directory, SOCKET_NAME))
        except ConnectionRefusedError:
            return True  # nobody listens: its pyrie is gone
        except OSError:
            return False  # EAGAIN (a live supervisor with a full backlog), or something to leave alone
    return False  # its supervisor serves it
