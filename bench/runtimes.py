"""The benchmark's custom runtime: a stdlib-only Python bootstrap speaking the Runtime API.

This file is both a module (the bench imports the event builders and the tick record format) and, copied
beside a shebang line by `bootstrap_source`, the runtime itself. It keeps one keep-alive `http.client`
connection to `AWS_LAMBDA_RUNTIME_API`, long-polls `GET /next` and answers on `/response`:

- any event that is not a bench command is echoed back unchanged (the latency workload);
- `{"bench": "bytes", "size": N}` answers N bytes, buffered, with a Content-Length;
- `{"bench": "ticks", "count": K, "gap_ms": G}` streams K fixed-size records G ms apart, each carrying its
  send time on CLOCK_MONOTONIC (shared by every process on the machine) so the client can measure lateness;
- `{"bench": "flood", "total": N, "chunk": C}` streams N bytes in C-byte writes as fast as it can;
- `{"bench": "sleep", "ms": T}` answers `{}` after T ms (a handler that waits, for the concurrency workload);
- `{"bench": "discard", ...}` answers `{}` at once without parsing the rest (a large payload that costs the runtime
  nothing).

Streamed answers use the custom-runtime contract: `Lambda-Runtime-Function-Response-Mode: streaming` and a
chunked body, one HTTP chunk per write, sent as soon as it is produced.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
from collections.abc import Iterator

RUNTIME_PATH = "/2018-06-01/runtime/invocation"
COMMAND_PREFIX = b'{"bench":'

# One tick record: sequence number and send time in ns, fixed width so records can be cut out of a byte stream
# however the emulator splits or joins the chunks.
TICK_RECORD_SIZE = 32
_TICK_FORMAT = b"%08d %022d\n"
_MAX_BYTES_SIZE = 64 * 1024 * 1024
_MAX_FLOOD_TOTAL = 1024 * 1024 * 1024


def encode_tick(seq: int, sent_ns: int) -> bytes:
    return _TICK_FORMAT % (seq, sent_ns)


def decode_tick(record: bytes) -> tuple[int, int]:
    """Return (sequence number, send time in monotonic ns) of one TICK_RECORD_SIZE-byte record."""
    seq, sent_ns = record.split()
    return int(seq), int(sent_ns)


def bytes_event(size: int) -> bytes:
    return json.dumps({"bench": "bytes", "size": size}, separators=(",", ":")).encode()


def ticks_event(count: int, gap_ms: float) -> bytes:
    return json.dumps({"bench": "ticks", "count": count, "gap_ms": gap_ms}, separators=(",", ":")).encode()


def flood_event(total: int, chunk: int) -> bytes:
    return json.dumps({"bench": "flood", "total": total, "chunk": chunk}, separators=(",", ":")).encode()


def sleep_event(ms: float) -> bytes:
    return json.dumps({"bench": "sleep", "ms": ms}, separators=(",", ":")).encode()


DISCARD_PREFIX = b'{"bench":"discard"'


def discard_event(size: int) -> bytes:
    """A discard command padded to about `size` bytes with an array of small records: a large payload of the shape
    that costs a JSON parser most per byte (many small values); the runtime answers `{}` without parsing it."""
    record = b'{"id":12345,"name":"abcdefgh","ok":true},'
    head = DISCARD_PREFIX + b',"records":['
    count = max(1, (size - len(head) - 2) // len(record))
    return head + record * count + b'{"id":0}]}'


# -I: ignore PYTHON* variables and the user site; -S: skip site, nothing outside the stdlib is needed.
INTERPRETER_OPTIONS = "-IS"


def bootstrap_source(python: str) -> str:
    """The text of an executable bootstrap file that runs this module with `python`.

    The kernel runs it as `python -IS <path of the file>`, which is how the bench tells the runtime processes
    apart from the emulator's own (see `runtime_argv`).
    """
    with open(__file__, encoding="utf-8") as source:
        body = source.read()
    return f"#!{python} {INTERPRETER_OPTIONS}\n{body}"


def runtime_argv(bootstrap_path: str) -> list[str]:
    """The words that appear, in this order, in the command line of a runtime started from that bootstrap file."""
    return [INTERPRETER_OPTIONS, bootstrap_path]


def _ticks(count: int, gap_s: float) -> Iterator[bytes]:
    for seq in range(count):
        if seq:
            time.sleep(gap_s)
        yield encode_tick(seq, time.monotonic_ns())


def _flood(total: int, chunk: int) -> Iterator[bytes]:
    block = b"\xab" * chunk
    full, rest = divmod(total, chunk)
    for _ in range(full):
        yield block
    if rest:
        yield block[:rest]


class Runtime:
    """The Runtime API loop: one keep-alive connection, reopened after any failed exchange."""

    def __init__(self, api: str) -> None:
        host, _, port = api.rpartition(":")
        self.conn = http.client.HTTPConnection(host, int(port))
        self._bytes_cache: dict[int, bytes] = {}

    def next_event(self) -> tuple[str, bytes]:
        self.conn.request("GET", f"{RUNTIME_PATH}/next")
        resp = self.conn.getresponse()
        event = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"GET /next answered {resp.status}: {event[:200]!r}")
        request_id = resp.getheader("Lambda-Runtime-Aws-Request-Id")
        if not request_id:
            raise RuntimeError("GET /next answered without Lambda-Runtime-Aws-Request-Id")
        return request_id, event

    def respond(self, request_id: str, event: bytes) -> None:
        path = f"{RUNTIME_PATH}/{request_id}/response"
        if not event.startswith(COMMAND_PREFIX):
            self._post(path, event, {"Content-Type": "application/json"})
            return
        if event.startswith(DISCARD_PREFIX):
            self._post(path, b"{}", {"Content-Type": "application/json"})
            return
        command = json.loads(event)
        op = command["bench"]
        if op == "bytes":
            size = min(int(command["size"]), _MAX_BYTES_SIZE)
            body = self._bytes_cache.get(size)
            if body is None:
                body = self._bytes_cache[size] = b"x" * size
            self._post(path, body, {"Content-Type": "application/octet-stream"})
        elif op == "ticks":
            self._stream(path, _ticks(int(command["count"]), float(command["gap_ms"]) / 1000))
        elif op == "flood":
            total = min(int(command["total"]), _MAX_FLOOD_TOTAL)
            self._stream(path, _flood(total, max(1, int(command["chunk"]))))
        elif op == "sleep":
            time.sleep(float(command["ms"]) / 1000)
            self._post(path, b"{}", {"Content-Type": "application/json"})
        else:
            self._post(path, event, {"Content-Type": "application/json"})

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        self.conn.request("POST", path, body=body, headers=headers)
        self._finish(path)

    def _stream(self, path: str, chunks: Iterator[bytes]) -> None:
        headers = {
            "Content-Type": "application/octet-stream",
            "Lambda-Runtime-Function-Response-Mode": "streaming",
            "Transfer-Encoding": "chunked",
        }
        self.conn.request("POST", path, body=chunks, headers=headers, encode_chunked=True)
        self._finish(path)

    def _finish(self, path: str) -> None:
        resp = self.conn.getresponse()
        answer = resp.read()
        if resp.status != 202:
            print(f"bench runtime: POST {path} answered {resp.status}: {answer[:200]!r}", file=sys.stderr, flush=True)

    def run(self) -> int:
        while True:
            try:
                request_id, event = self.next_event()
            except (OSError, http.client.HTTPException, RuntimeError) as exc:
                # The Runtime API is gone (the emulator stopped or reset us): exit rather than spin.
                print(f"bench runtime: {exc!r}; exiting", file=sys.stderr, flush=True)
                return 1
            try:
                self.respond(request_id, event)
            except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
                # E.g. an emulator that refuses an oversized stream and closes the connection mid-body.
                print(f"bench runtime: response to {request_id} failed: {exc!r}", file=sys.stderr, flush=True)
                self.conn.close()


def main() -> int:
    api = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not api:
        print("bench runtime: AWS_LAMBDA_RUNTIME_API is not set", file=sys.stderr)
        return 2
    return Runtime(api).run()


if __name__ == "__main__":
    sys.exit(main())
