"""Streaming handlers for pyrie's own runtime client."""

import time

from pyrie_runtime_client import streaming


@streaming(content_type="text/event-stream")
def ticks(event, context):
    for n in range(event.get("count", 5)):
        if n:
            time.sleep(event.get("interval", 0.2))
        yield f"data: {n} {time.monotonic()}\n\n"


def plain_generator(event, context):
    yield b"one,"
    yield "two,"
    yield b"three"


@streaming
def fails_mid_stream(event, context):
    yield "first part\n"
    raise ValueError("exploded after the first part")


@streaming
def fails_before_first_item(event, context):
    raise ValueError("exploded before anything")
    yield "never"  # pragma: no cover
