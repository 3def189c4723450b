"""pyrie's own log: stderr, in the Go emulator's layout, written without ever waiting for whoever reads it.

What writes to ``sys.stderr`` directly rather than through logging (gevent's report of a greenlet that died, a
warning) goes through the same writer: ``sys.stderr`` is replaced by a text stream over it, so no write to stderr
can stop the loop either.
"""

from __future__ import annotations

import io
import logging
import sys
from typing import Final

from pyrie_core.log_format import GoStyleFormatter
from supervisor.observe.stream_writer import StreamWriter

__all__ = ["flush_log", "setup_logging"]

STDERR: Final = 2
LOG_ROOM: Final = 1024 * 1024
LOG_LIMIT: Final = 4 * 1024 * 1024

_writer: StreamWriter | None = None


class _WriterHandler(logging.Handler):
    def __init__(self, writer: StreamWriter) -> None:
        super().__init__()
        self._writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._writer.write(f"{self.format(record)}\n".encode())
        except Exception:
            self.handleError(record)


class _WriterStream(io.TextIOBase):
    """``sys.stderr`` over the writer: text in, never waits."""

    encoding = "utf-8"

    def __init__(self, writer: StreamWriter) -> None:
        super().__init__()
        self._writer = writer

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._writer.write(text.encode(errors="backslashreplace"))
        return len(text)


def setup_logging(level: str) -> None:
    """pyrie's own log goes to stderr, like the Go emulator's."""
    global _writer  # noqa: PLW0603 - one writer for the process's stderr
    _writer = StreamWriter(STDERR, LOG_ROOM, LOG_LIMIT)
    handler = _WriterHandler(_writer)
    handler.setFormatter(GoStyleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    sys.stderr = _WriterStream(_writer)


def flush_log(timeout_s: float) -> None:
    """Let what was logged reach stderr, waiting at most ``timeout_s``."""
    if _writer is not None:
        _writer.flush(timeout_s)
