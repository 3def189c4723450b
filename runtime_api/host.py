"""What the Runtime API needs from the execution environment it serves, as interfaces (the supervisor implements
them; this package never imports it).

The handlers see an environment as a ``RuntimeHost``: the function it runs, its limits, the runtime's state machine,
the invokes the runtime is working on (each a ``RuntimeInvocation`` on its ``Lane``), its extensions (an
``ExtensionRegistry`` of ``RegisteredExtension``), its telemetry subscriptions, and, with init caching (SnapStart),
its ``SnapStart`` side: the restore calls and the container credentials endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from pyrie_core.machine import InvalidTransition, Machine
from runtime_api.runtime_states import RuntimeState

if TYPE_CHECKING:
    from pyrie_core.limits import Limits
    from pyrie_core.pipe.messages import Invoke
    from runtime_api.extension_states import ExtensionState
    from runtime_api.registration import ExtensionEvent
    from runtime_api.subscription import Subscription

__all__ = [
    "ContainerCredentials",
    "ExtensionRegistry",
    "FunctionIdentity",
    "Lane",
    "RegisteredExtension",
    "RuntimeHost",
    "RuntimeInvocation",
    "RuntimeRefusal",
    "SnapStart",
    "TelemetrySubscriptions",
]


class FunctionIdentity(Protocol):
    """The function as the Runtime API names it (in ``Lambda-Runtime-Invoked-Function-Arn``)."""

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


@dataclass(frozen=True, slots=True)
class ContainerCredentials:
    """What the container credentials endpoint hands the function (``AWS_CONTAINER_CREDENTIALS_FULL_URI``)."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: float  # epoch seconds


class SnapStart(Protocol):
    """The environment's SnapStart side (init caching): the runtime's restore calls and the credentials endpoint."""

    def restore_next(self) -> None:
        """``/restore/next``, the runtime just moved to RestoreReady: its init, its before-snapshot hooks included,
        is done (it is ready for its snapshot). Wait until the environment is restored (the runtime is Restoring);
        ``ConnectionClosed`` if the environment goes away meanwhile."""
        ...

    def restore_failed(self, error_type: str) -> None:
        """The runtime reported that its restore failed (``/restore/error``): its after-restore hooks failed."""
        ...

    def credentials(self, token: str) -> ContainerCredentials | None:
        """The credentials for ``token`` (the ``Authorization`` header), or ``None`` when it is not the one given
        to the runtime."""
        ...


class RuntimeRefusal(Exception):
    """A Runtime API call the environment refuses: the status, ``errorType`` and ``errorMessage`` the runtime gets."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message

    @classmethod
    def invalid_request_id(cls) -> RuntimeRefusal:
        return cls(400, "InvalidRequestID", "Invalid request ID")

    @classmethod
    def refused_transition(cls, refused: InvalidTransition) -> RuntimeRefusal:
        return cls(403, "InvalidStateTransition", str(refused))


@dataclass(frozen=True, slots=True)
class Lane:
    """One invoke the runtime answers, and the state machine its answer moves: the runtime's own when it runs one
    invoke at a time, the invoke's own when it runs several at once (Managed Instances)."""

    invocation: RuntimeInvocation
    machine: Machine[RuntimeState]


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
        """The runtime's state machine (its init; and its invokes, when it runs one at a time)."""
        ...

    @property
    def snapstart(self) -> SnapStart | None:
        """Its SnapStart side; ``None`` without init caching (the restore and credentials routes answer 404)."""
        ...

    def next_invocation(self, peer: tuple[str, int]) -> RuntimeInvocation:
        """``/next`` from ``peer``: wait until an invoke is delivered to this caller and return it;
        ``RuntimeRefusal`` when the call is refused, ``ConnectionClosed`` if the environment goes away meanwhile."""
        ...

    def lane(self, request_id: str) -> Lane:
        """The invoke ``request_id`` names, for its ``/response`` or ``/error``; ``RuntimeRefusal`` when there is
        none to answer."""
        ...

    def response_started(self, invocation: RuntimeInvocation) -> None:
        """The runtime began its ``/response`` or ``/error`` for ``invocation``."""
        ...

    def answered(self, invocation: RuntimeInvocation) -> None:
        """The runtime's answer for ``invocation`` is complete (or was refused): its lane is ResponseSent."""
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

    def disconnected(self, peer: tuple[str, int]) -> None:
        """The connection from ``peer`` (a runtime's or an extension's) has closed."""
        ...
