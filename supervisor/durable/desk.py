"""The desk: what the pipe hands its requests to. Invokes of a durable function start durable executions; every
other invoke goes to the pool unchanged; the durable execution APIs are answered by the service.

A durable function (``AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT``): an Invoke starts an execution, named by the caller's
``X-Amz-Durable-Execution-Name`` or by a generated id (a name already used with the same payload re-attaches to that
execution, with another payload it is refused with ``DurableExecutionAlreadyStartedException``), and the engine
drives it through the pool (``supervisor.durable.pool_invoker``). Its answer carries ``X-Amz-Durable-Execution-Arn``:

- Event: 202 at once.
- RequestResponse (and InvokeWithResponseStream, Function URLs): the answer waits for the execution to close,
  in a greenlet of its own and holding no environment (each replay takes one only while it runs): SUCCEEDED answers
  200 with its result; FAILED, TIMED_OUT and STOPPED answer as a function error (``X-Amz-Function-Error:
  Unhandled``, ``{"errorType", "errorMessage"}``). A synchronous invoke waits at most 15 minutes, as Lambda's: an
  execution still running then goes on, and the caller gets a ``Sandbox.Timedout`` function error naming it.
- DryRun, and an invoke Lambda refuses up front (another function, a wrong qualifier, no tenant for a function with
  tenant isolation), go to the pool as always.

With tenant isolation every invocation of an execution runs as the tenant of the Invoke that started it, in that
tenant's environments; the same execution name used by another tenant is refused as another payload is.

A function that is not durable has no executions: the durable APIs answer it as Lambda would (404
``ResourceNotFoundException``), and its invokes are the pool's alone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Final, Protocol

import gevent
import gevent.pool

from pyrie_core.ids import new_request_id
from pyrie_core.lambda_errors import FunctionError, ServiceError, function_error_body
from pyrie_core.pipe.messages import ApiRequest, ApiResponse, Invoke, Status
from pyrie_durable import (
    DurableApi,
    DurableEngine,
    DurableFunction,
    DurableServiceError,
    EngineConfig,
    ErrorCode,
    Execution,
    MemoryStore,
    RestRequest,
    RestResponse,
    SqliteStore,
    Store,
    invoke_answer,
)
from supervisor.config import Config
from supervisor.durable.api_listener import DurableApiListener
from supervisor.durable.pool_invoker import MARGIN_S, PoolInvoker
from supervisor.invocation import Invocation, ResponseSink
from supervisor.pool.admission import refusal

__all__ = ["ARN_HEADER", "SYNC_LIMIT_S", "Desk", "InvokePool"]

log = logging.getLogger(__name__)

ARN_HEADER: Final = "X-Amz-Durable-Execution-Arn"
# A synchronous invoke waits for its execution at most this long (Lambda's 15 minutes).
SYNC_LIMIT_S: Final = 900.0
# Past the execution's deadline, how long a synchronous invoke waits for the engine to close it TIMED_OUT.
CLOSE_GRACE_S: Final = 5.0
# A durable invoke throttled by a full pool is tried again this soon (not counted as a failure).
THROTTLE_RETRY_S: Final = 0.5


class InvokePool(Protocol):
    def submit(self, request: Invoke, sink: ResponseSink) -> Invocation: ...

    def status(self) -> Status: ...


class Desk:
    def __init__(
        self,
        pool: InvokePool,
        config: Config,
        *,
        store: Store | None = None,
        listener: DurableApiListener | None = None,
        sync_limit_s: float = SYNC_LIMIT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``listener``: where the runtime's SDK reaches the APIs (``supervisor.durable.api_listener``), served from
        ``start`` to ``close``."""
        self._pool = pool
        self._listener = listener
        self._function = config.function
        self._tenant_isolation = config.pool.tenant_isolation
        self._durable = config.durable
        self._sync_limit_s = sync_limit_s
        self._clock = clock
        function = config.function
        wait_s = function.timeout_s + config.init_timeout_s
        if store is None:
            path = self._durable.store_path if self._durable is not None else None
            store = SqliteStore(path) if path else MemoryStore()
        self.engine = DurableEngine(
            PoolInvoker(pool, wait_s),
            store,
            config=EngineConfig(invocation_timeout=wait_s + 2 * MARGIN_S, throttle_backoff=THROTTLE_RETRY_S),
            clock=clock,
        )
        if self._durable is not None:
            self.engine.register(
                DurableFunction(
                    name=function.name,
                    arn=function.arn,
                    execution_timeout=self._durable.execution_timeout_s,
                    retention_days=self._durable.retention_days,
                    version=function.version,
                )
            )
        self._api = DurableApi(self.engine, request_id=new_request_id)
        self._waiting: dict[Invocation, gevent.Greenlet] = {}
        self._accepting = True

    def start(self) -> None:
        """Serve the runtime's listener; resume the executions the store kept (waits, retries and callbacks re-armed,
        interrupted ones invoked)."""
        if self._listener is not None:
            self._listener.start(self.handle)
            log.info("durable execution APIs for the function's runtime on %s", self._listener.url)
        if self._durable is None:
            return
        loaded = self.engine.recover()
        if loaded and self._durable.store_path:
            running = sum(1 for execution in self.engine.executions_of(self._function.name) if execution.running)
            log.info(
                "durable store %s: %d executions, %d of them running and resumed",
                self._durable.store_path,
                loaded,
                running,
            )

    def close(self) -> None:
        """Stop driving executions (what the store keeps stays as last saved) and answer the waiting callers."""
        self._accepting = False
        if self._listener is not None:
            self._listener.stop()
        for invocation in list(self._waiting):
            invocation.reject(503, ServiceError.SERVICE, "pyrie is shutting down; the durable execution goes on")
        for greenlet in list(self._waiting.values()):
            greenlet.kill(block=False)
        self.engine.close()

    # -- the pipe's InvokeTaker ---------------------------------------------------------------------------------

    def status(self) -> Status:
        return self._pool.status()

    def submit(self, request: Invoke, sink: ResponseSink) -> Invocation:
        up_front = refusal(request, self._function, self._tenant_isolation)
        if self._durable is None or request.invocation_type == "DryRun" or up_front is not None:
            return self._pool.submit(request, sink)  # which refuses it, or runs it as any other
        invocation = Invocation(request, sink, self._function.version)
        if not self._accepting:  # never run a durable handler without its execution
            invocation.reject(503, ServiceError.SERVICE, "pyrie is shutting down; no durable execution starts")
            return invocation
        try:
            execution, new = self.engine.start(
                self._function.name,
                request.payload,
                name=request.durable_execution_name,
                trace_id=request.trace_id,
                tenant_id=request.tenant_id,
            )
        except DurableServiceError as refused:
            invocation.reject(refused.status, str(refused.code), refused.message)
            return invocation
        log.debug("%s durable execution %s", "started" if new else "re-attached to", execution.arn)
        headers = {ARN_HEADER: execution.arn}
        if request.invocation_type == "Event":
            invocation.acknowledge(202, headers)
        else:
            greenlet = gevent.spawn(self._answer_when_closed, invocation, execution, headers)
            self._waiting[invocation] = greenlet
            greenlet.link(lambda _: self._waiting.pop(invocation, None))
        return invocation

    def answer(self, request: ApiRequest) -> ApiResponse:
        """A durable API request that came through the front end (the pipe's ``ApiRequest``)."""
        response = self.handle(RestRequest(request.method, request.path, request.query, request.body, request.headers))
        return ApiResponse(response.status, dict(response.headers), response.body)

    def handle(self, request: RestRequest) -> RestResponse:
        """A durable API request, from the front end or from the runtime's SDK (``supervisor.durable.api_listener``)."""
        if not self._accepting:
            refused = DurableServiceError(ErrorCode.SERVICE, "pyrie is shutting down")
            body = json.dumps(refused.body(), separators=(",", ":")).encode()
            headers = [("Content-Type", "application/json"), ("X-Amzn-ErrorType", str(refused.code))]
            return RestResponse(503, headers, body)
        return self._api.handle(request)

    # -- a synchronous invoke's answer --------------------------------------------------------------------------

    def _answer_when_closed(self, invocation: Invocation, execution: Execution, headers: dict[str, str]) -> None:
        remaining = max(0.0, execution.deadline - self._clock()) + CLOSE_GRACE_S
        limit = min(self._sync_limit_s, remaining)
        # Forgotten (deleted) meanwhile, the execution object still says how it ended.
        with contextlib.suppress(DurableServiceError):
            self.engine.wait(execution.arn, limit)
        if execution.running:
            message = (
                f"The durable execution {execution.arn} is still running after {limit:.2f} seconds, the most a "
                "synchronous invoke waits; it goes on (GetDurableExecution tells how it ends)."
            )
            invocation.fail(FunctionError.TIMEOUT, function_error_body(FunctionError.TIMEOUT, message), headers)
            return
        answer = invoke_answer(execution)
        if answer.function_error is None:
            invocation.respond("application/json", answer.body, headers)
            return
        error_type = json.loads(answer.body).get("errorType") or "Unhandled"
        invocation.fail(str(error_type), answer.body, headers)
