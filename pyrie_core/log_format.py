"""The layout of pyrie's own log lines, the Go emulator's, shared by the supervisor and the front end's workers:
``25 Nov 2026 12:32:00,560 [INFO] (pyrie) message``."""

from __future__ import annotations

import logging
import time

__all__ = ["GoStyleFormatter"]


class GoStyleFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s [%(levelname)s] (pyrie) %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%d %b %Y %H:%M:%S", self.converter(record.created)) + f",{int(record.msecs):03d}"
