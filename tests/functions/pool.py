"""Handlers for the pool tests (run by pyrie's own runtime client)."""

import os
import subprocess
import sys
import time

from pyrie_runtime_client import streaming


def whoami(event, context):
    began = time.monotonic()
    time.sleep(event.get("sleep", 0))
    return {
        "pid": os.getpid(),
        "runtime_api": os.environ["AWS_LAMBDA_RUNTIME_API"],
        "id": context.aws_request_id,
        "ran": [began, time.monotonic()],  # the machine's monotonic clock, shared by every process
    }


def shout(event, context):
    print(f"event ran: {event.get('tag')}", flush=True)
    time.sleep(event.get("sleep", 0))
    if event.get("fail"):
        raise RuntimeError(f"failed on purpose: {event.get('tag')}")
    return "done"


def allocate(event, context):
    block = bytearray(event["mb"] * 1024 * 1024)
    for offset in range(0, len(block), 4096):  # touch every page: resident, not just reserved
        block[offset] = 1
    time.sleep(event.get("hold", 0.5))
    return len(block)


def leave_child_behind(event, context):
    """Start a process that leaves the runtime's process group and would outlive it."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    return {"child": child.pid}


@streaming
def slow_stream(event, context):
    for n in range(event.get("count", 5)):
        yield f"chunk {n}\n"
        time.sleep(event.get("interval", 0.1))
    print(f"stream finished {context.aws_request_id}", flush=True)
