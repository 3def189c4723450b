"""A web page and its server-sent events, both served by one Python function through a Function URL.

Run it from this directory with pyrie and a Function URL listener, then open the page in a browser:

    pyrie --function-url-address 127.0.0.1:8081 app.handler
    open http://127.0.0.1:8081/                  # or ?count=20&interval_ms=500

``GET /`` answers the page (a buffered result: status, headers, body). The page opens an ``EventSource`` on
``/events`` of the same URL, which streams ``count`` events (default 10) ``interval_ms`` apart (default 200)
with ``http_response_stream``: the status and headers go first, then each event the moment it is yielded, then a
final ``done`` event on which the page closes the source (an ``EventSource`` would otherwise reconnect). The page
lists the events as they come and keeps their arrival times (``performance.now()``) in ``window.events``. It
names an empty icon, so the browser asks for no ``/favicon.ico``: that request would run the function once more for
nothing, and with ``--max-concurrency 1`` it could still be running when the ``EventSource`` connects, which would
then be throttled (429); an ``EventSource`` does not retry after an error status.
"""

import json
import time
from collections.abc import Iterator
from typing import Any

from pyrie_runtime_client import LambdaContext, http_response_stream

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>pyrie: server-sent events from a Function URL</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 2rem; }
  li { font-family: ui-monospace, monospace; }
</style>
</head>
<body>
<h1>Server-sent events from a Function URL</h1>
<p id="status">connecting&hellip;</p>
<ol id="events"></ol>
<script>
  window.events = [];  // {n, at}: the tick's number and when it arrived (performance.now(), ms)
  window.done = false;
  const list = document.getElementById("events");
  const status = document.getElementById("status");
  const source = new EventSource("events" + location.search);
  source.onopen = () => { status.textContent = "streaming"; };
  source.onmessage = (message) => {
    const at = performance.now();
    const tick = JSON.parse(message.data);
    window.events.push({ n: tick.n, at });
    const item = document.createElement("li");
    item.textContent = `tick ${tick.n} at ${at.toFixed(1)} ms (request ${tick.requestId})`;
    list.appendChild(item);
  };
  source.addEventListener("done", () => {
    source.close();
    window.done = true;
    status.textContent = `done: ${window.events.length} events`;
  });
  source.onerror = () => { if (!window.done) status.textContent = "error (the browser will retry)"; };
</script>
</body>
</html>
"""

MAX_COUNT = 10_000
MAX_INTERVAL_MS = 60_000


def handler(event: Any, context: LambdaContext) -> Any:
    request = event if isinstance(event, dict) else {}
    path = request.get("rawPath", "/")
    accept = request.get("headers", {}).get("accept", "")
    if path.rstrip("/").endswith("/events") or "text/event-stream" in accept:
        query = request.get("queryStringParameters") or {}
        count = _option(query, "count", 10, MAX_COUNT)
        interval = _option(query, "interval_ms", 200, MAX_INTERVAL_MS) / 1000
        return http_response_stream(
            _ticks(count, interval, context.aws_request_id),
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
        )
    if path not in ("", "/"):
        return {"statusCode": 404, "headers": {"Content-Type": "text/plain"}, "body": f"no page at {path}\n"}
    return {"statusCode": 200, "headers": {"Content-Type": "text/html; charset=utf-8"}, "body": PAGE}


def _ticks(count: int, interval: float, request_id: str) -> Iterator[str]:
    for n in range(1, count + 1):
        if n > 1:
            time.sleep(interval)
        yield f"id: {n}\ndata: {json.dumps({'n': n, 'requestId': request_id})}\n\n"
    yield "event: done\ndata: {}\n\n"


def _option(query: dict[str, str], name: str, default: int, maximum: int) -> int:
    text = query.get(name, "")
    return min(int(text), maximum) if text.isdigit() else default
