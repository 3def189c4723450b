"""What ``ps`` and ``/proc`` show of a process forked without an exec (pyrie's front end): its name, its command line
and its environment, which carries the run's mark (``pyrie_core.process_ownership``).

The kernel shows a process's command line and environment from two blocks of its memory, set up by its last exec; a
process forked without one shows its ancestor's. ``show_as`` writes the process's own into them, as setproctitle
does: a name over the command line, and the mark at the start of the environment block, followed by as many of the
process's variables (``os.environ``) as fit. Before the environment block is written over, the C library's own
environment (what ``getenv`` reads) is moved off it, to copies of ``os.environ``. Processes forked from this one show
the same. Linux only; elsewhere nothing is shown differently.
"""

from __future__ import annotations

import ctypes
import os
import sys

from pyrie_core.linux_prctl import set_process_name
from pyrie_core.process_ownership import OWNER_ENV, read_owner

__all__ = ["show_as"]

_KEY = OWNER_ENV.encode() + b"="


def show_as(name: str, mark: str) -> bool:
    """Show this process as ``name`` (its name and command line) carrying ``mark`` (``PYRIE_OWNER``, also put in
    ``os.environ``). ``False`` when the mark could not be shown: no Linux, or an environment block too small to hold
    it (an ancestor started with an almost empty environment)."""
    os.environ[OWNER_ENV] = mark
    if not sys.platform.startswith("linux"):
        return False
    set_process_name(name)
    try:
        with open("/proc/self/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
        # arg_start, arg_end, env_start, env_end: fields 48 to 51 of proc(5), counted from the state (field 3)
        arg_start, arg_end, env_start, env_end = (int(field) for field in fields[45:49])
        libc = ctypes.CDLL(None, use_errno=True)
    except (OSError, IndexError, ValueError):
        return False
    # The name, its end, and blanks: a command-line block that does not end in a NUL is read up to its first one
    # (the kernel's rule for setproctitle), so the command line is the name alone.
    title = name.encode()[: arg_end - arg_start - 1] + b"\0"
    ctypes.memmove(arg_start, title.ljust(arg_end - arg_start, b" "), arg_end - arg_start)
    entry = _KEY + mark.encode() + b"\0"
    size = env_end - env_start
    if size < len(entry) or libc.clearenv() != 0:
        return False
    for variable, value in os.environ.items():
        os.putenv(variable, value)  # setenv(3): a copy, off the block
    block = bytearray(entry)
    for variable, value in os.environ.items():
        item = os.fsencode(variable) + b"=" + os.fsencode(value) + b"\0"
        if variable == OWNER_ENV or len(block) + len(item) > size:
            continue
        block += item
    block += bytes(size - len(block))
    ctypes.memmove(env_start, bytes(block), size)
    return read_owner(os.getpid()) == mark
