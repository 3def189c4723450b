"""An environment that runs several invokes at once, as Lambda Managed Instances do (``AWS_LAMBDA_MAX_CONCURRENCY``).

The runtime has up to that many workers (awslambdaric forks one process per worker; the Node.js client runs them
as concurrent invokes of one process), each waiting in ``/next`` for an invoke of its own (``WorkerLanes``). The
environment takes invokes while fewer than its concurrency are busy, hands each to the worker that has waited
longest, and ends each on its own: END and REPORT as its answer completes. What fails one invoke leaves the others
running, as in Lambda: a timeout fails that invoke alone (its worker is busy until it answers late, and that answer
is refused), and so does a worker process that dies. What fails the runtime as a whole (the runtime's main process
exits, memory runs out) ends the environment, and the pool replaces it. An extension that exits makes the
environment unhealthy: it takes no more invokes, lets those it runs finish, and is then replaced.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Final

import gevent

from pyrie_core.lambda_errors import FunctionError, exit_description
from pyrie_core.limits import Limits
from runtime_api.host import RuntimeInvocation
from supervisor.config import FunctionConfig
from supervisor.environment.concurrent_slots import ConcurrentSlots
from supervisor.environment.environment_states import EnvState
from supervisor.environment.execution_environment import Environment
from supervisor.environment.extension_set import Extension
from supervisor.environment.failures import runtime_exit_message
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
    runtime_side: WorkerLanes
    _draining = False  # an extension exited: no more invokes here, then a replacement
    _watching = False  # a greenlet checks the traced workers

    def _make_invokes(self) -> ConcurrentSlots:
        return ConcurrentSlots(self._config.function, self._report, self._timed_out)

    def _make_runtime_side(self, function: FunctionConfig, limits: Limits) -> WorkerLanes:
        return WorkerLanes(function, limits, self.extensions, self.telemetry, self)

    @property
    def concurrency(self) -> int:
        return self._config.function.concurrency or 1

    @property
    def accepting(self) -> bool:
        state = self.machine.state
        if self._draining or state not in (EnvState.STARTING, *_TAKING):
            return False
        return len(self.runtime_side.lanes) + self.slot.waiting_count < self.concurrency

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

    # -- facts ----------------------------------------------------------------------------------------------------

    def runtime_ready(self) -> None:
        """The first worker waits in ``/next``: the runtime's part of init is done."""
        if self.initialising:
            self._init.runtime_ready(self.extensions)
        self._settle_soon()

    def worker_waiting(self) -> None:
        self._settle_soon()

    def worker_free(self) -> None:
        self._settle_soon()

    def answered(self, invocation: RuntimeInvocation) -> None:
        if isinstance(invocation, Invocation) and self.slot.end(invocation):
            if not invocation.finished.is_set():  # its response stream broke: nothing else can end it now
                self._failures.truncated(invocation)
            self._runtime.flush_output()
            self._report.runtime_done(invocation, time.monotonic())
            self.end_report(invocation)
        self._settle_soon()

    def invoke_timed_out(self, invocation: Invocation) -> None:
        """Lambda fails that invoke alone: the environment and the other invokes go on."""
        if self.slot.end(invocation):
            self.runtime_side.timed_out(invocation)
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
            self.machine.transition(EnvState.IDLE)  # INVOKING -> IDLE
        if self._draining:
            if not self.slot.delivered():
                self.reset("an extension exited")
            return
        if self.accepting:
            self._reactor.soon(self._observer.environment_idle, self)

    def _dispatch(self) -> None:
        """Hand waiting invokes to waiting workers while fewer than the concurrency are busy."""
        side = self.runtime_side
        while (
            self.slot.waiting_count
            and side.waiting_workers
            and len(side.lanes) < self.concurrency
            and self.machine.state in _TAKING
        ):
            if self.machine.state is EnvState.IDLE:
                self.machine.transition(EnvState.INVOKING)  # IDLE -> INVOKING
            lane = side.hand_over(self.slot.deliver())
            if lane.worker_pid is not None and not self._watching:
                self._watching = True
                gevent.spawn(self._watch_workers)

    def worker_process(self, peer: tuple[str, int]) -> int | None:
        """The worker process holding the connection from ``peer``, when it is one of the runtime's own workers (a
        direct child of the runtime's process, as awslambdaric's are): only then does its death name its invoke."""
        main = self._runtime.pid
        if main is None or self.address is None:
            return None
        return socket_owner(peer[1], self.address.port, children(main))

    def _watch_workers(self) -> None:
        try:
            while not self.closing:
                traced = [lane for lane in list(self.runtime_side.lanes.values()) if lane.worker_pid is not None]
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
        self.runtime_side.drop(invocation)
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
