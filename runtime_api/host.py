"""What the Runtime API needs from the execution environment it serves, as interfaces (the supervisor implements
them; this package never imports it).

The handlers see an environment as a ``RuntimeHost``: the function it runs, its limits, the runtime's state machine,
the invoke the runtime is working on (a ``RuntimeInvocation``), its extensions (an ``ExtensionRegistry`` of
``RegisteredExtension``) and its telemetry subscriptions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pyrie_core.limits import Limits
    from pyrie_core.machine import Machine
    from pyrie_core.pipe.messages import Invoke
    from runtime_api.extension_states import ExtensionState
    from runtime_api.registration import ExtensionEvent
    from runtime_api.runtime_states import RuntimeState
    from runtime_api.subscription import Subscription

__all__ = [
    "ExtensionRegistry",
    "FunctionIdentity",
    "RegisteredExtension",
    "RuntimeHost",
    "RuntimeInvocation",
    "TelemetrySubscriptions",
]


class FunctionIdentity(Protocol):
    """The function as the Runtime and Extensions APIs name it."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def handler(self) -> str | None: ...

    @property
    def arn(self) -> str: ...


class RuntimeInvocation(Protocol):
    """One invoke as the runtime sees it: the event it takes from ``/next``, and where its answer goes."""

    @property
    def request(self) -> Invoke: ...

    @property
    def request_id(self) -> str: ...

    @property
    def trace_id(self) -> str: ...

    @property
    def deadline_ms(self) -> int: ...

    def respond(self, content_type: str | None, body: bytes) -> None:
        """A whole buffered response."""
        ...

    def start_stream(self, content_type: str | None) -> None: ...

    def write(self, data: bytes) -> None:
        """One piece of a streamed response, handed on as it came."""
        ...

    def succeed(self) -> None:
        """The streamed response ended normally."""
        ...

    def fail(self, error_type: str, body: bytes) -> None:
        """A function error, with the runtime's error body."""
        ...

    def fail_platform(self, error_type: str, message: str) -> None:
        """A failure Lambda itself reports (an invalid response mode), with Lambda's JSON body."""
        ...


class RegisteredExtension(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def machine(self) -> Machine[ExtensionState]: ...

    def next_event(self) -> ExtensionEvent:
        """Wait (in ``/event/next``, the extension Ready) for its next event; it is then Running."""
        ...


class ExtensionRegistry(Protocol):
    @property
    def enabled(self) -> bool:
        """Whether the Extensions API is on (its routes answer 404 when it is not)."""
        ...

    def register(self, name: str, events: list[str], with_account: bool) -> tuple[RegisteredExtension, bytes]:
        """Register ``name``: the extension and the response body; ``ExtensionError`` when refused."""
        ...

    def find(self, ident: str) -> RegisteredExtension | None: ...

    def became_ready(self) -> None:
        """An extension has just called ``/event/next``."""
        ...


class TelemetrySubscriptions(Protocol):
    def subscribe(self, name: str, subscription: Subscription) -> None:
        """Subscribe extension ``name``; ``SubscriptionError`` when subscriptions are closed."""
        ...


class RuntimeHost(Protocol):
    @property
    def function(self) -> FunctionIdentity: ...

    @property
    def limits(self) -> Limits: ...

    @property
    def extensions(self) -> ExtensionRegistry:
        """The environment's extensions (Extensions API)."""
        ...

    @property
    def telemetry(self) -> TelemetrySubscriptions:
        """Its Telemetry and Logs API subscriptions."""
        ...

    @property
    def runtime(self) -> Machine[RuntimeState]:
        """The runtime's state machine; the Runtime API's handlers move it, and say what they did through the
        methods below, which the environment acts on after the handler's transition has returned."""
        ...

    @property
    def current(self) -> RuntimeInvocation | None:
        """The invocation the runtime has been given and not yet finished with."""
        ...

    def wait_for_invocation(self) -> RuntimeInvocation:
        """The runtime waits in ``/next`` (its state is Ready): block until an invocation is delivered to it (its
        state is then Running) and return it; ``ConnectionClosed`` if the environment goes away meanwhile."""
        ...

    def response_started(self) -> None:
        """The runtime began its ``/response`` or ``/error`` for the current invocation."""
        ...

    def stream_broken(self, invocation: RuntimeInvocation) -> None:
        """The runtime's streamed response for ``invocation`` ended without its end (the connection broke)."""
        ...

    def init_failed(self, error_type: str, body: bytes) -> None:
        """The runtime reported an init error (``/runtime/init/error``)."""
        ...

    def extension_failed(self, extension: RegisteredExtension, fatal_type: str, error_type: str) -> None:
        """An extension reported ``/extension/init/error`` or ``/extension/exit/error``."""
        ...
