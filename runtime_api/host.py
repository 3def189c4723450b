"""What the Runtime API needs from the execution environment it serves, as interfaces (the supervisor implements
them; this package never imports it).

The handlers speak HTTP and nothing more: what a runtime or an extension does through the API they report to the
environment as a fact (``RuntimeHost``: the runtime waits in ``/next``, begins or ends an answer, posts an init
error; an extension waits for its next event, reports an error), and the environment decides: it moves the state
machines, refuses what the Runtime API refuses (``RuntimeRefusal``, which the handler answers), and acts. What the
handlers read of it: the function, its limits, its extensions' registry (``ExtensionRegistry`` of
``RegisteredExtension``), its telemetry subscriptions, whether init caching (SnapStart) is on and the credentials it
hands out then; and for each invoke, the ``RuntimeInvocation`` the runtime's answer is relayed into.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from pyrie_core import lambda_errors as errors
from pyrie_core.lambda_errors import FunctionError
from pyrie_core.machine import InvalidTransition

if TYPE_CHECKING:
    from pyrie_core.limits import Limits
    from pyrie_core.pipe.messages import Invoke
    from runtime_api.registration import ExtensionEvent
    from runtime_api.subscription import Subscription

__all__ = [
    "ContainerCredentials",
    "ExtensionRegistry",
    "FunctionIdentity",
    "RegisteredExtension",
    "ReportedError",
    "RuntimeHost",
    "RuntimeInvocation",
    "RuntimeRefusal",
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


class ExtensionRegistry(Protocol):
    @property
    def enabled(self) -> bool:
        """Whether the Extensions API is on (its routes answer 404 when it is not)."""
        ...

    def register(self, name: str, events: list[str], with_account: bool) -> tuple[RegisteredExtension, bytes]:
        """Register ``name``: the extension and the response body; ``ExtensionError`` when refused."""
        ...

    def find(self, ident: str) -> RegisteredExtension | None: ...


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


@dataclass(frozen=True, slots=True)
class ReportedError:
    """An error the runtime posted (``/init/error``, ``/restore/error``): the type its
    ``Lambda-Runtime-Function-Error-Type`` header declares, and its body as the caller sees it."""

    declared: str | None
    body: bytes = b""

    @property
    def init_type(self) -> str:
        """The type of a failed init: the header's when it is one of Lambda's (the Go emulator and Lambda take the
        header: a before-snapshot hook's failure is Runtime.BeforeSnapshotError whatever the exception), else the
        body's ``errorType``. The caller gets the body as posted either way."""
        header = self.declared
        declared = header if header and errors.normalise_error_type(header) == header else None
        found = declared or errors.error_type_of(self.body) or errors.normalise_error_type(header)
        return found or FunctionError.UNKNOWN

    @property
    def restore_type(self) -> str:
        """The type of a failed restore: the header's, as the Go emulator keeps it."""
        return errors.normalise_error_type(self.declared) or FunctionError.UNKNOWN


class RuntimeRefusal(Exception):
    """A Runtime API call the environment refuses: the status, ``errorType`` and ``errorMessage`` the caller gets."""

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

    @classmethod
    def refused_extension_transition(cls, refused: InvalidTransition, ident: str) -> RuntimeRefusal:
        """An extension's call in the wrong state, naming the extension by its identifier as the Go emulator does."""
        message = (
            f"State transition from {refused.current.value} to {refused.target.value} failed for extension {ident}. "
            "Error: State transition is not allowed"
        )
        return cls(403, "Extension.InvalidExtensionState", message)


class RuntimeHost(Protocol):
    """An execution environment, as its Runtime API sees it. Each fact may be refused (``RuntimeRefusal``); one that
    waits (``next_invocation``, ``restore_next``, ``extension_waits``) raises ``ConnectionClosed`` if the
    environment goes away meanwhile."""

    # -- what the handlers read -----------------------------------------------------------------------------------

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
    def init_caching(self) -> bool:
        """Whether it runs with init caching (SnapStart): without, the restore and credentials routes answer 404."""
        ...

    def credentials(self, token: str) -> ContainerCredentials | None:
        """The container credentials for ``token`` (the ``Authorization`` header), or ``None`` when it is not the
        one given to the runtime."""
        ...

    # -- the runtime's facts --------------------------------------------------------------------------------------

    def next_invocation(self, peer: tuple[str, int]) -> RuntimeInvocation:
        """``/next`` from ``peer``: the runtime (or a worker of it) is ready; wait until an invoke is delivered to
        this caller and return it."""
        ...

    def answer_begins(self, request_id: str, error: bool) -> RuntimeInvocation:
        """The runtime begins its ``/response`` (or, ``error``, its ``/error``) for ``request_id``: the invoke the
        answer goes to."""
        ...

    def answer_ends(self, request_id: str) -> None:
        """The runtime's answer for ``request_id`` is complete, or was refused (too large, a bad response mode)."""
        ...

    def stream_broken(self, request_id: str) -> None:
        """The runtime's streamed response for ``request_id`` ended without its end (the connection broke)."""
        ...

    def init_failed(self, error: ReportedError) -> None:
        """The runtime posted ``/runtime/init/error``."""
        ...

    def restore_next(self) -> None:
        """``/restore/next`` (init caching): the runtime's init, its before-snapshot hooks included, is done; wait
        until the environment is restored."""
        ...

    def restore_failed(self, error: ReportedError) -> None:
        """The runtime posted ``/restore/error`` (init caching): its after-restore hooks failed."""
        ...

    def disconnected(self, peer: tuple[str, int]) -> None:
        """The connection from ``peer`` (a runtime's or an extension's) has closed."""
        ...

    # -- the extensions' facts ------------------------------------------------------------------------------------

    def extension_waits(self, extension: RegisteredExtension) -> ExtensionEvent:
        """``/event/next``: ``extension`` is done with its last event; wait for its next one."""
        ...

    def extension_failed(self, extension: RegisteredExtension, fatal_type: str, error_type: str) -> None:
        """``extension`` posted ``/extension/init/error`` (``fatal_type`` Extension.InitError) or
        ``/extension/exit/error`` (Extension.ExitError) with ``error_type``."""
        ...
