"""Load for pyrie: invokes (streamed ones checked event by event), dry runs, a wrong function name and health checks,
as a Lambda caller makes them.

In the compose stack (deploy/docker-compose.yml) it runs by itself against both functions. Against pyrie on this
machine (any function; ``--host`` sends every user to it):

    locust -f deploy/locustfile.py --headless --users 4 --spawn-rate 2 --run-time 30s --host http://127.0.0.1:8080
    locust -f deploy/locustfile.py --headless -u 2 -r 2 -t 30s PythonStreamingFunction    # one of the two, by URL

Without ``--host``, PYTHON_FUNCTION_URL and NODE_FUNCTION_URL name the two pyries (default http://127.0.0.1:9000 and
:9001). Point them only at pyries you run: this machine or the compose network.

An invoke counts as a success when it is answered 200 without ``X-Amz-Function-Error``, and, when the function
streams server-sent ``tick`` events (the examples python-sse and node-sse), when every event arrived. A 429
(TooManyRequestsException: every execution environment is busy, as Lambda throttles) counts as a failure named for
what it is.
"""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar

from locust import HttpUser, between, task

INVOKE_PATH = "/2015-03-31/functions/function/invocations"
EVENTS = 5  # events per streamed invoke
EVENT_MARK = b"event: tick"


class _FunctionCaller(HttpUser):
    """A caller of one function. The payload asks the examples for a few quick events; others just get it as input."""

    abstract = True
    wait_time = between(0.1, 0.5)
    payload: ClassVar[dict[str, Any]] = {"count": EVENTS, "interval_ms": 20}

    @task(6)
    def invoke(self) -> None:
        with self.client.post(
            INVOKE_PATH, data=json.dumps(self.payload), stream=True, name="invoke", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(_refusal(response.status_code, response.headers.get("X-Amzn-ErrorType")))
                return
            body = b"".join(response.iter_content(chunk_size=None))
            streamed = response.headers.get("Lambda-Runtime-Function-Response-Mode") == "streaming"
            events = body.count(EVENT_MARK)
            if response.headers.get("X-Amz-Function-Error"):
                response.failure(f"function error: {body[:200]!r}")
            elif (
                streamed
                and response.headers.get("Content-Type", "").startswith("text/event-stream")
                and events != EVENTS
            ):
                response.failure(f"{events} of {EVENTS} streamed events arrived")
            else:
                response.success()

    @task(1)
    def dry_run(self) -> None:
        with self.client.post(
            INVOKE_PATH,
            data=b"{}",
            headers={"X-Amz-Invocation-Type": "DryRun"},
            name="invoke (DryRun)",
            catch_response=True,
        ) as response:
            if response.status_code == 204:
                response.success()
            else:
                response.failure(_refusal(response.status_code, response.headers.get("X-Amzn-ErrorType")))

    @task(1)
    def unknown_function(self) -> None:
        with self.client.post(
            "/2015-03-31/functions/no-such-function/invocations",
            data=b"{}",
            name="invoke (unknown function)",
            catch_response=True,
        ) as response:
            if response.status_code == 404 and response.headers.get("X-Amzn-ErrorType") == "ResourceNotFoundException":
                response.success()
            else:
                response.failure(f"expected 404 ResourceNotFoundException, got {response.status_code}")

    @task(2)
    def health(self) -> None:
        with self.client.get("/healthz", name="healthz", catch_response=True) as response:
            if response.status_code == 200 and response.json().get("status") == "ok":
                response.success()
            else:
                response.failure(f"healthz answered {response.status_code}")


def _refusal(status: int, error_type: str | None) -> str:
    if status == 429:
        return "throttled (429 TooManyRequestsException): every execution environment was busy"
    return f"{status} {error_type or ''}".strip()


class PythonStreamingFunction(_FunctionCaller):
    host = os.environ.get("PYTHON_FUNCTION_URL", "http://127.0.0.1:9000")


class NodeStreamingFunction(_FunctionCaller):
    host = os.environ.get("NODE_FUNCTION_URL", "http://127.0.0.1:9001")
