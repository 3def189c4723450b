"""Reading a streamed HTTP response the way a browser or curl -N does: record when each piece arrives."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field


@dataclass
class Received:
    head: bytes = b""
    body: bytes = b""  # the de-chunked body
    complete: bool = False  # the chunked body ended with its terminating chunk
    chunks: list[tuple[float, bytes]] = field(default_factory=list)  # (monotonic arrival, chunk data)

    def frames(self, separator: bytes = b"\n\n") -> list[tuple[float, bytes]]:
        """The body's frames (server-sent events by default; lines with ``b"\n"``), each ending with ``separator``
        and timed by the arrival of the chunk that completed it. pyrie relays writes as they come, but a relay that
        waited for a CPU may send two writes in one chunk: count frames, not chunks."""
        found: list[tuple[float, bytes]] = []
        pending = b""
        for arrival, chunk in self.chunks:
            pending += chunk
            *complete, pending = pending.split(separator)
            found.extend((arrival, frame + separator) for frame in complete)
        return found


def stream_invoke(
    port: int, path: str, payload: bytes = b"{}", headers: dict[str, str] | None = None, timeout: float = 30
) -> Received:
    """POST and read a chunked response piece by piece, timing each chunk's arrival."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}Content-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    received = Received()
    buffer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        while b"\r\n\r\n" not in buffer:
            data = sock.recv(65536)
            if not data:
                raise AssertionError(f"connection closed before the response head: {buffer!r}")
            buffer += data
        received.head, _, buffer = buffer.partition(b"\r\n\r\n")
        while True:
            while b"\r\n" not in buffer:
                data = sock.recv(65536)
                if not data:
                    return received
                buffer += data
            size_line, _, rest = buffer.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(rest) < size + 2:
                data = sock.recv(65536)
                if not data:
                    received.body += rest[:size]
                    return received
                rest += data
            if size == 0:
                received.complete = True
                return received
            chunk, buffer = rest[:size], rest[size + 2 :]
            received.chunks.append((time.monotonic(), chunk))
            received.body += chunk
