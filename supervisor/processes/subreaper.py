"""Making the supervisor the reaper of its descendants' orphans.

A function that starts a background process and leaves it behind (a double fork, ``setsid``) would otherwise hand
it to PID 1. As a child subreaper (Linux ``prctl(PR_SET_CHILD_SUBREAPER)``) the supervisor gets such orphans
instead: gevent's SIGCHLD watcher reaps them when they exit, so they never linger as zombies, and an environment's
reset finds and kills them. There is no library call for this in the standard library or psutil.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from typing import Final

__all__ = ["become_subreaper"]

log = logging.getLogger(__name__)

PR_SET_CHILD_SUBREAPER: Final = 36


def become_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        # The process's own symbols include libc's (ctypes.util.find_library would run `ldconfig -p` to find it, a
        # fork and exec on the way to the first invoke).
        libc = ctypes.CDLL(None, use_errno=True)
        ok = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        ok = False
    if not ok:
        log.warning("cannot become a child subreaper: background processes of functions may outlive them")
    return ok
