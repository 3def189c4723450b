"""An environment that runs several invokes at once, as Lambda Managed Instances do (``AWS_LAMBDA_MAX_CONCURRENCY``).

The runtime has up to that many workers (awslambdaric forks one process per worker; the Node.js client runs them
as concurrent invokes of one process), each waiting in ``/next`` for an invoke of its own (``WorkerLanes``). The
environment takes invokes while fewer than its concurrency are busy, hands each to the worker that has waited
longest, and ends each on its own: END and REPORT as its answer completes. What fails one invoke leaves the others
running, as in Lambda: a timeout fails that invoke alone (its worker is busy until it answers late, and that answer
is refused), and so does a worker process that dies. What fails the runtime as a whole (the runtime's main process
exits, memory runs out) ends the environment, and the pool replaces it. An extension that exits makes the
environment unhealthy: it takes no more invokes, lets those it runs finish, and is then replaced.

Its Runtime API: each worker's ``/next`` waits for an invoke of its own (the first one ends the runtime's part of
init); an answer is routed to its lane by its request id: an id that names no running invoke (unknown, or already
answered) is 400 ``InvalidRequestID``, and a late answer for an invoke that timed out is 410 ``InvokeTimeout``, as the
Go emulator's LMI mode answers. The connection that takes an invoke is traced to its owning process
(``supervisor.processes.socket_owner``) when that process is one of the runtime's own workers, so a worker that dies
with its invoke unanswered fails that invoke alone (``Runtime.ExitError``).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Final

import gevent

from pyrie_core.lambda_errors import FunctionError, exit_description
from pyrie_core.machine import InvalidTransition, Machine
from runtime_api.host import RuntimeRefusal
from runtime_api.http_connection import ConnectionClosed
from runtime_api.runtime_states import RuntimeState
from supervisor.environment.concurrent_slots import ConcurrentSlots
from supervisor.environment.environment_states import EnvState
from supervisor.environment.execution_environment import Environment, runtime_exit_message
from supervisor.environment.extension_set import Extension
from supervisor.environment.worker_lanes import WorkerLane, WorkerLanes
from supervisor.invocation import Invocation
from supervisor.processes.process_census import children
from supervisor.processes.socket_owner import exit_status, socket_owner

__all__ = ["ConcurrentEnvironment"]

log = logging.getLogger(__name__)

# How often the workers that took invokes are checked for having died.
WORKER_CHECK_S: Final = 0.1
_TAKING: Final = (EnvState.IDLE, EnvState.INVOKING)


class ConcurrentEnvironment(Environment):
    slot: ConcurrentSlots
    _draining = False  # an extension exited: no more invokes here, then a replacement
    _watching = False  # a greenlet checks the traced workers

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lanes = WorkerLanes()

    def _make_invokes(self) -> ConcurrentSlots:
        return ConcurrentSlots(self._config.function, self._report, self._timed_out)

    @property
    def concurrency(self) -> int:
        return self._config.function.concurrency or 1

    @property
    def accepting(self) -> bool:
        state = self.machine.state
        if self._draining or state not in (EnvState.STARTING, *_TAKING):
            return False
        return len(self.lanes.lanes) + self.slot.waiting_count < self.concurrency

    @property
    def has_pending(self) -> bool:
        return self.slot.waiting_count > 0

    @property
    def in_flight(self) -> int:
        return len(self.slot.delivered())

    @property
    def output_owner(self) -> Invocation | None:
        return None  # the workers' lines interleave: none belongs to one invoke

    def assign(self, invocation: Invocation) -> None:
        assert self.accepting, f"{self.name} has no room"
        self.slot.add(invocation)
        self._dispatch()

    def is_waiting(self, invocation: Invocation) -> bool:
        return self.slot.is_waiting(invocation)

    def withdraw(self, invocation: Invocation) -> bool:
        return self.slot.remove_waiting(invocation)

    # -- facts from the Runtime API -------------------------------------------------------------------------------

    def next_invocation(self, peer: tuple[str, int]) -> Invocation:
        """A worker's ``/next``: the first one ends the runtime's part of init; each waits until it is handed an
        invoke of its own."""
        if self.runtime.state is RuntimeState.STARTED:
            self.runtime.transition(RuntimeState.READY)  # Started -> Ready: always allowed
            if self.initialising:
                self._init.runtime_ready(self.extensions)
        elif self.runtime.state is not RuntimeState.READY:  # it reported an init error
            refused = InvalidTransition("runtime", self.runtime.state, RuntimeState.READY)
            raise RuntimeRefusal.refused_transition(refused)
        if self.closing:
            raise ConnectionClosed("the environment was reset")
        if peer not in self.lanes.owners:  # traced while it waits, so a worker that dies at once is still known
            self.lanes.owners[peer] = None
            gevent.spawn(self._trace, peer)
        entry = self.lanes.wait(peer)
        self._settle_soon()  # an invoke may be handed to it
        parking = self._parking
        parking.park()
        try:
            invocation = entry[1].get()
        finally:
            parking.unpark()
            self.lanes.leave(entry)
        if invocation is None:
            raise ConnectionClosed("the environment was reset")
        return invocation

    def _answering(self, request_id: str) -> tuple[Invocation, Machine[RuntimeState]]:
        lane = self.lanes.lanes.get(request_id)
        if lane is None:
            raise RuntimeRefusal.invalid_request_id()
        if self.lanes.late(request_id):  # its invoke timed out: the worker's late answer frees it
            self._settle_soon()
            raise RuntimeRefusal(410, "InvokeTimeout", "Invoke timeout")
        if lane.machine.state is not RuntimeState.RUNNING:  # an answer is under way already
            raise RuntimeRefusal.invalid_request_id()
        return lane.invocation, lane.machine

    def answer_ends(self, request_id: str) -> None:
        """The answer is complete: its invoke is over (END, REPORT), and its worker is free."""
        lane = self.lanes.lanes.pop(request_id, None)
        if lane is None:
            return
        lane.machine.transition(RuntimeState.RESPONSE_SENT)
        invocation = lane.invocation
        if self.slot.end(invocation):
            if not invocation.finished.is_set():  # its response stream broke: nothing else can end it now
                self._truncated(invocation)
            self._runtime.flush_output()
            self._report.runtime_done(invocation, time.monotonic())
            self.end_report(invocation)
        self._settle_soon()

    def disconnected(self, peer: tuple[str, int]) -> None:
        """The connection from ``peer`` is gone: a new one from the same port is traced afresh."""
        self.lanes.owners.pop(peer, None)

    def _close(self) -> None:
        self.lanes.close()

    def _drain(self) -> None:
        """Nothing to wait for: a runtime that exits takes every lane with it."""

    # -- facts from its processes and timers ----------------------------------------------------------------------

    def _invoke_timed_out(self, invocation: Invocation) -> None:
        """Lambda fails that invoke alone: the environment and the other invokes go on."""
        if self.slot.end(invocation):
            self.lanes.timed_out(invocation)
            self.end_report(invocation)
        self._settle_soon()

    def _extension_exited(self, extension: Extension, returncode: int) -> None:
        if self.closing:
            return
        log.info(
            "%s: extension %s exited (%s): no more invokes here; replaced once those running finish",
            self.name,
            extension.name,
            exit_description(returncode),
        )
        if self.initialising:
            super()._extension_exited(extension, returncode)
            return
        self._draining = True
        self._settle_soon()

    # -- work -----------------------------------------------------------------------------------------------------

    def _settle_invokes(self) -> None:
        self._dispatch()
        state = self.machine.state
        if state is EnvState.INVOKING and not self.slot.delivered():
            self._move(EnvState.IDLE)  # INVOKING -> IDLE
        if self._draining:
            if not self.slot.delivered():
                self.reset("an extension exited")
            return
        if self.accepting:
            self._reactor.soon(self._observer.environment_idle, self)

    def _dispatch(self) -> None:
        """Hand waiting invokes to waiting workers while fewer than the concurrency are busy."""
        lanes = self.lanes
        while (
            self.slot.waiting_count
            and lanes.waiting_workers
            and len(lanes.lanes) < self.concurrency
            and self.machine.state in _TAKING
        ):
            if self.machine.state is EnvState.IDLE:
                self._move(EnvState.INVOKING)  # IDLE -> INVOKING
            lane = lanes.hand_over(self.slot.deliver(self._parking))
            if lane.worker_pid is not None and not self._watching:
                self._watching = True
                gevent.spawn(self._watch_workers)

    def _trace(self, peer: tuple[str, int]) -> None:
        """Which worker process holds the connection from ``peer``, when it is one of the runtime's own workers (a
        direct child of the runtime's process, as awslambdaric's are): only then does its death name its invoke."""
        main = self._runtime.pid
        if main is None or self.address is None or peer not in self.lanes.owners:
            return
        self.lanes.owners[peer] = socket_owner(peer[1], self.address.port, children(main))

    def _watch_workers(self) -> None:
        try:
            while not self.closing:
                traced = [lane for lane in list(self.lanes.lanes.values()) if lane.worker_pid is not None]
                if not traced:
                    return
                for lane in traced:
                    assert lane.worker_pid is not None
                    status = exit_status(lane.worker_pid)
                    if status is not None:
                        self._worker_died(lane, status)
                gevent.sleep(WORKER_CHECK_S)
        finally:
            self._watching = False

    def _worker_died(self, lane: WorkerLane, status: int) -> None:
        invocation = lane.invocation
        self.lanes.drop(invocation)
        code = _exit_code(status)
        how = exit_description(code)
        log.info("%s: the runtime worker (pid %d) running %s %s", self.name, lane.worker_pid, invocation, how)
        if self.slot.end(invocation):
            invocation.fail_platform(FunctionError.EXIT, runtime_exit_message(code))
            self.end_report(invocation)
        self._settle_soon()


def _exit_code(status: int) -> int:
    """A wait status (``exit_status``) as ``subprocess`` reports a return code: the exit status, or minus the signal;
    0 when it is unknown (-1: the process was reaped elsewhere)."""
    if status < 0:
        return 0
    try:
        return os.waitstatus_to_exitcode(status)
    except ValueError:  # not an exit nor a signal's death (a zombie's status is always one of them)
        return 0
