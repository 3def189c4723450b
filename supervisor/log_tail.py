"""The log tail an invoke's caller asks for with ``X-Amz-Log-Type: Tail`` (``X-Amz-Log-Result``)."""

from __future__ import annotations

import base64
from typing import Final

__all__ = ["LOG_TAIL_BYTES", "LogTail"]

# X-Amz-Log-Result is "the last 4 KB of the execution log, which is base64-encoded" (lambda-protocols.md §a).
LOG_TAIL_BYTES: Final = 4096


class LogTail:
    """The last ``LOG_TAIL_BYTES`` of one invoke's log: its START line, the lines it printed, END and REPORT.

    Lambda cuts the tail at a byte count, not at a line; so does this (a cut UTF-8 sequence stays cut).
    """

    def __init__(self, limit: int = LOG_TAIL_BYTES) -> None:
        self._limit = limit
        self._buffer = bytearray()

    def append(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if len(buffer) > 2 * self._limit:  # trim now and then, not on every line
            del buffer[: len(buffer) - self._limit]

    def tail(self) -> bytes:
        return bytes(self._buffer[-self._limit :])

    def result(self) -> str:
        """``X-Amz-Log-Result``: the tail in standard base64."""
        return base64.b64encode(self.tail()).decode("ascii")
