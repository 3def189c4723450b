"""``GET /healthz``: whether the supervisor answers, and the state of each execution environment.

For container health checks and readiness/liveness probes. 200 with the supervisor's ``Status`` as JSON while it
answers; 503 ``ServiceException`` within a few seconds when it does not (its connect and reply have short timeouts).
It neither counts as an invoke nor starts an environment.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from invoke_api.responses import StartResponse, json_response, service_unavailable
from invoke_api.supervisor_client import SupervisorClient, SupervisorUnavailable
from pyrie_core.pipe.messages import EnvironmentStatus

__all__ = ["handle"]

log = logging.getLogger("pyrie.invoke_api")


def handle(client: SupervisorClient, start_response: StartResponse) -> Iterable[bytes]:
    try:
        status = client.status()
    except SupervisorUnavailable as exc:
        log.warning("health check: %s", exc)
        return service_unavailable(start_response, f"The emulator's supervisor is unavailable: {exc}")
    body: dict[str, Any] = {
        "status": "ok",
        "function": status.function,
        "version": status.version,
        "maxConcurrency": status.max_concurrency,
        "environments": [_environment(env) for env in status.environments],
    }
    return json_response(start_response, 200, body)


def _environment(env: EnvironmentStatus) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "name": env.name,
        "state": env.state,
        "runtimeState": env.runtime_state,
        "invokesInFlight": env.in_flight,
    }
    if env.tenant is not None:
        shown["tenant"] = env.tenant
    return shown
