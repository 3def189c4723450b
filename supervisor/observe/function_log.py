"""pyrie's stdout: the runtime's and extensions' output, line by line, and Lambda's platform lines.

Nothing here waits for whoever reads stdout (``supervisor.observe.stream_writer``). When the reader falls behind by
``OUTPUT_ROOM`` bytes, the relays of the runtimes' output wait in ``wait_for_room`` and stop reading their pipes, so
the functions that write slow down and nothing is lost; platform lines (START, END, REPORT), which cannot wait, are
still taken up to ``OUTPUT_LIMIT``.
"""

from __future__ import annotations

from typing import Final

from supervisor.observe.stream_writer import StreamWriter

__all__ = ["OUTPUT_LIMIT", "OUTPUT_ROOM", "FunctionLog"]

OUTPUT_ROOM: Final = 1024 * 1024
OUTPUT_LIMIT: Final = 64 * 1024 * 1024
STDOUT: Final = 1


class FunctionLog:
    """pyrie's stdout, where function output and platform lines go, whole lines at a time."""

    def __init__(self, writer: StreamWriter | None = None) -> None:
        self._writer = writer if writer is not None else StreamWriter(STDOUT, OUTPUT_ROOM, OUTPUT_LIMIT)

    def write(self, data: bytes) -> None:
        """Whole lines (``supervisor.observe.platform_reporter`` ends each with its newline); never waits."""
        self._writer.write(data)

    def wait_for_room(self) -> None:
        """Wait while the reader of stdout is ``OUTPUT_ROOM`` bytes behind."""
        self._writer.wait_for_room()

    def flush(self, timeout_s: float) -> bool:
        return self._writer.flush(timeout_s)
