"""What the Runtime API needs from the execution environment it serves (implemented by supervisor.environment)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from runtime_api.states import RuntimeState
    from supervisor.config import FunctionConfig, Limits
    from supervisor.invocation import Invocation
    from supervisor.machine import Machine

__all__ = ["RuntimeHost"]


class RuntimeHost(Protocol):
    @property
    def function(self) -> FunctionConfig: ...

    @property
    def limits(self) -> Limits: ...

    @property
    def runtime(self) -> Machine[RuntimeState]:
        """The runtime's state machine; the Runtime API's handlers move it, the environment observes it."""
        ...

    @property
    def current(self) -> Invocation | None:
        """The invocation the runtime has been given and not yet finished with."""
        ...

    def wait_for_invocation(self) -> Invocation:
        """Block until an invocation is delivered to the runtime (its state is then Running) and return it."""
        ...

    def stream_broken(self, invocation: Invocation) -> None:
        """The runtime's streamed response for ``invocation`` ended without its end (the connection broke)."""
        ...

    def init_failed(self, error_type: str, body: bytes) -> None:
        """The runtime reported an init error (``/runtime/init/error``)."""
        ...
