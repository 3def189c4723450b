"""Making the supervisor the reaper of its descendants' orphans.

A function that starts a background process and leaves it behind (a double fork, ``setsid``) would otherwise hand
it to PID 1. As a child subreaper (Linux ``prctl(PR_SET_CHILD_SUBREAPER)``) the supervisor gets such orphans
instead: gevent's SIGCHLD watcher reaps them when they exit, so they never linger as zombies, and every process an
environment started stays below the supervisor, where ``supervisor.processes.process_census`` finds it and
pyrie's shutdown ends it.
"""

from __future__ import annotations

import logging
import sys

from pyrie_core.linux_prctl import set_child_subreaper

__all__ = ["become_subreaper"]

log = logging.getLogger(__name__)


def become_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    ok = set_child_subreaper()
    if not ok:
        log.warning("cannot become a child subreaper: background processes of functions may outlive them")
    return ok
