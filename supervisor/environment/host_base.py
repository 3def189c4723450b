"""What every model of environment shows its Runtime API alike: the function, its limits, its extensions and
telemetry, the runtime's state machine, the server itself, and the facts the handlers report, passed on to the
environment (``runtime_api.host.RuntimeHost``). ``RuntimeSide`` (one invoke at a time) and ``WorkerLanes`` (several
at once) add how ``/next`` and the answers are matched to invokes."""

from __future__ import annotations

from typing import Protocol

from pyrie_core.address import Address
from pyrie_core.limits import Limits
from pyrie_core.machine import Machine
from runtime_api.host import RegisteredExtension, RuntimeInvocation
from runtime_api.runtime_api_server import RuntimeApiServer
from runtime_api.runtime_states import RuntimeState, runtime_machine
from supervisor.config import FunctionConfig
from supervisor.environment.extension_set import ExtensionSet
from supervisor.observe.telemetry_hub import TelemetryHub

__all__ = ["HostBase", "HostEvents"]


class HostEvents(Protocol):
    """What every environment is told by its Runtime API."""

    @property
    def closing(self) -> bool:
        """The environment is being torn down: a runtime waiting in ``/next`` gets nothing more."""
        ...

    def runtime_ready(self) -> None:
        """The runtime waits in ``/next``: its init, or its last invoke, is done."""
        ...

    def response_started(self, invocation: RuntimeInvocation) -> None: ...

    def stream_broken(self, invocation: RuntimeInvocation) -> None: ...

    def init_failed(self, error_type: str, body: bytes) -> None: ...

    def extension_failed(self, extension: RegisteredExtension, fatal_type: str, error_type: str) -> None: ...


class HostBase:
    def __init__(
        self,
        function: FunctionConfig,
        limits: Limits,
        extensions: ExtensionSet,
        telemetry: TelemetryHub,
        events: HostEvents,
    ) -> None:
        self._function = function
        self._limits = limits
        self._extensions = extensions
        self._telemetry = telemetry
        self._base_events = events
        self._runtime: Machine[RuntimeState] = runtime_machine()
        self._server: RuntimeApiServer | None = None

    # -- what the handlers read -----------------------------------------------------------------------------------

    @property
    def function(self) -> FunctionConfig:
        return self._function

    @property
    def limits(self) -> Limits:
        return self._limits

    @property
    def extensions(self) -> ExtensionSet:
        return self._extensions

    @property
    def telemetry(self) -> TelemetryHub:
        return self._telemetry

    @property
    def runtime(self) -> Machine[RuntimeState]:
        return self._runtime

    # -- serving --------------------------------------------------------------------------------------------------

    def serve(self, address: Address) -> Address:
        """Listen for the Runtime API on ``address``; ``OSError`` if it is taken. Returns the address bound."""
        server = RuntimeApiServer(address, self)  # type: ignore[arg-type]  # a subclass completes the RuntimeHost
        bound = server.start()
        self._server = server
        return bound

    def stop_serving(self) -> None:
        if self._server is not None:
            self._server.stop()

    # -- what the handlers report ---------------------------------------------------------------------------------

    def response_started(self, invocation: RuntimeInvocation) -> None:
        self._base_events.response_started(invocation)

    def stream_broken(self, invocation: RuntimeInvocation) -> None:
        self._base_events.stream_broken(invocation)

    def init_failed(self, error_type: str, body: bytes) -> None:
        self._base_events.init_failed(error_type, body)

    def extension_failed(self, extension: RegisteredExtension, fatal_type: str, error_type: str) -> None:
        self._base_events.extension_failed(extension, fatal_type, error_type)
