"""pyrie's stdout: the runtime's and extensions' output, line by line, and Lambda's platform lines."""

from __future__ import annotations

import sys
from typing import BinaryIO

__all__ = ["FunctionLog"]


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
