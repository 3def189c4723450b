"""A stdlib raw-socket HTTP/1.1 server that answers every request at once with a fixed 200: the floor under
the bench client's round trips, so the client's own share of a measured latency is known. A bench flood
command is answered with that many bytes, chunked, to show how fast the client itself can read a stream.

Run as `python null_server.py HOST`: it binds a free port on HOST, prints the port on stdout and serves
keep-alive connections one at a time until killed.
"""

from __future__ import annotations

import json
import socket
import sys

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
STREAM_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
FLOOD_COMMAND = b'{"bench":"flood"'


def flood(conn: socket.socket, body: bytes) -> None:
    """Answer a bench flood command ({"bench":"flood","total":N,"chunk":C}) with N bytes in C-byte chunks."""
    command = json.loads(body)
    total, size = int(command["total"]), max(1, int(command["chunk"]))
    full, rest = divmod(total, size)
    chunk = b"%X\r\n" % size + b"\xab" * size + b"\r\n"
    conn.sendall(STREAM_HEAD)
    for _ in range(full):
        conn.sendall(chunk)
    if rest:
        conn.sendall(b"%X\r\n" % rest + b"\xab" * rest + b"\r\n")
    conn.sendall(b"0\r\n\r\n")


def serve(conn: socket.socket) -> None:
    buf = b""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
            continue
        length = 0
        for line in buf[:end].split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(buf) < end + 4 + length:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
        body = buf[end + 4 : end + 4 + length]
        buf = buf[end + 4 + length :]
        if body.startswith(FLOOD_COMMAND):
            flood(conn, body)
        else:
            conn.sendall(ANSWER)


def main() -> int:
    listener = socket.create_server((sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    while True:
        conn, _ = listener.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            serve(conn)


if __name__ == "__main__":
    sys.exit(main())
