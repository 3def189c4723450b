"""What the pipe hands its requests to, choosing the durable execution service only when it is wanted.

For a durable function this is the ``Desk`` (``supervisor.durable.desk``), and its runtime reaches the durable APIs
on a loopback listener of the supervisor's own (``open_durable_api``, ``supervisor.durable.api_listener``). For any
other function the pool takes every invoke, and the durable execution APIs, which then can only say that nothing is
found, load the service on their first call: a pyrie that never needs it never imports it (about 30 ms and 5 MiB at
start-up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pyrie_core.pipe.messages import ApiRequest, ApiResponse, Invoke, Status
from supervisor.config import Config
from supervisor.invocation import Invocation, ResponseSink

if TYPE_CHECKING:
    from pyrie_durable.store import Store
    from supervisor.durable.api_listener import DurableApiListener
    from supervisor.durable.desk import Desk, InvokePool

__all__ = ["FrontDesk", "front_desk", "open_durable_api"]


class FrontDesk(Protocol):
    def start(self) -> None: ...

    def close(self) -> None: ...

    def submit(self, request: Invoke, sink: ResponseSink) -> Invocation: ...

    def status(self) -> Status: ...

    def answer(self, request: ApiRequest) -> ApiResponse: ...


def open_durable_api(config: Config) -> tuple[DurableApiListener | None, Config]:
    """For a durable function, the loopback listener its runtime reaches the durable APIs on, bound now (before any
    runtime starts), and ``config`` with the runtime told where it is; ``(None, config)`` for any other function."""
    if config.durable is None:
        return None, config
    from supervisor.durable.api_listener import DurableApiListener, told_to_runtime  # noqa: PLC0415 - as below

    listener = DurableApiListener()
    return listener, told_to_runtime(config, listener)


def front_desk(
    pool: InvokePool, config: Config, store: Store | None = None, listener: DurableApiListener | None = None
) -> FrontDesk:
    """The desk for ``config``'s function; a durable one keeps its executions in ``store`` (an opened
    ``--durable-store``) or, without one, in memory, and serves its runtime on ``listener`` (``open_durable_api``)."""
    if config.durable is None:
        return _PoolDesk(pool, config)
    from supervisor.durable.desk import Desk  # noqa: PLC0415 - only a durable function needs the service

    return Desk(pool, config, store=store, listener=listener)


class _PoolDesk:
    def __init__(self, pool: InvokePool, config: Config) -> None:
        self._pool = pool
        self._config = config
        self._desk: Desk | None = None

    def start(self) -> None:
        return None

    def close(self) -> None:
        if self._desk is not None:
            self._desk.close()

    def submit(self, request: Invoke, sink: ResponseSink) -> Invocation:
        return self._pool.submit(request, sink)

    def status(self) -> Status:
        return self._pool.status()

    def answer(self, request: ApiRequest) -> ApiResponse:
        if self._desk is None:
            from supervisor.durable.desk import Desk  # noqa: PLC0415 - loaded on the first durable API call

            self._desk = Desk(self._pool, self._config)
        return self._desk.answer(request)
