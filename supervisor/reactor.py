"""The work that state changes imply, run after the change, one piece at a time, from one greenlet of the loop.

A state change only records what happened (the runtime or an extension came back to its ``/next``, an environment
became idle or went away) and asks for the work it implies with ``soon``: an environment's settle (ending its init,
or an invoke with END and REPORT, and handing over the next invoke) and the pool's ``environment_idle`` and
``environment_gone`` (placing what waits, retiring, keeping warm). So no change ever runs inside another (a transition
never calls back into the code that made it), and the order of the work is the order of the changes. A failure (a
crash, a timeout, running out of memory) fails what it costs in the greenlet that finds it, not here. Work given
here never waits on a peer: sends are queued (``supervisor.frontend_link.pipe_connection``), and what must wait (a
teardown's grace period) runs in a greenlet of its own.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event

__all__ = ["Reactor"]

log = logging.getLogger(__name__)


class Reactor:
    def __init__(self) -> None:
        self._work: collections.deque[tuple[Callable[..., Any], tuple[Any, ...]]] = collections.deque()
        self._wake = gevent.event.Event()
        self._greenlet = gevent.spawn(self._run)

    def soon(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` after whatever is running now, in order of asking."""
        self._work.append((function, args))
        self._wake.set()

    def stop(self) -> None:
        self._greenlet.kill(block=False)

    def _run(self) -> None:
        work = self._work
        while True:
            self._wake.wait()
            self._wake.clear()
            while work:
                function, args = work.popleft()
                try:
                    function(*args)
                except Exception:  # a bug in one piece of work must not stop the others
                    log.exception("internal error in %s", getattr(function, "__qualname__", function))
