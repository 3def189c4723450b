"""What an invoke writes to pyrie's stdout: the runtime's output, line by line, and Lambda's platform lines.

START / END / REPORT follow Lambda's text format exactly, one request id on all three (the Go emulator prints a
different id on START, a bug this does not copy), with a real ``Init Duration`` on cold starts:

    START RequestId: <id> Version: $LATEST
    END RequestId: <id>
    REPORT RequestId: <id>\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 3008 MB\tMax Memory Used: 41 MB\t
    (with "Init Duration: 95.10 ms\t" after Max Memory Used on a cold start)
"""

from __future__ import annotations

import base64
import logging
import math
import sys
import time
from typing import BinaryIO, Final

__all__ = ["LOG_TAIL_BYTES", "FunctionLog", "LogTail", "end_line", "report_line", "setup_logging", "start_line"]

# X-Amz-Log-Result is "the last 4 KB of the execution log, which is base64-encoded" (lambda-protocols.md §a).
LOG_TAIL_BYTES: Final = 4096


def start_line(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def report_line(
    request_id: str,
    duration_ms: float,
    memory_mb: int,
    max_memory_used_mb: int,
    init_duration_ms: float | None = None,
) -> str:
    fields = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {math.ceil(duration_ms)} ms",
        f"Memory Size: {memory_mb} MB",
        f"Max Memory Used: {max_memory_used_mb} MB",
    ]
    if init_duration_ms is not None:
        fields.append(f"Init Duration: {init_duration_ms:.2f} ms")
    return "\t".join(fields) + "\t"


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


class FunctionLog:
    """pyrie's stdout, where function output and platform lines go, whole lines at a time."""

    def __init__(self, out: BinaryIO | None = None) -> None:
        self._out = out if out is not None else sys.stdout.buffer

    def output(self, line: bytes) -> None:
        """One line of a runtime's or extension's output (with or without its newline)."""
        if not line.endswith(b"\n"):
            line += b"\n"
        self.write(line)

    def platform(self, *lines: str) -> None:
        """Platform lines (START, END, REPORT...), written together."""
        self.write("".join(f"{line}\n" for line in lines).encode())

    def write(self, data: bytes) -> None:
        try:
            self._out.write(data)
            self._out.flush()
        except (OSError, ValueError):
            pass  # stdout is gone (a closed pipe): the invoke goes on without its log


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
