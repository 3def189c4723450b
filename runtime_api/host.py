"""What the Runtime API needs from the execution environment it serves (implemented by supervisor.environment)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from runtime_api.states import RuntimeState
    from supervisor.config import FunctionConfig, Limits
    from supervisor.extensions import Extension, ExtensionSet
    from supervisor.invocation import Invocation
    from supervisor.machine import Machine
    from supervisor.telemetry import TelemetryHub

__all__ = ["RuntimeHost"]


class RuntimeHost(Protocol):
    extensions: ExtensionSet  # the environment's extensions (Extensions API)
    telemetry: TelemetryHub  # its Telemetry and Logs API subscriptions

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

    def extension_failed(self, extension: Extension, fatal_type: str, error_type: str) -> None:
        """An extension reported ``/extension/init/error`` or ``/extension/exit/error``."""
        ...
