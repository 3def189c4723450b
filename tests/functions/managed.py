"""Handlers for Lambda Managed Instances under awslambdaric's multi-process mode (AWS_LAMBDA_MAX_CONCURRENCY)."""

import os
import time


def work(event, context):
    """Sleep, then say who did it (the request, the worker process and its parent, the runtime's main process) and
    when (epoch seconds, so that a test can see which invokes ran at the same time)."""
    started = time.time()
    time.sleep(event.get("seconds", 0.5))
    return {
        "requestId": context.aws_request_id,
        "n": event.get("n"),
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "started": started,
        "ended": time.time(),
    }


def crash(event, context):
    """This worker process dies in the middle of its invoke (at once, or after a while)."""
    if event.get("crash"):
        time.sleep(event.get("seconds", 0))
        os._exit(3)
    return work(event, context)
