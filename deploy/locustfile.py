"""Load for pyrie: streamed invokes, dry runs, a wrong function name and health checks, as a Lambda caller makes them.

In the compose stack (deploy/docker-compose.yml) it runs by itself against both functions. Against pyries on this
machine (examples/python-sse on 9000, examples/node-sse on 9001, started as the README shows):

    locust -f deploy/locustfile.py --headless --users 4 --spawn-rate 2 --run-time 30s
    locust -f deploy/locustfile.py --headless -u 2 -r 2 -t 30s PythonStreamingFunction    # one of the two

PYTHON_FUNCTION_URL and NODE_FUNCTION_URL name the pyries (default http://127.0.0.1:9000 and :9001). Point them only
at pyries you run: this machine or the compose network.

A streamed invoke counts as a success when its events arrive complete. A 429 (TooManyRequestsException: every
execution environment is busy, as Lambda throttles) counts as a failure named for what it is.
"""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar

from locust import HttpUser, between, task

INVOKE_PATH = "/2015-03-31/functions/function/invocations"
EVENTS = 5  # events per streamed invoke
EVENT_MARK = b"event: tick"


class _StreamingFunction(HttpUser):
    """A caller of one function that streams server-sent ``tick`` events (both examples take count and interval_ms)."""

    abstract = True
    wait_time = between(0.1, 0.5)
    payload: ClassVar[dict[str, Any]] = {"count": EVENTS, "interval_ms": 20}

    @task(6)
    def streamed_invoke(self) -> None:
        with self.client.post(
            INVOKE_PATH,
            data=json.dumps(self.payload),
            stream=True,
            name="invoke (streamed)",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(_refusal(response.status_code, response.headers.get("X-Amzn-ErrorType")))
                return
            body = b"".join(response.iter_content(chunk_size=None))
            if response.headers.get("Lambda-Runtime-Function-Response-Mode") != "streaming":
                response.failure("the response was not streamed")
            elif body.count(EVENT_MARK) != EVENTS:
                response.failure(f"{body.count(EVENT_MARK)} of {EVENTS} events arrived")
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


class PythonStreamingFunction(_StreamingFunction):
    host = os.environ.get("PYTHON_FUNCTION_URL", "http://127.0.0.1:9000")


class NodeStreamingFunction(_StreamingFunction):
    host = os.environ.get("NODE_FUNCTION_URL", "http://127.0.0.1:9001")
