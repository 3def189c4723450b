"""Which process holds a loopback TCP connection, and whether a process has died: from ``/proc`` (Linux).

The Runtime API knows a runtime worker only by its connection. To tell which of a runtime's processes took an invoke,
the connection's client end (its port) is looked up in ``/proc/net/tcp`` for its socket inode, and that inode among
the candidate processes' file descriptors. Elsewhere (no ``/proc``) nothing is found and callers do without.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

__all__ = ["exit_status", "socket_owner"]


def socket_owner(client_port: int, server_port: int, pids: Iterable[int]) -> int | None:
    """The process among ``pids`` that holds the loopback connection from ``client_port`` to ``server_port``."""
    inode = _socket_inode(client_port, server_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            descriptors = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in descriptors:
            with contextlib.suppress(OSError):
                if os.readlink(f"{fd_dir}/{fd}") == target:
                    return pid
    return None


def exit_status(pid: int) -> int | None:
    """``None`` while ``pid`` lives; once it has died, its wait status when the kernel still has it (a zombie
    nobody reaped yet), else -1."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return -1
    if fields[0] not in (b"Z", b"X"):
        return None
    # After the command's closing parenthesis the fields count from "state" (the 3rd field); exit_code is the 52nd.
    return int(fields[49]) if len(fields) > 49 else -1


def _socket_inode(client_port: int, server_port: int) -> int | None:
    local = f":{client_port:04X}"
    remote = f":{server_port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as lines:
                next(lines, None)  # the header
                for line in lines:
                    fields = line.split()
                    if len(fields) > 9 and fields[1].endswith(local) and fields[2].endswith(remote):
                        return int(fields[9])
        except OSError:
            continue
    return None
