"""pyrie's durable execution service: what Lambda does for durable functions (API version 2025-12-01), locally.

A durable function's handler, wrapped by the Durable Execution SDK (``aws-durable-execution-sdk-python``,
``@aws/durable-execution-sdk-js``), is invoked with ``{"DurableExecutionArn", "CheckpointToken",
"InitialExecutionState": {"Operations", "NextMarker"}, "UpdatedOperationIds"}``, checkpoints its steps, waits and
callbacks with ``CheckpointDurableExecution``, reads further state with ``GetDurableExecutionState``, and answers
``{"Status": "SUCCEEDED" | "FAILED" | "PENDING", "Result", "Error"}``. This package is the other side: it keeps the
executions, applies the checkpoints, invokes the handler again when a wait, a retry or a callback is due, enforces
the execution timeout, and serves the durable REST APIs to the SDKs, boto3 and the AWS CLI.

Layout, from the pure core outwards:

- ``states``          the lifecycles as explicit tables (execution status, the engine's driver, operation statuses)
- ``model``           the data: operation updates, operations, executions, durable functions
- ``durable_errors``  the API's error shapes
- ``codec``           wire shapes in and out, checked against botocore's model; store records
- ``tokens``          checkpoint tokens, callback ids, pagination markers
- ``history``         the execution's history events
- ``checkpoint``      what the service does to an execution, pure (no clock, no I/O)
- ``views``           the API's answers about executions, and a sync Invoke's final answer
- ``store``           in memory, or one SQLite file (``--durable-store PATH``) that one pyrie at a time may open
- ``engine``          ``DurableEngine``: drives executions in a gevent process through an injected ``Invoker``
- ``rest``            ``DurableApi``: the REST operations as request in, response out, no server

Why pyrie writes this service rather than embedding ``aws-durable-execution-sdk-python-testing``
-----------------------------------------------------------------------------------------------

The testing library (AWS, Apache-2.0) was read closely and is the reference for the service's semantics: its
checkpoint processor's rules (the delta of operations the handler has not seen, a token per invocation and per
checkpoint, READY steps, due waits and retries completed at checkpoint time, callback ids naming their execution,
"PENDING with no pending operations" refused, invocations retried with a bounded budget) are followed here and
proven against the real SDK. Its engine was not reused, because:

- It is built on threads: a scheduler thread running its own asyncio loop, daemon thread pools for invocations,
  a worker thread per execution, ``threading.Lock`` throughout. pyrie's supervisor is a single gevent loop that is
  not monkey-patched and must never block on a peer; every call between the two would need marshalling across
  threads and hubs, and its blocking waits (``future.result()``) would sit inside the supervisor.
- Its ``Invoker`` is an HTTP Lambda client (boto3) or an in-process call. pyrie must run the handler in an
  environment of its own pool, in a greenlet, with its throttling, timeouts and logs.
- Its data model is the SDK's own classes, so the supervisor would import the SDK and boto3, and pyrie would be
  coupled to the private internals of a 1.x library that has shipped ten releases in months (the SDK fifteen).
- Its REST layer needs correcting anyway (the list route reads ``StatusFilter`` where boto3 sends ``Statuses``, its
  404 has no ``X-Amzn-ErrorType``), and it serves from its own threaded HTTP server.

The part pyrie needs is small, pure and testable: the checkpoint rules and the shapes (checked here against
botocore's model), a greenlet-per-invocation driver with one gevent timer per execution, and a store. Written this
way it fits the supervisor's rules (no threads, every wait bounded, small local writes) and answers with Lambda's
shapes.

How pyrie uses it (``supervisor/durable/``): the desk hands the pipe's invokes of a durable function to
``DurableEngine.start`` and answers a synchronous one from ``engine.wait`` and ``views.invoke_answer`` in a greenlet
of its own (no environment is held while an execution waits; at most 15 minutes, as Lambda's synchronous invokes);
the ``Invoker`` is an ordinary RequestResponse invoke of pyrie's pool, so every replay has its environment, timeout,
logs, extensions and telemetry, and a full pool answers THROTTLED, retried without counting; the front end forwards
every ``/2025-12-01/`` request (its raw path) as a pipe ``ApiRequest`` to ``DurableApi.handle``.

What the front end and the supervisor use:

- ``DurableEngine(invoker, store, config=..., clock=...)``, ``register(DurableFunction)``, ``recover()``,
  ``start(function_name, payload, name=..., trace_id=...)`` and ``wait(arn, timeout)`` for Invoke,
  ``close()``; the supervisor implements ``Invoker.invoke(DurableInvocation) -> InvocationOutcome``.
- ``DurableApi(engine).handle(RestRequest) -> RestResponse`` for every path ``DurableApi.handles``.
- ``views.invoke_answer(execution)`` for what a RequestResponse Invoke answers once the execution closed.
"""

from pyrie_durable.durable_errors import DurableServiceError, ErrorCode
from pyrie_durable.engine import DurableEngine, DurableInvocation, EngineConfig, InvocationOutcome, Invoker, OutcomeKind
from pyrie_durable.model import DurableFunction, Execution
from pyrie_durable.rest import DurableApi, RestRequest, RestResponse
from pyrie_durable.store import MemoryStore, SqliteStore, Store, StoreInUse
from pyrie_durable.views import InvokeAnswer, invoke_answer

__all__ = [
    "DurableApi",
    "DurableEngine",
    "DurableFunction",
    "DurableInvocation",
    "DurableServiceError",
    "EngineConfig",
    "ErrorCode",
    "Execution",
    "InvocationOutcome",
    "InvokeAnswer",
    "Invoker",
    "MemoryStore",
    "OutcomeKind",
    "RestRequest",
    "RestResponse",
    "SqliteStore",
    "Store",
    "StoreInUse",
    "invoke_answer",
]
