"""A Managed Instances environment as its Runtime API sees it: several runtime workers (``AWS_LAMBDA_MAX_CONCURRENCY``
of them) waiting in ``/next`` at once, each handed its own invoke on a lane of its own.

The runtime's machine covers its init only (the first ``/next`` makes it Ready); each delivered invoke moves a
machine of its own (Running, then InvocationResponse or InvocationErrorResponse, then ResponseSent), so answers are
routed by request id and one worker's answer never touches another's. As the Go emulator's LMI mode answers: an id
that names no running invoke (unknown, or already answered) is 400 ``InvalidRequestID``, and a late answer for an
invoke that timed out is 410 ``InvokeTimeout``. A worker stays busy until its runtime answers (a timed-out invoke's
worker too, until its late answer), which is what bounds how many invokes the environment takes.

Which process a worker is: the connection that takes an invoke is traced to its owning process
(``supervisor.processes.socket_owner``) when that process is one of the runtime's own workers, so a worker that dies
with its invoke unanswered fails that invoke alone (``Runtime.ExitError``).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Final, Protocol

import gevent
import gevent.event

from pyrie_core.limits import Limits
from pyrie_core.machine import InvalidTransition, Machine
from runtime_api.host import Lane, RuntimeInvocation, RuntimeRefusal
from runtime_api.http_connection import ConnectionClosed
from runtime_api.runtime_states import RUNTIME_TRANSITIONS, RuntimeState
from supervisor.config import FunctionConfig
from supervisor.environment.extension_set import ExtensionSet
from supervisor.environment.host_base import HostBase, HostEvents
from supervisor.invocation import Invocation
from supervisor.observe.telemetry_hub import TelemetryHub

__all__ = ["WorkerLane", "WorkerLanes", "WorkerLanesEvents"]

# After a worker's invoke timed out, its late answer is told apart from an unknown id for this many invokes.
TIMED_OUT_KEPT: Final = 1000


class WorkerLanesEvents(HostEvents, Protocol):
    """What a Managed Instances environment is told by its Runtime API."""

    def worker_waiting(self) -> None:
        """A worker waits in ``/next``: an invoke may be handed to it."""
        ...

    def answered(self, invocation: RuntimeInvocation) -> None: ...

    def worker_free(self) -> None:
        """A worker is free again without an invoke ending (its late answer came)."""
        ...

    def worker_process(self, peer: tuple[str, int]) -> int | None:
        """The runtime worker process that holds the connection from ``peer``, if it is one of the runtime's own."""
        ...


_Waiter = tuple[tuple[str, int], "gevent.event.AsyncResult[Invocation | None]"]


@dataclass(slots=True)
class WorkerLane:
    invocation: Invocation
    machine: Machine[RuntimeState]
    peer: tuple[str, int]  # the worker's end of the connection that took the invoke
    worker_pid: int | None = None  # the worker process, once traced


class WorkerLanes(HostBase):
    def __init__(
        self,
        function: FunctionConfig,
        limits: Limits,
        extensions: ExtensionSet,
        telemetry: TelemetryHub,
        events: WorkerLanesEvents,
    ) -> None:
        super().__init__(function, limits, extensions, telemetry, events)
        self._events = events
        self._waiting: collections.deque[_Waiter] = collections.deque()
        self.lanes: dict[str, WorkerLane] = {}
        self._timed_out: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._owners: dict[tuple[str, int], int | None] = {}  # each connection's worker process, as traced

    # -- what the handlers read -----------------------------------------------------------------------------------

    @property
    def snapstart(self) -> None:
        """No init caching here."""
        return None

    @property
    def waiting_workers(self) -> int:
        return len(self._waiting)

    # -- serving --------------------------------------------------------------------------------------------------

    def drain(self) -> None:
        """Nothing to wait for: a runtime that exits takes every lane with it."""

    # -- /next and the answers ------------------------------------------------------------------------------------

    def next_invocation(self, peer: tuple[str, int]) -> Invocation:
        """A worker's ``/next``: the first one ends the runtime's init; each waits until it is handed an invoke."""
        if self._runtime.state is RuntimeState.STARTED:
            try:
                self._runtime.transition(RuntimeState.READY)
            except InvalidTransition as refused:  # pragma: no cover - Started -> Ready is always allowed
                raise RuntimeRefusal.refused_transition(refused) from None
            self._events.runtime_ready()
        elif self._runtime.state is not RuntimeState.READY:  # it reported an init error
            raise RuntimeRefusal.refused_transition(
                InvalidTransition("runtime", self._runtime.state, RuntimeState.READY)
            )
        if self._events.closing:
            raise ConnectionClosed("the environment was reset")
        waiter: gevent.event.AsyncResult[Invocation | None] = gevent.event.AsyncResult()
        entry = (peer, waiter)
        if peer not in self._owners:  # traced while it waits, so a worker that dies at once is still known
            self._owners[peer] = None
            gevent.spawn(self._trace, peer)
        self._waiting.append(entry)
        self._events.worker_waiting()
        try:
            invocation = waiter.get()
        finally:
            if entry in self._waiting:
                self._waiting.remove(entry)
        if invocation is None:
            raise ConnectionClosed("the environment was reset")
        return invocation

    def hand_over(self, invocation: Invocation) -> WorkerLane:
        """Give ``invocation`` to the worker that has waited longest in ``/next``; there must be one."""
        peer, waiter = self._waiting.popleft()
        machine = Machine("runtime", RUNTIME_TRANSITIONS, RuntimeState.RUNNING)
        lane = WorkerLane(invocation, machine, peer, self._owners.get(peer))
        self.lanes[invocation.request_id] = lane
        waiter.set(invocation)
        return lane

    def disconnected(self, peer: tuple[str, int]) -> None:
        """The connection from ``peer`` is gone: a new one from the same port is traced afresh."""
        self._owners.pop(peer, None)

    def _trace(self, peer: tuple[str, int]) -> None:
        if peer in self._owners:
            self._owners[peer] = self._events.worker_process(peer)

    def lane(self, request_id: str) -> Lane:
        lane = self.lanes.get(request_id)
        if lane is None:
            raise RuntimeRefusal.invalid_request_id()
        if request_id in self._timed_out:  # its invoke timed out: the worker's late answer frees it
            del self._timed_out[request_id]
            del self.lanes[request_id]
            self._events.worker_free()
            raise RuntimeRefusal(410, "InvokeTimeout", "Invoke timeout")
        if lane.machine.state is not RuntimeState.RUNNING:  # an answer is under way already
            raise RuntimeRefusal.invalid_request_id()
        return Lane(lane.invocation, lane.machine)

    def timed_out(self, invocation: Invocation) -> None:
        """``invocation`` timed out: its worker stays busy until it answers, and that answer is refused (410)."""
        if invocation.request_id in self.lanes:
            self._timed_out[invocation.request_id] = None
            while len(self._timed_out) > TIMED_OUT_KEPT:
                self._timed_out.popitem(last=False)

    def drop(self, invocation: Invocation) -> None:
        """``invocation``'s worker is gone (it died): its lane goes with it."""
        self.lanes.pop(invocation.request_id, None)
        self._timed_out.pop(invocation.request_id, None)

    def close(self) -> None:
        """The environment is going: every waiting worker gives up."""
        for _peer, waiter in list(self._waiting):
            waiter.set(None)  # it wakes to give up
        self._waiting.clear()

    # -- what the handlers report ---------------------------------------------------------------------------------

    def answered(self, invocation: RuntimeInvocation) -> None:
        self.lanes.pop(invocation.request_id, None)
        self._events.answered(invocation)
