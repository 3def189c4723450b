"""Server-sent events, streamed one by one as the handler yields them.

Run it from this directory with pyrie, then watch the events arrive every 200 ms:

    pyrie app.handler
    curl -N -X POST http://127.0.0.1:8080/2015-03-31/functions/function/invocations -d '{}'

The event may set ``count`` (default 10) and ``interval_ms`` (default 200), e.g. ``-d '{"count": 3}'``.
"""

import json
import time
from collections.abc import Iterator
from typing import Any

from pyrie_runtime_client import LambdaContext, streaming


@streaming(content_type="text/event-stream")
def handler(event: Any, context: LambdaContext) -> Iterator[str]:
    options = event if isinstance(event, dict) else {}
    count = int(options.get("count", 10))
    interval = int(options.get("interval_ms", 200)) / 1000
    for n in range(1, count + 1):
        if n > 1:
            time.sleep(interval)
        data = json.dumps({"n": n, "requestId": context.aws_request_id})
        yield f"id: {n}\nevent: tick\ndata: {data}\n\n"
