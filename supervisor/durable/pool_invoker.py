"""The durable execution service's ``Invoker`` over pyrie's pool: each replay is an ordinary invoke of the function.

The engine calls ``invoke`` in a greenlet of its own, one at a time per execution. The invoke goes to the pool as a
RequestResponse Invoke would (an environment of the pool, its throttling, timeout, logs with their own START, END
and REPORT, extensions and telemetry), its response collected by a ``CollectingSink``, and the greenlet waits for
its end with a deadline: the function's timeout plus its init timeout plus a margin, never longer. Nothing here
holds the supervisor's loop.

A pool that is full throttles the invoke (429): the engine is told THROTTLED and invokes again a moment later,
without counting it as a failure, so a durable execution waits for an environment instead of failing.
"""

from __future__ import annotations

from typing import Final, Protocol

import gevent.event

from pyrie_core.lambda_errors import FunctionError, function_error_body, response_too_large_body
from pyrie_core.limits import Limits
from pyrie_core.pipe.messages import Chunk, End, Invoke, Message, Outcome
from pyrie_durable import DurableInvocation, InvocationOutcome, OutcomeKind
from supervisor.invocation import Invocation, ResponseSink

__all__ = ["MAX_RESPONSE_BYTES", "CollectingSink", "InvokeSubmitter", "PoolInvoker"]

# A durable handler answers with a small JSON envelope (large results are checkpointed); Lambda's buffered limit.
MAX_RESPONSE_BYTES: Final = Limits().response_bytes
# Beyond the function's own timeout and init timeout, how long the invoker waits before it gives up on the pool.
MARGIN_S: Final = 30.0
THROTTLED_STATUS: Final = 429


class InvokeSubmitter(Protocol):
    def submit(self, request: Invoke, sink: ResponseSink) -> Invocation: ...


class CollectingSink:
    """Keeps an invoke's response body, up to ``limit`` bytes; never waits."""

    def __init__(self, limit: int = MAX_RESPONSE_BYTES) -> None:
        self._limit = limit
        self._parts: list[bytes] = []
        self.size = 0
        self.overflowed = False

    def send(self, *messages: Message) -> None:
        for message in messages:
            if isinstance(message, Chunk):
                self.size += len(message.data)
                if self.size > self._limit:
                    self.overflowed = True
                    self._parts.clear()
                elif not self.overflowed:
                    self._parts.append(message.data)

    def wait_for_room(self, abort: gevent.event.Event) -> None:
        return None

    @property
    def body(self) -> bytes:
        return b"".join(self._parts)


class PoolInvoker:
    def __init__(self, pool: InvokeSubmitter, wait_s: float) -> None:
        """``wait_s``: the function's timeout plus its init timeout; the invoker waits that plus ``MARGIN_S``."""
        self._pool = pool
        self._wait_s = wait_s + MARGIN_S

    def invoke(self, invocation: DurableInvocation) -> InvocationOutcome:
        sink = CollectingSink()
        request = Invoke(
            function=invocation.function_name,
            payload=invocation.payload,
            trace_id=invocation.trace_id,
            tenant_id=invocation.tenant_id,
        )
        running = self._pool.submit(request, sink)
        if not running.finished.wait(self._wait_s) or running.outcome is None:
            message = f"RequestId: {running.request_id} Error: the invocation did not end within {self._wait_s:g} s"
            return _function_error(
                FunctionError.TIMEOUT, function_error_body(FunctionError.TIMEOUT, message), running.request_id
            )
        return outcome_of(running.outcome, sink)


def outcome_of(end: End, sink: CollectingSink) -> InvocationOutcome:
    """How an invoke ended, as the engine takes it."""
    if end.outcome is Outcome.OK:
        if sink.overflowed:
            body = response_too_large_body(MAX_RESPONSE_BYTES)  # as the pool answers an oversize buffered response
            return _function_error(FunctionError.RESPONSE_TOO_LARGE, body, end.request_id)
        return InvocationOutcome(OutcomeKind.RESPONSE, sink.body, end.request_id)
    if end.outcome is Outcome.FUNCTION_ERROR:
        return InvocationOutcome(OutcomeKind.FUNCTION_ERROR, end.body, end.request_id, end.error_type)
    if end.status == THROTTLED_STATUS:
        return InvocationOutcome(OutcomeKind.THROTTLED, end.body, end.request_id, end.error_type)
    return InvocationOutcome(OutcomeKind.SERVICE_ERROR, end.body, end.request_id, end.error_type)


def _function_error(error_type: FunctionError, body: bytes, request_id: str) -> InvocationOutcome:
    return InvocationOutcome(OutcomeKind.FUNCTION_ERROR, body, request_id, str(error_type))
