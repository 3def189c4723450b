"""The durable execution APIs (``/2025-12-01/...``) on the Invoke API listener: forwarded to the supervisor whole.

GetDurableExecution, GetDurableExecutionHistory, GetDurableExecutionState, CheckpointDurableExecution,
ListDurableExecutionsByFunction, StopDurableExecution and SendDurableExecutionCallbackSuccess / Failure / Heartbeat
are answered by the supervisor's durable execution service (``pyrie_durable``), which the runtime's SDK reaches
through ``AWS_ENDPOINT_URL_LAMBDA``, and boto3 and the AWS CLI through ``--endpoint-url``. The front end only carries
the request over the pipe as an ``ApiRequest`` and writes back the ``ApiResponse``: the method, the path as the
client sent it (still percent-encoded: an execution ARN holds ``/`` and ``:``, which the SDKs encode, and pywsgi's
``PATH_INFO`` would have decoded), the query, and the body.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import quote

from invoke_api.invoke import LIMITS
from invoke_api.request_target import request_target
from invoke_api.responses import StartResponse, service_error, service_error_json, service_unavailable, status_line
from invoke_api.supervisor_client import SupervisorClient, SupervisorUnavailable
from pyrie_core.lambda_errors import ServiceError
from pyrie_core.pipe.messages import ApiRequest, ApiResponse

__all__ = ["ANSWER_TIMEOUT_S", "PREFIX", "handle", "raw_path"]

log = logging.getLogger("pyrie.invoke_api")

PREFIX: Final = "/2025-12-01/"
# The service answers from memory (and one small local write): anything slower means the supervisor is stuck.
ANSWER_TIMEOUT_S: Final = 30.0
# Request headers the service may read; the rest stay here.
_FORWARDED_HEADERS: Final = {"CONTENT_TYPE": "Content-Type", "HTTP_X_AMZN_TRACE_ID": "X-Amzn-Trace-Id"}


def raw_path(environ: dict[str, Any]) -> str:
    """The request's path as the client sent it, still percent-encoded (gunicorn's ``RAW_URI``)."""
    if environ.get("RAW_URI"):
        return request_target(environ).partition("?")[0]
    return quote(environ.get("PATH_INFO", "/"), safe="/:$@!*'(),;=+&~")


def handle(client: SupervisorClient, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    body = environ["wsgi.input"].read(LIMITS.request_bytes + 1)
    if len(body) > LIMITS.request_bytes:
        message = f"Request must be smaller than {LIMITS.request_bytes} bytes"
        return service_error(
            start_response,
            413,
            ServiceError.REQUEST_TOO_LARGE,
            service_error_json(ServiceError.REQUEST_TOO_LARGE, message),
        )
    request = ApiRequest(
        method=environ.get("REQUEST_METHOD", "GET"),
        path=raw_path(environ),
        query=environ.get("QUERY_STRING", ""),
        headers={name: environ[key] for key, name in _FORWARDED_HEADERS.items() if environ.get(key)},
        body=body,
    )
    try:
        response = _exchange(client, request)
    except SupervisorUnavailable as exc:
        log.error("%s %s: %s", request.method, request.path, exc)
        return service_unavailable(start_response, "The emulator's supervisor is unavailable; try again.")
    start_response(status_line(response.status), list(response.headers.items()))
    return [response.body]


def _exchange(client: SupervisorClient, request: ApiRequest) -> ApiResponse:
    """Send ``request`` and read its answer."""
    conn = client.send(request)
    answer = conn.expect(ApiResponse, "an API request", ANSWER_TIMEOUT_S)
    client.release(conn)
    return answer
