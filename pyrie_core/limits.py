"""Lambda's payload limits (lambda-protocols.md, "Limits")."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits"]


@dataclass(frozen=True, slots=True)
class Limits:
    request_bytes: int = 6_291_456  # synchronous invoke request: 6 MiB
    event_request_bytes: int = 1_048_576  # asynchronous (Event) invoke request: 1 MB (256 KB before 2025)
    response_bytes: int = 6_291_556  # buffered response: 6 MiB + 100
    streamed_response_bytes: int = 200 * 1024 * 1024  # streamed response: 200 MiB
