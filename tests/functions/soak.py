"""The soak test's function: one handler, behaviours chosen by the event (run by pyrie's runtime client)."""

import os
import time

from pyrie_runtime_client import StreamingResponse


def handler(event, context):
    kind = event["kind"]
    n = event["n"]
    if kind == "buffered":
        return {"n": n, "echo": event.get("pad", "")}
    if kind == "stream":
        return StreamingResponse((f"{n}:{part}\n" for part in range(3)), content_type="text/plain")
    if kind == "slow_stream":  # the client goes away after the first chunk
        return StreamingResponse(_slow(n), content_type="text/plain")
    if kind == "error":
        raise ValueError(f"soak error {n}")
    if kind == "timeout":
        time.sleep(5)
        return "too late"
    if kind == "crash":
        os._exit(3)
    raise AssertionError(kind)


def _slow(n):
    for part in range(4):
        yield f"{n}:{part}\n"
        time.sleep(0.05)
