"""Test harness for the durable execution service: the real SDK against ``pyrie_durable`` without the rest of pyrie.

- ``WorkerInvoker`` is an ``Invoker`` that runs the handler in ``tests/runtimes/durable_worker.py`` (one warm
  process, restarted if it dies), so the SDK runs for real and reaches the service over HTTP through
  ``AWS_ENDPOINT_URL_LAMBDA``, as it will under pyrie.
- ``serve`` puts a ``DurableApi`` behind a minimal gevent HTTP server that hands it the request as received.
- ``in_thread`` runs a blocking call (boto3) off the gevent loop so the server keeps answering meanwhile.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import gevent
import gevent.subprocess
from gevent.pywsgi import WSGIHandler, WSGIServer

from pyrie_durable import DurableApi, DurableInvocation, InvocationOutcome, OutcomeKind, RestRequest

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "tests" / "runtimes" / "durable_worker.py"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}

T = TypeVar("T")


def in_thread(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking call in gevent's thread pool: the loop (and the server on it) keeps running."""
    return gevent.get_hub().threadpool.apply(call, args, kwargs)


class WorkerInvoker:
    """Runs ``handler`` ("module:function") in a warm worker process, one invocation at a time."""

    def __init__(self, handler: str, env: Mapping[str, str], *, timeout: float = 60.0) -> None:
        self.handler = handler
        self.env = {**os.environ, **CREDENTIALS, "PYTHONPATH": str(ROOT), **env}
        self.timeout = timeout
        self.invocations: list[DurableInvocation] = []
        self._process: gevent.subprocess.Popen | None = None

    def _worker(self) -> gevent.subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            self._process = gevent.subprocess.Popen(
                [sys.executable, str(WORKER)],
                stdin=gevent.subprocess.PIPE,
                stdout=gevent.subprocess.PIPE,
                env=self.env,
                cwd=str(ROOT),
            )
        return self._process

    def invoke(self, invocation: DurableInvocation) -> InvocationOutcome:
        self.invocations.append(invocation)
        request_id = str(uuid.uuid4())
        worker = self._worker()
        request = {
            "handler": self.handler,
            "payload": invocation.payload.decode(),
            "request_id": request_id,
            "timeout": self.timeout,
        }
        worker.stdin.write((json.dumps(request) + "\n").encode())
        worker.stdin.flush()
        with gevent.Timeout(self.timeout, False):
            line = worker.stdout.readline()
            if line:
                answer = json.loads(line)
                if "body" in answer:
                    return InvocationOutcome(OutcomeKind.RESPONSE, answer["body"].encode(), request_id)
                return InvocationOutcome(
                    OutcomeKind.FUNCTION_ERROR, json.dumps(answer).encode(), request_id, answer["errorType"]
                )
        self.close()
        error = {"errorType": "Runtime.ExitError", "errorMessage": "the worker died or did not answer"}
        return InvocationOutcome(
            OutcomeKind.FUNCTION_ERROR, json.dumps(error).encode(), request_id, "Runtime.ExitError"
        )

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(invocation.payload) for invocation in self.invocations]

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None


class _RawPathHandler(WSGIHandler):
    def get_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environ()
        environ["RAW_PATH"] = self.path.split("?", 1)[0]
        return environ


def _wsgi(api: DurableApi) -> Callable[..., Any]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = RestRequest(
            method=environ["REQUEST_METHOD"],
            path=environ["RAW_PATH"],
            query=environ.get("QUERY_STRING", ""),
            body=environ["wsgi.input"].read(length) if length else b"",
        )
        if not DurableApi.handles(request.path):
            start_response("404 Not Found", [("Content-Length", "0")])
            return [b""]
        response = api.handle(request)
        start_response(f"{response.status} X", response.headers)
        return [response.body]

    return app


@contextmanager
def serve(api: DurableApi) -> Iterator[str]:
    """Serve ``api`` on a free loopback port; its URL."""
    server = WSGIServer(("127.0.0.1", 0), _wsgi(api), handler_class=_RawPathHandler, log=None)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.stop(timeout=1)
