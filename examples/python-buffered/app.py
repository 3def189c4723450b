"""A plain buffered handler: the whole result is returned at once, as JSON.

Run it from this directory with pyrie (or any Lambda Python runtime; it needs nothing but the standard library):

    pyrie app.handler
    curl -X POST http://127.0.0.1:8080/2015-03-31/functions/function/invocations -d '{"hello": "world"}'
"""

from typing import Any


def handler(event: Any, context: Any) -> dict[str, Any]:
    return {
        "event": event,
        "requestId": context.aws_request_id,
        "functionName": context.function_name,
        "functionVersion": context.function_version,
        "memoryLimitInMB": context.memory_limit_in_mb,
        "remainingTimeInMillis": context.get_remaining_time_in_millis(),
    }
