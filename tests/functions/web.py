"""Handlers for the InvokeWithResponseStream and Function URL tests (pyrie's own runtime client)."""

import json
import os
import time

from pyrie_runtime_client import http_response_stream, streaming


def result_from_body(event, context):
    """Return whatever JSON the Function URL request's body holds (the tests pick the result)."""
    return json.loads(event["body"])


def echo_event(event, context):
    return event


@streaming
def chunk_then_sleep(event, context):
    yield "first\n"
    time.sleep(event.get("seconds", 30))
    yield "never\n"


@streaming
def chunk_then_exit(event, context):
    yield "first\n"
    os._exit(3)


def http_ticks(event, context):
    """An HTTP response streamed through a Function URL: status, headers and cookies first, then ticks."""
    query = event.get("queryStringParameters") or {}
    count = int(query.get("count", 3))
    interval = float(query.get("interval", 0.2))

    def ticks():
        if query.get("fail") == "before":
            raise ValueError("failed before the first tick")
        for n in range(count):
            if n:
                time.sleep(interval)
            yield f"data: {n} {time.monotonic()}\n\n"
        if query.get("fail") == "after":
            raise ValueError("failed after the ticks")

    return http_response_stream(
        ticks(),
        status_code=int(query.get("status", 200)),
        headers={"Content-Type": "text/event-stream", "X-Tick": "yes"},
        cookies=["a=1; Path=/", "b=2"],
    )


@streaming(content_type="text/plain")
def plain_stream(event, context):
    yield "one,"
    yield "two"
