"""Runtime API addresses for the pool: the configured one for the first environment, then the next free ports."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from pyrie_core.address import Address

__all__ = ["RuntimeApiPorts"]

# How far past the configured port to look for a free one.
SEARCH_SPAN: Final = 1000


class RuntimeApiPorts:
    def __init__(self, base: Address) -> None:
        self._base = base
        self._taken: set[int] = set()  # ports of environments that are alive

    def candidates(self) -> Iterator[Address]:
        """Addresses to try, in order; the caller binds one and ``take``s the port it got. Port 0 means "any"."""
        if self._base.port == 0:
            yield self._base
            return
        last = min(self._base.port + SEARCH_SPAN, 65535)
        for port in range(self._base.port, last + 1):
            if port not in self._taken:
                yield Address(self._base.host, port)

    def take(self, port: int) -> None:
        self._taken.add(port)

    def release(self, port: int) -> None:
        self._taken.discard(port)
