"""One-shot timers on gevent's loop, cheaper than a sleeping greenlet per invoke."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gevent

__all__ = ["Timer"]


class Timer:
    """After ``seconds``, ``function(*args)`` runs in a new greenlet, unless ``cancel`` came first."""

    def __init__(self, seconds: float, function: Callable[..., Any], *args: Any) -> None:
        loop = gevent.get_hub().loop
        # The loop counts from the time it cached at its last wake-up, which may be long ago when a greenlet has
        # been busy since; without a fresh reading the timer would fire that much early.
        loop.update_now()
        self._watcher = loop.timer(max(seconds, 0.0))
        self._watcher.start(self._fire, function, args)

    def cancel(self) -> None:
        self._watcher.close()

    def _fire(self, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
        # Runs in the hub: nothing here may block, so the work gets a greenlet of its own.
        self._watcher.close()
        gevent.spawn(function, *args)
