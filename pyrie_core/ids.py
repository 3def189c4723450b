"""Identifiers Lambda hands out: request ids and X-Ray trace headers (standard library only: the front end uses it).

They need to be unique, not secret: a PRNG seeded from the operating system gives them without a system call each.
Forked processes (gunicorn's workers, forked again on every reload) would inherit the same generator state and hand
out the same sequence, so every fork reseeds it in the child.
"""

from __future__ import annotations

import os
import random
import time
import uuid

__all__ = ["new_request_id", "new_span_id", "new_trace_id"]

_random = random.Random()


def _reseed() -> None:
    _random.seed(os.urandom(32))


os.register_at_fork(after_in_child=_reseed)


def new_request_id() -> str:
    return str(uuid.UUID(int=_random.getrandbits(128), version=4))


def new_trace_id() -> str:
    """An X-Ray trace header, as Lambda sends in Lambda-Runtime-Trace-Id when the caller gave none."""
    return f"Root=1-{int(time.time()):08x}-{_random.getrandbits(96):024x};Parent={new_span_id()};Sampled=0"


def new_span_id() -> str:
    return f"{_random.getrandbits(64):016x}"
