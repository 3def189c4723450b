"""Peers that misbehave, for the hardening tests: HTTP clients that stop reading, processes watched until they are
gone, and the announcements the hardening function (tests/functions/hardening.py) prints about itself."""

from __future__ import annotations

import calendar
import contextlib
import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import psutil

from tests.harness import INVOKE_PATH, Pyrie, wait_until

__all__ = [
    "REPORT",
    "LineClock",
    "Read",
    "StalledClient",
    "announced",
    "platform_lines",
    "report_duration_ms",
    "sigterm_note",
    "timeout_line_epoch",
    "wait_gone",
]

# A REPORT line: its request id and Duration.
REPORT = re.compile(r"^REPORT RequestId: (\S+)\tDuration: ([0-9.]+) ms", re.MULTILINE)
# Lambda's timeout line: its timestamp, request id and message.
TIMED_OUT = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z (\S+) (Task timed out after [0-9.]+ seconds)$")


_TCP_STATES = {
    "01": "ESTABLISHED",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "0B": "CLOSING",
}


@dataclass
class Read:
    data: bytes
    how: str  # "eof", "reset", or "timeout" (the peer neither sent more nor closed)

    @property
    def head(self) -> bytes:
        return self.data.partition(b"\r\n\r\n")[0]

    @property
    def complete(self) -> bool:
        """A chunked body that ended with its terminating chunk (a truncated stream has none)."""
        return self.data.endswith(b"\r\n0\r\n\r\n")


class StalledClient:
    """An HTTP client that sends one request and then reads nothing, with a small receive buffer, its connection kept
    open: the kernel soon stops taking data for it, and whoever writes to it must wait. It may read later
    (``read_to_end``); the server closes the connection after the response."""

    def __init__(
        self,
        port: int,
        payload: bytes,
        *,
        path: str = INVOKE_PATH,
        headers: dict[str, str] | None = None,
        receive_buffer: int = 4096,
    ) -> None:
        self.port = port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.connect(("127.0.0.1", port))
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self.sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}"
            f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )

    def read_to_end(self, timeout: float) -> Read:
        """Read all the peer sends until it closes (or resets) the connection, or sends nothing for ``timeout``."""
        self.sock.settimeout(timeout)
        data = bytearray()
        try:
            while chunk := self.sock.recv(1 << 20):
                data += chunk
        except TimeoutError:
            return Read(bytes(data), "timeout")
        except ConnectionResetError:
            return Read(bytes(data), "reset")
        return Read(bytes(data), "eof")

    def server_side(self) -> str | None:
        """The TCP state of pyrie's end of this connection (``ESTABLISHED``, ``FIN_WAIT1`` once it is shut...), as
        the kernel lists it; None once it is gone."""
        ours = self.sock.getsockname()[1]
        with open("/proc/net/tcp") as table:
            for row in table.readlines()[1:]:
                fields = row.split()
                local, remote, state = fields[1], fields[2], fields[3]
                if int(local.split(":")[1], 16) == self.port and int(remote.split(":")[1], 16) == ours:
                    return _TCP_STATES.get(state, state)
        return None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> StalledClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def announced(pyrie: Pyrie, key: str, count: int = 1, timeout: float = 15.0) -> list[dict[str, Any]]:
    """The first ``count`` ``KEY {json}`` lines the hardening function printed, waiting for them."""

    def found() -> list[dict[str, Any]]:
        records = [
            json.loads(line.removeprefix(f"{key} ")) for line in pyrie.stdout_lines() if line.startswith(f"{key} ")
        ]
        return records[:count] if len(records) >= count else []

    return wait_until(found, timeout, what=f"{count} {key} lines")


def wait_gone(process: psutil.Process, timeout: float, interval: float = 0.002) -> float:
    """Wait until ``process`` has exited (gone, or a zombie nobody has reaped yet); the wall-clock time it was first
    seen so, in epoch seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return time.time()
        except psutil.NoSuchProcess:
            return time.time()
        time.sleep(interval)
    raise AssertionError(f"process {process.pid} still runs {timeout} s later")


def platform_lines(pyrie: Pyrie, request_id: str) -> dict[str, str]:
    """The invoke's END and REPORT lines and its timeout line, if written, by kind."""
    lines: dict[str, str] = {}
    for line in pyrie.stdout_lines():
        if line.startswith(f"END RequestId: {request_id}"):
            lines["END"] = line
        elif line.startswith(f"REPORT RequestId: {request_id}"):
            lines["REPORT"] = line
        elif (match := TIMED_OUT.match(line)) and match[2] == request_id:
            lines["TIMEOUT"] = line
    return lines


def timeout_line_epoch(line: str) -> float:
    """The epoch seconds a timeout line's own timestamp says."""
    match = TIMED_OUT.match(line)
    assert match, line
    return calendar.timegm(time.strptime(match[1][:19], "%Y-%m-%dT%H:%M:%S")) + int(match[1][20:]) / 1000


def sigterm_note(path: Any) -> tuple[float, float]:
    """A runtime's note of its SIGTERM (tests/functions/hardening.py): when it came (epoch seconds), and how long the
    runtime had waited for a CPU by then (seconds, to subtract its ``run_delay`` announced earlier from)."""
    at, run_delay = path.read_text().split()
    return float(at), float(run_delay)


def report_duration_ms(line: str) -> float:
    match = REPORT.match(line)
    assert match, line
    return float(match[2])


class LineClock:
    """Watches pyrie's stdout from a thread and notes when each line was first seen there (epoch seconds), so a test
    can tell when a line was written to within the polling interval."""

    def __init__(self, pyrie: Pyrie, interval: float = 0.005) -> None:
        self._pyrie = pyrie
        self._interval = interval
        self._seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def first_seen(self, prefix: str, timeout: float = 15.0) -> float:
        """When a line starting with ``prefix`` was first seen, waiting for one."""

        def seen() -> float | None:
            return next((at for line, at in list(self._seen.items()) if line.startswith(prefix)), None)

        return float(wait_until(seen, timeout, what=f"a line starting {prefix!r}"))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        offset = 0
        partial = b""
        while not self._stop.is_set():
            with open(self._pyrie.stdout_path, "rb") as file:
                file.seek(offset)
                data = file.read()
            now = time.time()
            offset += len(data)
            *lines, partial = (partial + data).split(b"\n")
            for line in lines:
                self._seen.setdefault(line.decode(errors="replace"), now)
            time.sleep(self._interval)
