"""Identifiers Lambda hands out: request ids and X-Ray trace headers (standard library only: the front end uses it).

They need to be unique, not secret: a PRNG seeded from the operating system gives them without a system call each.
Forked processes (gunicorn's workers, forked again on every reload) would inherit the same generator state and hand
out the same sequence, so every fork reseeds it in the child.
"""

from __future__ import annotations

import os
import random
import time

__all__ = ["new_request_id", "new_span_id", "new_trace_id"]

_random = random.Random()
# RFC 9562's version (4) and variant (10) bits, as uuid.UUID(int=..., version=4) sets them.
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET = (4 << 76) | (0x8000 << 48)


def _reseed() -> None:
    _random.seed(os.urandom(32))


os.register_at_fork(after_in_child=_reseed)


def new_request_id() -> str:
    """A random (version 4) UUID, as ``str(uuid.uuid4())`` writes it, without the ``uuid`` module (and ``platform``,
    which it imports) or its object."""
    value = _random.getrandbits(128) & _UUID_CLEAR | _UUID_SET
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def new_trace_id() -> str:
    """An X-Ray trace header, as Lambda sends in Lambda-Runtime-Trace-Id when the caller gave none."""
    return f"Root=1-{int(time.time()):08x}-{_random.getrandbits(96):024x};Parent={new_span_id()};Sampled=0"


def new_span_id() -> str:
    return f"{_random.getrandbits(64):016x}"
