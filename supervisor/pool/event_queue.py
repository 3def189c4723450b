"""Event (asynchronous) invokes waiting for an environment, oldest first, bounded by their number and their bytes.

An Event invoke is answered 202 when it is queued, so what waits here is held in memory until an environment takes
it: at most ``max_count`` invokes and ``max_bytes`` bytes of payload (Lambda takes Event payloads of up to 1 MB).
Beyond either bound a new one is refused as Lambda throttles (429).
"""

from __future__ import annotations

import collections

from supervisor.invocation import Invocation

__all__ = ["EventQueue"]


class EventQueue:
    def __init__(self, max_count: int, max_bytes: int) -> None:
        self.max_count = max_count
        self.max_bytes = max_bytes
        self._waiting: collections.deque[Invocation] = collections.deque()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._waiting)

    def full_for(self, size: int) -> str | None:
        """Why a payload of ``size`` bytes cannot wait now, or ``None`` when it can."""
        if len(self._waiting) >= self.max_count:
            return f"{len(self._waiting)} Event invokes are already waiting for an environment"
        if self.bytes + size > self.max_bytes:
            return f"the Event invokes waiting for an environment already hold {self.bytes} bytes"
        return None

    def append(self, invocation: Invocation) -> None:
        self._waiting.append(invocation)
        self.bytes += len(invocation.request.payload)

    def put_back(self, invocation: Invocation) -> None:
        """An invoke that was taken but never ran (its environment went away) goes first again."""
        self._waiting.appendleft(invocation)
        self.bytes += len(invocation.request.payload)

    def take(self) -> Invocation:
        invocation = self._waiting.popleft()
        self.bytes -= len(invocation.request.payload)
        return invocation

    def drain(self) -> list[Invocation]:
        """Everything still waiting (pyrie is shutting down)."""
        waiting = list(self._waiting)
        self._waiting.clear()
        self.bytes = 0
        return waiting
