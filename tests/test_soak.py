"""Soak: 20,000 mixed invokes at concurrency 8 against a pool of 7 environments — buffered, streamed, function
errors, timeouts, crashes, clients that go away mid-stream, and the throttling that 8 callers on 7 environments
cause. Every invoke must get its correct answer, none may be lost, and pyrie's own resources (RSS, open files,
threads, child processes) must be as flat at the end as after the first quarter."""

from __future__ import annotations

import http.client
import json
import random
import re
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import StartPyrie
from tests.harness import INVOKE_PATH, Pyrie, wait_until
from tests.test_resilience import is_frontend

FUNCTIONS = Path(__file__).parent / "functions"
TOTAL = 20_000
CALLERS = 8
ENVIRONMENTS = 7
# (kind, weight): mostly ordinary invokes, and enough of every failure to matter
MIX = [("buffered", 620), ("stream", 300), ("error", 50), ("slow_stream", 20), ("crash", 8), ("timeout", 2)]

pytestmark = [pytest.mark.slow, pytest.mark.soak]  # make soak runs it, make test does not


class Caller:
    """One keep-alive connection, like an SDK client's."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def invoke(self, kind: str, n: int) -> tuple[int, dict[str, str], bytes]:
        body = json.dumps({"kind": kind, "n": n}).encode()
        try:
            self.conn.request("POST", INVOKE_PATH, body=body)
            response = self.conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        except (http.client.HTTPException, OSError):
            # a truncated stream closes the connection: that is its answer; open a new one for the next invoke
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            return -1, {}, b""

    def go_away_mid_stream(self, n: int) -> str:
        body = json.dumps({"kind": "slow_stream", "n": n}).encode()
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            sock.sendall(
                f"POST {INVOKE_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
            )
            received = b""
            while b"\r\n\r\n" not in received:
                received += sock.recv(65536)
        if not received.startswith(b"HTTP/1.1 200"):
            assert received.startswith(b"HTTP/1.1 429"), received
            return ""  # throttled
        match = re.search(rb"X-Amzn-RequestId: ([0-9a-f-]+)", received)
        assert match, received
        return match[1].decode()


def check(kind: str, n: int, status: int, headers: dict[str, str], body: bytes) -> str:
    """The expected answer for each kind; returns the outcome's name. Throttling is a correct answer too."""
    if status == 429:
        assert headers["X-Amzn-ErrorType"] == "TooManyRequestsException", body
        return "throttled"
    if kind == "buffered":
        assert (status, json.loads(body)) == (200, {"n": n, "echo": ""}), body
    elif kind == "stream":
        assert status == 200 and headers["Lambda-Runtime-Function-Response-Mode"] == "streaming"
        assert body == f"{n}:0\n{n}:1\n{n}:2\n".encode()
    elif kind == "error":
        assert status == 200 and headers["X-Amz-Function-Error"] == "Unhandled"
        assert json.loads(body)["errorMessage"] == f"soak error {n}"
    elif kind in ("crash", "timeout"):
        expected = "Runtime.ExitError" if kind == "crash" else "Sandbox.Timedout"
        assert status == 200 and headers["X-Amz-Function-Error"] == "Unhandled"
        assert json.loads(body)["errorType"] == expected
    else:
        raise AssertionError(kind)
    return kind


def resources(pyrie: Pyrie) -> dict[str, float]:
    """pyrie's own processes (supervisor and gunicorn), and how many runtimes it runs."""
    own = [pyrie.psutil] + [p for p in pyrie.descendants() if is_frontend(p)]
    return {
        "rss_mb": sum(p.memory_info().rss for p in own) / 2**20,
        "fds": sum(p.num_fds() for p in own),
        "threads": sum(p.num_threads() for p in own),
        "processes": len(own),
    }


def settle(pyrie: Pyrie) -> None:
    """Wait until no invoke is in flight (every START has its END)."""

    def quiet() -> bool:
        text = pyrie.stdout()
        return text.count("START RequestId") == text.count("END RequestId")

    wait_until(quiet, 30, interval=0.2, what="in-flight invokes to end")


def test_soak(start_pyrie: StartPyrie) -> None:
    pyrie = start_pyrie(
        "--max-concurrency",
        str(ENVIRONMENTS),
        "soak.handler",
        cwd=FUNCTIONS,
        extra_env={"AWS_LAMBDA_FUNCTION_TIMEOUT": "1", "PYRIE_WORKERS": "2"},
    )
    rng = random.Random(20_000)
    kinds = rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX], k=TOTAL)
    outcomes: Counter[str] = Counter()
    request_ids: dict[str, str] = {}
    lock = threading.Lock()
    callers = threading.local()
    started = time.monotonic()

    def run(n: int) -> None:
        caller = getattr(callers, "caller", None)
        if caller is None:
            caller = callers.caller = Caller(pyrie.port)
        kind = kinds[n]
        if kind == "slow_stream":
            request_id = caller.go_away_mid_stream(n)
            outcome = "went_away" if request_id else "throttled"
        else:
            status, headers, body = caller.invoke(kind, n)
            outcome = check(kind, n, status, headers, body)
            request_id = headers.get("X-Amzn-RequestId", "") if outcome != "throttled" else ""
        if outcome == "throttled":
            time.sleep(0.02)  # back off, as an SDK's retry policy would, before the next invoke
        with lock:
            outcomes[outcome] += 1
            if request_id:
                request_ids[request_id] = kind

    with ThreadPoolExecutor(CALLERS) as pool:
        list(pool.map(run, range(TOTAL // 4)))
        settle(pyrie)
        first_quarter = resources(pyrie)
        list(pool.map(run, range(TOTAL // 4, TOTAL)))
    settle(pyrie)
    last = resources(pyrie)
    elapsed = time.monotonic() - started

    assert sum(outcomes.values()) == TOTAL  # every invoke was answered (how fast is make bench's question)
    for kind, _ in MIX:
        assert outcomes["went_away" if kind == "slow_stream" else kind] > 0, outcomes
    assert outcomes["throttled"] > 0, outcomes  # eight callers on seven environments
    # none lost: every invoke that reached an environment ran to its END, also those whose caller went away
    ended = set(re.findall(r"^END RequestId: (\S+)$", pyrie.stdout(), re.MULTILINE))
    missing = {rid: kind for rid, kind in request_ids.items() if rid not in ended}
    assert not missing, (len(missing), Counter(missing.values()), list(missing)[:3])
    # flat: what pyrie holds after 20,000 invokes is what it held after 5,000
    assert last["processes"] == first_quarter["processes"]
    assert last["threads"] == first_quarter["threads"]
    assert last["fds"] <= first_quarter["fds"] + 4, (first_quarter, last)
    assert last["rss_mb"] <= first_quarter["rss_mb"] * 1.10 + 5, (first_quarter, last)
    print(f"\nsoak: {TOTAL} invokes in {elapsed:.0f} s, {dict(outcomes)}, {first_quarter} -> {last}")
