"""Runs durable handlers the way Lambda's Python runtime would call them, one invocation per line of stdin.

Each request is one JSON line ``{"handler": "module:function", "payload": "<event JSON>", "request_id": ...}``; the
answer is one JSON line on the original stdout: ``{"body": "<response JSON>"}``, or ``{"errorType", "errorMessage",
"stackTrace"}`` when the handler raised (Lambda's function error body). Anything the handler prints goes to stderr.
The process stays up between invocations, like a warm execution environment.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


class Context:
    """The members of the Lambda context object the SDK reads."""

    def __init__(self, request_id: str, deadline: float) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "test_function")
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:012345678912:function:{self.function_name}"
        self.memory_limit_in_mb = "128"
        self.log_group_name = None
        self.log_stream_name = None
        self.tenant_id = None
        self.client_context = None
        self.identity = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))

    def log(self, message: str) -> None:
        sys.stderr.write(message)


def main() -> None:
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # the protocol owns the real stdout
    for line in sys.stdin:
        request = json.loads(line)
        module_name, _, function_name = request["handler"].partition(":")
        handler: Any = getattr(importlib.import_module(module_name), function_name)
        context = Context(request["request_id"], time.time() + request.get("timeout", 60))
        try:
            result = handler(json.loads(request["payload"]), context)
            answer: dict[str, Any] = {"body": json.dumps(result)}
        except Exception as error:  # the function error Lambda would report
            answer = {
                "errorType": type(error).__name__,
                "errorMessage": str(error),
                "stackTrace": traceback.format_tb(error.__traceback__),
            }
        answers.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
