"""The ``prctl`` calls pyrie makes (Linux; the standard library and psutil have none of them): a signal for when a
process's parent dies, the child-subreaper flag, and a process's name. Each returns ``False`` where it cannot be
done.

``set_parent_death_signal`` is safe to call in a forked child before exec (libc is loaded beforehand); the kernel
keeps the signal across exec but not across fork, and sends it when the thread that forked the process exits.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Final

__all__ = ["set_child_subreaper", "set_parent_death_signal", "set_process_name"]

PR_SET_PDEATHSIG: Final = 1
PR_SET_NAME: Final = 15
PR_SET_CHILD_SUBREAPER: Final = 36


def _load_libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        # The process's own symbols include libc's (ctypes.util.find_library would run `ldconfig -p` to find it, a
        # fork and exec on the way to the first invoke).
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_libc: Final = _load_libc()


def _prctl(option: int, value: int | bytes) -> bool:
    if _libc is None:
        return False
    try:
        return int(_libc.prctl(option, value, 0, 0, 0)) == 0
    except AttributeError:
        return False


def set_parent_death_signal(signum: int) -> bool:
    """Have the kernel send this process ``signum`` when its parent dies (``PR_SET_PDEATHSIG``). The parent may have
    died already: compare ``os.getppid()`` with the parent expected afterwards."""
    return _prctl(PR_SET_PDEATHSIG, signum)


def set_child_subreaper() -> bool:
    """Become the reaper of orphaned descendants (``PR_SET_CHILD_SUBREAPER``): they are handed to this process
    instead of PID 1."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def set_process_name(name: str) -> bool:
    """The name ``ps`` and ``top`` show for this process (its ``comm``, at most 15 bytes) until it execs."""
    return _prctl(PR_SET_NAME, name.encode()[:15])
