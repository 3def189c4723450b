"""Placing invokes on the pool of execution environments (DESIGN §6).

A synchronous invoke goes to an idle environment, else to one that is about to be free (its invoke answered, its
runtime not yet back at ``/next``), else to one still initialising that nobody waits for, else to a new one while
fewer than ``--max-concurrency`` run; beyond that it is throttled (429). An Event invoke is acknowledged at once
(202) and queued in order; queued invokes take environments as they free up.

Environments come and go: on demand, or ``--init-eagerly`` (kept at ``--min-environments``); idle ones are retired
after ``--idle-timeout``; with ``--watch``, a change of code retires the idle ones and lets busy ones finish first.
"""

from __future__ import annotations

import collections
import logging
from typing import Final

import gevent

from pyrie_core.function_names import InvalidFunctionName, parse_function_ref, resolves_to
from pyrie_core.lambda_errors import ServiceError
from pyrie_core.pipe.messages import EnvironmentStatus, Invoke, Outcome, Status
from supervisor.config import Config
from supervisor.environment.environment_states import EnvState
from supervisor.environment.lifecycle import Environment
from supervisor.invocation import DiscardingSink, Invocation, ResponseSink
from supervisor.observe.function_log import FunctionLog
from supervisor.pool.runtime_api_ports import RuntimeApiPorts
from supervisor.timers import Timer

__all__ = ["Dispatcher"]

log = logging.getLogger(__name__)

INVOCATION_TYPES: Final = ("RequestResponse", "Event", "DryRun")
LOG_TYPES: Final = ("None", "Tail")
THROTTLE_REASON: Final = "ReservedFunctionConcurrentInvocationLimitExceeded"
# Which accepting environment takes an invoke first: an idle one, one about to be free, one still initialising.
_PREFERENCE: Final = {EnvState.IDLE: 0, EnvState.INVOKING: 1, EnvState.STARTING: 2}


class Dispatcher:
    def __init__(self, config: Config, function_log: FunctionLog) -> None:
        self._config = config
        self._pool = config.pool
        self._log = function_log
        self._environments: list[Environment] = []
        self._ports = RuntimeApiPorts(config.runtime_api_address)
        self._events: collections.deque[Invocation] = collections.deque()  # Event invokes waiting, oldest first
        self._idle_timers: dict[Environment, Timer] = {}
        self._generation = 0  # of the function's code; raised by code_changed
        self._started = 0  # environments started so far (their names count up)
        self._accepting = True
        self._in_flight: set[Invocation] = set()

    @property
    def environments(self) -> list[Environment]:
        return list(self._environments)

    def start(self) -> None:
        """Pre-warm the environments ``--init-eagerly`` asks for."""
        self._keep_warm()

    def submit(self, request: Invoke, sink: ResponseSink) -> Invocation:
        """Start ``request``; its response (or error) goes to ``sink``."""
        function = self._config.function
        invocation = Invocation(request, sink, function.version)
        if not self._accepting:
            invocation.reject(503, ServiceError.SERVICE, "pyrie is shutting down")
            return invocation
        try:
            ref = parse_function_ref(request.function, request.qualifier)
        except InvalidFunctionName as exc:
            invocation.reject(400, exc.code, str(exc))
            return invocation
        if not resolves_to(ref, function.name, function.version):
            qualified = f"{function.arn.rpartition(':')[0]}:{ref.name}:{ref.qualifier or '$LATEST'}"
            invocation.reject(404, ServiceError.NOT_FOUND, f"Function not found: {qualified}")
            return invocation
        for value, allowed, member in (
            (request.invocation_type, INVOCATION_TYPES, "invocationType"),
            (request.log_type, LOG_TYPES, "logType"),
        ):
            if value not in allowed:
                invocation.reject(
                    400,
                    ServiceError.INVALID_PARAMETER,
                    f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: "
                    f"Member must satisfy enum value set: [{', '.join(allowed)}]",
                )
                return invocation
        if request.invocation_type == "DryRun":
            invocation.acknowledge(204)
        elif request.invocation_type == "Event":
            self._queue_event(invocation)
        else:
            self._place(invocation)
        return invocation

    def code_changed(self) -> None:
        """The function's code changed (``--watch``): idle environments go now, busy ones once they finish."""
        self._generation += 1
        log.info("code changed: environments restart with it")
        for env in list(self._environments):
            if env.state is EnvState.IDLE or (env.state is EnvState.STARTING and env.pending is None):
                env.retire("code changed")
        self._keep_warm()

    def status(self) -> Status:
        """What /healthz shows: the function and each environment's state. Starts and uses nothing."""
        function = self._config.function
        return Status(
            function=function.name,
            version=function.version,
            max_concurrency=self._pool.max_concurrency,
            environments=tuple(
                EnvironmentStatus(env.name, env.state.value, env.runtime.state.value) for env in self._environments
            ),
        )

    def shutdown(self, grace_s: float) -> None:
        """Refuse new invokes, give running ones up to ``grace_s`` to finish, then end every environment."""
        self._accepting = False
        for event in self._events:
            log.warning("Event invoke %s dropped: pyrie is shutting down", event.request_id)
        self._events.clear()
        with gevent.Timeout(grace_s, False):
            for invocation in list(self._in_flight):
                invocation.finished.wait()
        gevent.joinall([gevent.spawn(env.retire, "SandboxTerminated") for env in list(self._environments)])

    # -- EnvironmentObserver ------------------------------------------------------------------------------------

    def environment_idle(self, env: Environment) -> None:
        if env.generation != self._generation:
            env.retire("code changed")
            return
        if self._events and self._accepting:
            env.assign(self._take_event(env))
            return
        if self._pool.idle_timeout_s > 0:
            self._idle_timers[env] = Timer(self._pool.idle_timeout_s, self._retire_if_idle, env)

    def environment_gone(self, env: Environment, orphan: Invocation | None) -> None:
        self._cancel_idle_timer(env)
        if env in self._environments:
            self._environments.remove(env)
        if env.address is not None:
            self._ports.release(env.address.port)
        if not self._accepting:
            if orphan is not None and not orphan.finished.is_set():
                orphan.reject(503, ServiceError.SERVICE, "pyrie is shutting down")
            return
        if orphan is not None and not orphan.finished.is_set():
            if orphan.request.invocation_type == "Event":
                self._events.appendleft(orphan)
            else:
                self._place(orphan)
        self._run_events()
        self._keep_warm()

    # -- placement ----------------------------------------------------------------------------------------------

    def _place(self, invocation: Invocation) -> None:
        env = self._acquire()
        if env is None:
            invocation.reject(
                429, ServiceError.TOO_MANY_REQUESTS, "Rate Exceeded.", {"Retry-After": "1"}, Reason=THROTTLE_REASON
            )
            return
        self._run_on(env, invocation)

    def _queue_event(self, invocation: Invocation) -> None:
        if len(self._events) >= self._pool.max_queued_events:
            invocation.reject(
                429,
                ServiceError.TOO_MANY_REQUESTS,
                f"Rate Exceeded: {len(self._events)} Event invokes are already waiting for an environment.",
                {"Retry-After": "1"},
                Reason=THROTTLE_REASON,
            )
            return
        # The caller is answered now; the invoke itself runs later, its output going nowhere but the log.
        queued = Invocation(invocation.request, DiscardingSink(), invocation.executed_version, invocation.request_id)
        queued.finished.rawlink(lambda _event: _log_event_outcome(queued))
        self._events.append(queued)
        invocation.acknowledge(202)
        self._run_events()

    def _run_events(self) -> None:
        while self._events and self._accepting:
            env = self._acquire()
            if env is None:
                return
            self._run_on(env, self._take_event(env))

    def _acquire(self) -> Environment | None:
        """An environment for one more invoke: a chosen one, else a new one while below the limit."""
        env = self._choose()
        if env is None and self._live_count() < self._pool.max_concurrency:
            env = self._new_environment()
        return env

    def _run_on(self, env: Environment, invocation: Invocation) -> None:
        self._track(invocation)
        self._cancel_idle_timer(env)
        env.assign(invocation)
        if not env.started:
            env.start()

    def _take_event(self, env: Environment) -> Invocation:
        invocation = self._events.popleft()
        log.debug("Event invoke %s goes to %s", invocation.request_id, env.name)
        return invocation

    def _choose(self) -> Environment | None:
        """An idle environment, else one about to be free, else one initialising that no invoke waits for."""
        best: Environment | None = None
        rank = 3
        for env in self._environments:
            if not env.accepting:
                continue
            order = _PREFERENCE.get(env.state, 3)
            if order < rank:
                best, rank = env, order
                if order == 0:
                    break
        return best

    def _live_count(self) -> int:
        """Environments that count against the limit: all but those being torn down."""
        return sum(1 for env in self._environments if env.state not in (EnvState.RESETTING, EnvState.GONE))

    def _new_environment(self) -> Environment | None:
        """A new environment with its Runtime API bound (not yet started), or None when no address is free."""
        self._started += 1
        env = Environment(self._started, self._config, self._log, self, self._generation)
        for address in self._ports.candidates():
            try:
                bound = env.bind(address)
            except OSError as exc:
                log.debug("%s: %s is not free: %s", env.name, address, exc.strerror)
                continue
            self._ports.take(bound.port)
            self._environments.append(env)
            return env
        log.error("no free port for a Runtime API near %s", self._config.runtime_api_address)
        return None

    def _keep_warm(self) -> None:
        """Keep ``--min-environments`` environments alive when ``--init-eagerly`` is on."""
        if not self._accepting:
            return
        while self._live_count() < self._pool.warm_minimum:
            env = self._new_environment()
            if env is None:
                return
            env.start(eager=True)

    def _track(self, invocation: Invocation) -> None:
        self._in_flight.add(invocation)
        invocation.finished.rawlink(lambda _event: self._in_flight.discard(invocation))

    def _retire_if_idle(self, env: Environment) -> None:
        self._idle_timers.pop(env, None)
        if env.state is EnvState.IDLE and self._live_count() > self._pool.warm_minimum:
            env.retire("idle timeout")

    def _cancel_idle_timer(self, env: Environment) -> None:
        timer = self._idle_timers.pop(env, None)
        if timer is not None:
            timer.cancel()


def _log_event_outcome(invocation: Invocation) -> None:
    outcome = invocation.outcome
    if outcome is not None and outcome.outcome is not Outcome.OK:
        detail = outcome.body[:300].decode(errors="replace")
        log.warning("Event invoke %s failed: %s %s", invocation.request_id, outcome.error_type, detail)
