"""An environment as its Runtime API sees it (``runtime_api.host.RuntimeHost``): what the handlers read, where the
runtime's ``/next`` waits for its next invoke, and the facts the handlers report, passed on to the environment.

The handlers move the runtime's state machine themselves; each fact they report here is only recorded by the
environment, which acts on it after the handler's transition has returned (``supervisor.reactor``). With init caching
(SnapStart) it has a ``SnapStartSide`` for the restore calls and the credentials endpoint.
"""

from __future__ import annotations

from typing import Final, Protocol

import gevent
import gevent.event

from pyrie_core.limits import Limits
from pyrie_core.machine import InvalidTransition
from runtime_api.host import Lane, RuntimeInvocation, RuntimeRefusal
from runtime_api.http_connection import ConnectionClosed
from runtime_api.runtime_states import RuntimeState
from supervisor.config import FunctionConfig
from supervisor.environment.extension_set import ExtensionSet
from supervisor.environment.host_base import HostBase, HostEvents
from supervisor.environment.snapstart_side import SnapStartEvents, SnapStartSide
from supervisor.invocation import Invocation
from supervisor.observe.telemetry_hub import TelemetryHub

__all__ = ["DRAIN_S", "RuntimeEvents", "RuntimeSide"]

# After a runtime exits, what it sent last is read for at most this long before its exit is judged.
DRAIN_S: Final = 1.0
DRAIN_POLL_S: Final = 0.005


class RuntimeEvents(HostEvents, Protocol):
    """What a one-invoke-at-a-time environment is told by its Runtime API."""

    @property
    def current(self) -> Invocation | None: ...


class RuntimeSide(HostBase):
    def __init__(
        self,
        function: FunctionConfig,
        limits: Limits,
        extensions: ExtensionSet,
        telemetry: TelemetryHub,
        events: RuntimeEvents,
        *,
        snapstart_events: SnapStartEvents | None = None,
    ) -> None:
        super().__init__(function, limits, extensions, telemetry, events)
        self._events = events
        self._delivered = gevent.event.Event()  # set when an invoke is handed over, or the environment closes
        self.parked = 0  # Runtime API connections waiting in /next for an invoke
        self._snapstart: SnapStartSide | None = None
        if function.snapstart is not None and snapstart_events is not None:
            self._snapstart = SnapStartSide(function.snapstart, self._runtime, snapstart_events)

    def drain(self) -> None:
        """What the runtime sent before it exited (a response, its last chunks) may still wait in its sockets: let
        every connection that is not parked (the runtime's in /next, the extensions' in /event/next) read to its end
        (for at most ``DRAIN_S``). A streamed response that waits for a slow client is not waited for: it reads
        nothing until that client does."""
        server = self._server
        if server is None:
            return
        current = self._events.current
        with gevent.Timeout(DRAIN_S, False):
            while server.connections > self._parked() and not (current is not None and current.waiting_for_room):
                gevent.sleep(DRAIN_POLL_S)

    def _parked(self) -> int:
        """Connections that wait for pyrie, not pyrie for them."""
        restoring = self._snapstart.parked if self._snapstart is not None else 0
        return self.parked + restoring + self._extensions.parked

    # -- what the handlers read -----------------------------------------------------------------------------------

    @property
    def snapstart(self) -> SnapStartSide | None:
        return self._snapstart

    # -- /next and the answers ----------------------------------------------------------------------------------

    def next_invocation(self, peer: tuple[str, int]) -> Invocation:
        """``/next``: the runtime is Ready (its init, or its last invoke, is done); wait until the environment hands
        it an invoke. Asked again before answering, it gets the same event again, as from the Go emulator."""
        current = self._events.current
        if self._runtime.state is RuntimeState.RUNNING and current is not None:
            return current
        try:
            self._runtime.transition(RuntimeState.READY)
        except InvalidTransition as refused:
            raise RuntimeRefusal.refused_transition(refused) from None
        self._events.runtime_ready()
        while self._runtime.state is not RuntimeState.RUNNING or self._events.current is None:
            if self._events.closing:
                raise ConnectionClosed("the environment was reset")
            self.parked += 1
            try:
                self._delivered.wait()
            finally:
                self.parked -= 1
            self._delivered.clear()
        return self._events.current

    def lane(self, request_id: str) -> Lane:
        current = self._events.current
        if current is None or current.request_id != request_id:
            raise RuntimeRefusal.invalid_request_id()
        return Lane(current, self._runtime)

    def hand_over(self) -> None:
        """Give the environment's current invoke to the runtime waiting (or about to wait) in ``/next``."""
        self._runtime.transition(RuntimeState.RUNNING)  # Ready -> Running
        self._delivered.set()

    def close(self) -> None:
        """The environment is going: a runtime waiting in ``/next`` (or ``/restore/next``) gives up."""
        self._delivered.set()
        if self._snapstart is not None:
            self._snapstart.close()

    # -- what the handlers report ---------------------------------------------------------------------------------

    def answered(self, invocation: RuntimeInvocation) -> None:
        """Nothing to do: the runtime's invoke is over when it comes back to ``/next``."""

    def disconnected(self, peer: tuple[str, int]) -> None:
        """Nothing to do: one invoke at a time is not tied to a connection."""
