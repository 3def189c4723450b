"""The invokes one environment holds: ``current``, delivered to the runtime, and ``pending``, waiting for the runtime's
next ``/next`` (during init, or while the runtime finishes its previous invoke after answering it).

Delivering an invoke starts its clock (``Lambda-Runtime-Deadline-Ms``), writes its START, hands INVOKE to the
extensions that asked for it, and arms its timeout, which calls back only for the invoke that is still current.
"""

from __future__ import annotations

from collections.abc import Callable

from runtime_api.runtime_api_server import Parking
from supervisor.config import FunctionConfig
from supervisor.environment.extension_set import ExtensionSet, invoke_event
from supervisor.invocation import Invocation
from supervisor.observe.platform_reporter import PlatformReporter
from supervisor.timers import Timer

__all__ = ["InvokeSlot"]


class InvokeSlot:
    def __init__(
        self,
        function: FunctionConfig,
        reporter: PlatformReporter,
        extensions: ExtensionSet,
        on_timeout: Callable[[Invocation], None],
    ) -> None:
        self._function = function
        self._reporter = reporter
        self._extensions = extensions
        self._on_timeout = on_timeout
        self.current: Invocation | None = None
        self.pending: Invocation | None = None
        self._timer: Timer | None = None

    def deliver(self, parking: Parking) -> Invocation:
        """Make the pending invoke current: the runtime takes it now, from the Runtime API server ``parking``."""
        invocation, self.pending = self.pending, None
        assert invocation is not None, "nothing to deliver"
        timeout_s = self._function.timeout_s
        invocation.deliver(timeout_s, parking)
        self.current = invocation
        self._reporter.start(invocation)
        if self._extensions.present:
            self._extensions.deliver_invoke(
                invoke_event(invocation.deadline_ms, invocation.request_id, self._function.arn, invocation.trace_id)
            )
        self._timer = Timer(timeout_s, self._deadline_passed, invocation)
        return invocation

    def finish(self) -> Invocation | None:
        """The current invoke is over: it is no longer current, and its timeout is disarmed."""
        self.cancel_timer()
        invocation, self.current = self.current, None
        return invocation

    def take_pending(self) -> Invocation | None:
        invocation, self.pending = self.pending, None
        return invocation

    def delivered(self) -> list[Invocation]:
        """The invokes the runtime has and has not answered yet."""
        current = self.current
        return [current] if current is not None and not current.finished.is_set() else []

    def take_waiting(self) -> list[Invocation]:
        """The invokes not delivered yet, which leave the environment."""
        pending = self.take_pending()
        return [pending] if pending is not None else []

    def finish_all(self) -> list[Invocation]:
        """Every invoke the environment still holds as delivered (it is going): none is current any more."""
        current = self.finish()
        return [current] if current is not None else []

    def cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _deadline_passed(self, invocation: Invocation) -> None:
        self._timer = None
        if invocation is self.current:
            self._on_timeout(invocation)
