"""pyrie's own log: stderr, in the Go emulator's layout."""

from __future__ import annotations

import logging
import sys
import time

__all__ = ["setup_logging"]


class _GoStyleFormatter(logging.Formatter):
    """``25 Nov 2026 12:32:00,560 [INFO] (pyrie) message``, the Go emulator's layout for its own log."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s [%(levelname)s] (pyrie) %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%d %b %Y %H:%M:%S", self.converter(record.created)) + f",{int(record.msecs):03d}"


def setup_logging(level: str) -> None:
    """pyrie's own log goes to stderr, like the Go emulator's."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_GoStyleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
