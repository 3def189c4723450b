"""Which runtime worker of a Managed Instances environment holds which invoke (``AWS_LAMBDA_MAX_CONCURRENCY``):
the workers waiting in ``/next``, in the order they came, and a lane for each invoke handed to one.

The runtime's machine covers its init only (the first ``/next`` makes it Ready); each delivered invoke moves a
machine of its own on its lane (Running, then InvocationResponse or InvocationErrorResponse, then ResponseSent), so
answers are routed by request id and one worker's answer never touches another's. A worker stays busy until its
runtime answers (a timed-out invoke's worker too, until its late answer), which is what bounds how many invokes the
environment takes. Which process a worker is, when it is one of the runtime's own (``owners``), is traced by the
environment. This keeps the lanes; the environment (``supervisor.environment.concurrent_environment``) decides.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Final

import gevent.event

from pyrie_core.machine import Machine
from runtime_api.runtime_states import RUNTIME_TRANSITIONS, RuntimeState
from supervisor.invocation import Invocation

__all__ = ["WorkerLane", "WorkerLanes"]

# After a worker's invoke timed out, its late answer is told apart from an unknown id for this many invokes.
TIMED_OUT_KEPT: Final = 1000

Waiter = tuple[tuple[str, int], "gevent.event.AsyncResult[Invocation | None]"]


@dataclass(slots=True)
class WorkerLane:
    invocation: Invocation
    machine: Machine[RuntimeState]
    peer: tuple[str, int]  # the worker's end of the connection that took the invoke
    worker_pid: int | None = None  # the worker process, once traced


class WorkerLanes:
    def __init__(self) -> None:
        self._waiting: collections.deque[Waiter] = collections.deque()
        self.lanes: dict[str, WorkerLane] = {}
        self._timed_out: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.owners: dict[tuple[str, int], int | None] = {}  # each connection's worker process, as traced

    @property
    def waiting_workers(self) -> int:
        return len(self._waiting)

    def wait(self, peer: tuple[str, int]) -> Waiter:
        """A worker waits in ``/next`` on the connection from ``peer``: the waiter its invoke will be set on (``None``
        when the environment goes); ``leave`` it once woken."""
        entry: Waiter = (peer, gevent.event.AsyncResult())
        self._waiting.append(entry)
        return entry

    def leave(self, entry: Waiter) -> None:
        if entry in self._waiting:
            self._waiting.remove(entry)

    def hand_over(self, invocation: Invocation) -> WorkerLane:
        """Give ``invocation`` to the worker that has waited longest in ``/next``; there must be one."""
        peer, waiter = self._waiting.popleft()
        machine = Machine("runtime", RUNTIME_TRANSITIONS, RuntimeState.RUNNING)
        lane = WorkerLane(invocation, machine, peer, self.owners.get(peer))
        self.lanes[invocation.request_id] = lane
        waiter.set(invocation)
        return lane

    def late(self, request_id: str) -> bool:
        """Whether ``request_id`` names an invoke that timed out: then this answer of its worker frees the lane."""
        if request_id not in self._timed_out:
            return False
        del self._timed_out[request_id]
        self.lanes.pop(request_id, None)
        return True

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
