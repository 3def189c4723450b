"""The pool of execution environments, and which one takes each invoke (DESIGN §6).

A synchronous invoke goes to an idle environment, else to one whose invoke has just been answered (its runtime
about to be back at ``/next``), else to one still initialising that no invoke waits for (an init already under way is
ahead of a new one), else to a new one while fewer than ``--max-concurrency`` run; beyond that it is throttled (429).
The preference for an environment that is not ready yet is short: an invoke that still waits on one after
``WARM_PATIENCE_S`` (its runtime slow to come back, or its init long) gets an environment started for it while
another may start, and it runs on whichever is ready first, the one it waits on or any that becomes idle
(``_impatient``). So an invoke never waits on one environment while another could start. An Event invoke is
acknowledged at once (202) and queued in order (``supervisor.pool.event_queue``); queued invokes take environments as
they free up.

Environments come and go: on demand, or ``--init-eagerly`` (kept at ``--min-environments``; after an init that
failed, the next one kept warm starts a while later, the wait doubling until one initialises); idle ones are retired
after ``--idle-timeout``; with ``--watch``, a change of code retires the idle ones and lets busy ones finish first.
The environments tell the pool what became of them through the reactor, after the change, never from inside it.
"""

from __future__ import annotations

import logging
from typing import Final

import gevent

from pyrie_core.lambda_errors import ServiceError
from pyrie_core.pipe.messages import EnvironmentStatus, Invoke, Outcome, Status
from supervisor.config import Config
from supervisor.environment.concurrent_environment import ConcurrentEnvironment
from supervisor.environment.environment_states import EnvState
from supervisor.environment.execution_environment import TEARDOWN_S, Environment
from supervisor.environment.serial_environment import SerialEnvironment
from supervisor.environment.snapstart_environment import SnapStartEnvironment
from supervisor.invocation import DiscardingSink, Invocation, ResponseSink
from supervisor.observe.function_log import FunctionLog
from supervisor.pool.admission import refusal
from supervisor.pool.event_queue import EventQueue
from supervisor.pool.runtime_api_ports import RuntimeApiPorts
from supervisor.processes.containment import Containment
from supervisor.reactor import Reactor
from supervisor.timers import Timer

__all__ = ["Pool"]

log = logging.getLogger(__name__)

THROTTLE_REASON: Final = "ReservedFunctionConcurrentInvocationLimitExceeded"
# How long an invoke waits on an environment that is not ready (slow to come back to /next, or still initialising)
# before another is started for it.
WARM_PATIENCE_S: Final = 0.1
# Which environment takes an invoke: an idle one, one whose invoke has been answered, one initialising that nobody
# waits for, and then a new one (when one may be started).
_RANK: Final = {EnvState.IDLE: 0, EnvState.INVOKING: 1, EnvState.STARTING: 2}
_NEW: Final = 3
# After an init failed, environments kept warm start this much later, doubling up to the maximum until one
# initialises: a function that cannot start (a missing interpreter, an extension that cannot run) is not restarted
# in a busy loop.
WARM_RETRY_FIRST_S: Final = 0.1
WARM_RETRY_MAX_S: Final = 5.0


class Pool:
    def __init__(self, config: Config, function_log: FunctionLog, reactor: Reactor, containment: Containment) -> None:
        self._config = config
        self._containment = containment
        self._settings = config.pool
        self._log = function_log
        self._reactor = reactor
        self._environments: list[Environment] = []
        self._ports = RuntimeApiPorts(config.runtime_api_address)
        self._events = EventQueue(self._settings.max_queued_events, self._settings.max_queued_event_bytes)
        self._idle_timers: dict[Environment, Timer] = {}
        self._generation = 0  # of the function's code; raised by code_changed
        self._started = 0  # environments started so far (their names count up)
        self._accepting = True
        self._in_flight: set[Invocation] = set()
        # Invokes that have waited WARM_PATIENCE_S on an environment not ready yet, with that environment: the first
        # environment of their tenant to become idle takes them (if theirs has not delivered them by then).
        self._impatient: dict[Invocation, Environment] = {}
        self._warm_delay_s = 0.0  # how long keeping warm waits before starting an environment, after failed inits
        self._warm_timer: Timer | None = None

    def start(self) -> None:
        """Pre-warm the environments ``--init-eagerly`` asks for."""
        self._keep_warm()

    def submit(self, request: Invoke, sink: ResponseSink) -> Invocation:
        """Start ``request``; its response (or error) goes to ``sink``."""
        invocation = Invocation(request, sink, self._config.function.version)
        if not self._accepting:
            invocation.reject(503, ServiceError.SERVICE, "pyrie is shutting down")
            return invocation
        refused = refusal(request, self._config.function, self._settings.tenant_isolation)
        if refused is not None:
            invocation.reject(refused.status, refused.code, refused.message)
        elif request.invocation_type == "DryRun":
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
            if env.state is EnvState.IDLE or (env.state is EnvState.STARTING and not env.has_pending):
                env.retire("code changed")
        self._keep_warm()

    def status(self) -> Status:
        """What /healthz shows: the function and each environment's state. Starts and uses nothing."""
        function = self._config.function
        return Status(
            function=function.name,
            version=function.version,
            max_concurrency=self._settings.max_concurrency,
            environments=tuple(
                EnvironmentStatus(env.name, env.state.value, env.runtime_state.value, env.in_flight, env.tenant)
                for env in self._environments
            ),
        )

    def shutdown(self, grace_s: float) -> None:
        """Refuse new invokes, give running ones up to ``grace_s`` to finish, then end every environment (each
        teardown bounded); returns within ``grace_s`` plus one teardown."""
        self._accepting = False
        if self._warm_timer is not None:
            self._warm_timer.cancel()
        for event in self._events.drain():
            log.warning("Event invoke %s dropped: pyrie is shutting down", event.request_id)
        with gevent.Timeout(grace_s, False):
            for invocation in list(self._in_flight):
                invocation.finished.wait()
        environments = list(self._environments)
        for env in environments:
            env.retire("SandboxTerminated")
        gevent.wait([env.gone for env in environments], timeout=TEARDOWN_S)

    # -- what the environments report (from the reactor) ----------------------------------------------------------

    def environment_idle(self, env: Environment) -> None:
        """``env`` has room for an invoke (idle, or, taking several at once, below its concurrency)."""
        if self._warm_delay_s:
            log.info("%s initialised: environments kept warm start without delay again", env.name)
            self._warm_delay_s = 0.0
        if not env.accepting or env.state is EnvState.STARTING:
            return  # it has moved on since (an invoke was assigned meanwhile, or it is going)
        if env.generation != self._generation:
            if env.state is EnvState.IDLE:
                env.retire("code changed")
            return
        self._take_impatient(env)
        if self._events and self._accepting:
            # Placed as any invoke is: with tenant isolation only on an environment of its tenant (or one nobody has
            # claimed), which may mean retiring this one to make room.
            self._run_events()
        idle = env.state is EnvState.IDLE and not env.has_pending
        if idle and self._settings.idle_timeout_s > 0 and env not in self._idle_timers:
            self._idle_timers[env] = Timer(self._settings.idle_timeout_s, self._retire_if_idle, env)

    def environment_gone(self, env: Environment, orphans: list[Invocation]) -> None:
        self._cancel_idle_timer(env)
        if env in self._environments:
            self._environments.remove(env)
        if env.address is not None:
            self._ports.release(env.address.port)
        if env.failed_to_initialise:
            self._back_off(env)
        for orphan in orphans:
            if orphan.finished.is_set():
                continue
            if not self._accepting:
                orphan.reject(503, ServiceError.SERVICE, "pyrie is shutting down")
            elif orphan.request.invocation_type == "Event":
                self._events.put_back(orphan)
            else:
                self._place(orphan)
        if self._accepting:
            self._run_events()
            self._keep_warm()

    # -- placement ------------------------------------------------------------------------------------------------

    def _place(self, invocation: Invocation) -> None:
        env = self._acquire(self._tenant_of(invocation))
        if env is None:
            invocation.reject(
                429, ServiceError.TOO_MANY_REQUESTS, "Rate Exceeded.", {"Retry-After": "1"}, Reason=THROTTLE_REASON
            )
            return
        fresh = not env.started
        self._run_on(env, invocation)
        # An invoke left waiting on an environment that was not started for it (one finishing its last invoke, one
        # still initialising) is given a chance elsewhere if that takes long; one a Managed Instances environment
        # handed to a waiting worker at once is running already.
        if not fresh and env.is_waiting(invocation):
            Timer(WARM_PATIENCE_S, self._patience_over, env, invocation)

    def _patience_over(self, env: Environment, invocation: Invocation) -> None:
        """``invocation`` may still wait on ``env``: from now on it runs on whichever environment of its tenant is
        ready first, ``env`` or another, and one is started for it if one may be."""
        if not self._accepting or not env.is_waiting(invocation):
            return
        log.debug("%s is slow to take %s; it goes to whichever environment is ready first", env.name, invocation)
        self._impatient[invocation] = env
        tenant = self._tenant_of(invocation)
        for other in self._environments:
            if other.state is EnvState.IDLE and other.generation == self._generation and other.tenant in (tenant, None):
                self._take_impatient(other)
                if invocation not in self._impatient:
                    return
        if self._can_start() or (tenant is not None and self._make_room(tenant)):
            new = self._new_environment(tenant)
            if new is not None:
                new.start()  # once initialised, it is idle and takes the invoke if it still waits (environment_idle)

    def _take_impatient(self, env: Environment) -> None:
        """``env`` is ready: it takes the invokes that have waited too long elsewhere, oldest first, while it has room
        (those their environment has delivered meanwhile are forgotten)."""
        for invocation, holder in list(self._impatient.items()):
            if not env.accepting:
                return
            if holder is env or env.tenant not in (self._tenant_of(invocation), None):
                continue
            del self._impatient[invocation]
            if holder.withdraw(invocation):
                log.debug("%s takes %s, which waited on %s", env.name, invocation, holder.name)
                if env.tenant is None:
                    env.tenant = self._tenant_of(invocation)
                self._run_on(env, invocation)

    def _queue_event(self, invocation: Invocation) -> None:
        full = self._events.full_for(len(invocation.request.payload))
        if full is not None:
            invocation.reject(
                429,
                ServiceError.TOO_MANY_REQUESTS,
                f"Rate Exceeded: {full}.",
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
            env = self._acquire(self._tenant_of(self._events.peek()))
            if env is None:
                return
            invocation = self._events.take()
            log.debug("Event invoke %s goes to %s", invocation.request_id, env.name)
            self._run_on(env, invocation)

    def _acquire(self, tenant: str | None) -> Environment | None:
        """The environment that takes one more invoke of ``tenant`` (a new one, bound but not started, when that
        ranks first); ``None`` when every one is taken and no more may be started. With tenant isolation only an
        environment of that tenant (or one nobody has claimed yet) will do, and a new tenant that finds no room
        gets an idle environment of another tenant retired to make it. An environment of code older than the
        pool's (``--watch``) takes no more."""
        best: Environment | None = None
        rank = _NEW if self._can_start() else _NEW + 1
        for env in self._environments:
            if env.tenant not in (tenant, None) or not env.accepting:
                continue
            if env.generation != self._generation:
                continue  # its code is old (--watch): it finishes what it has, and goes
            if (order := _RANK.get(env.state, _NEW + 1)) < rank:
                best, rank = env, order
                if order == 0:
                    break
        if best is None and rank > _NEW and tenant is not None:
            rank = _NEW if self._make_room(tenant) else rank
        if best is None and rank == _NEW:
            best = self._new_environment(tenant)
        if best is not None and best.tenant is None:
            best.tenant = tenant  # a warm environment nobody had claimed is now this tenant's
        return best

    def _make_room(self, tenant: str) -> bool:
        """Retire an idle environment of another tenant so that one of ``tenant`` may start; whether one was."""
        idle = [env for env in self._environments if env.state is EnvState.IDLE and env.tenant != tenant]
        if not idle:
            return False
        victim = min(idle, key=lambda env: env.machine.changed_at)  # idle the longest
        victim.retire(f"room for tenant {tenant}")
        return True

    def _tenant_of(self, invocation: Invocation) -> str | None:
        """The tenant whose environments ``invocation`` may use: its own with tenant isolation, else anyone's."""
        return invocation.request.tenant_id if self._settings.tenant_isolation else None

    def _run_on(self, env: Environment, invocation: Invocation) -> None:
        self._track(invocation)
        self._cancel_idle_timer(env)
        env.assign(invocation)
        if not env.started:
            env.start()

    def _can_start(self) -> bool:
        return self._live_count() < self._settings.max_concurrency

    def _live_count(self) -> int:
        """Environments that count against the limit: all but those being torn down."""
        return sum(1 for env in self._environments if not env.closing)

    def _new_environment(self, tenant: str | None = None) -> Environment | None:
        """A new environment with its Runtime API bound (not yet started), or None when no address is free."""
        self._started += 1
        function = self._config.function
        kind: type[Environment] = SerialEnvironment
        if function.concurrency is not None:
            kind = ConcurrentEnvironment
        elif function.snapstart is not None:
            kind = SnapStartEnvironment
        env = kind(
            self._started,
            self._config,
            self._log,
            self._reactor,
            self,
            processes=self._containment.environment(f"environment-{self._started}"),
            generation=self._generation,
            tenant=tenant,
        )
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
        """Keep ``--min-environments`` environments alive when ``--init-eagerly`` is on (after failed inits, a
        while later)."""
        if not self._accepting or self._warm_timer is not None:
            return
        if self._warm_delay_s and self._live_count() < self._settings.warm_minimum:
            self._warm_timer = Timer(self._warm_delay_s, self._keep_warm_now)
            return
        self._keep_warm_now()

    def _keep_warm_now(self) -> None:
        self._warm_timer = None
        if not self._accepting:
            return
        # Counted once: an environment whose start fails at once (its exec) is closing before the next is started,
        # and is replaced when the pool hears of its end.
        for _ in range(self._settings.warm_minimum - self._live_count()):
            env = self._new_environment()
            if env is None:
                return
            env.start(eager=True)

    def _back_off(self, env: Environment) -> None:
        """``env`` failed its init: the next environment kept warm waits longer."""
        if not self._settings.warm_minimum:
            return
        if not self._warm_delay_s:
            log.warning(
                "%s failed to initialise: environments kept warm (--init-eagerly) now start after a delay, doubling up "
                "to %g s, until one initialises",
                env.name,
                WARM_RETRY_MAX_S,
            )
        self._warm_delay_s = min(self._warm_delay_s * 2 or WARM_RETRY_FIRST_S, WARM_RETRY_MAX_S)

    def _track(self, invocation: Invocation) -> None:
        if invocation in self._in_flight:
            return  # moved to another environment: tracked already
        self._in_flight.add(invocation)
        invocation.finished.rawlink(lambda _event: self._finished(invocation))

    def _finished(self, invocation: Invocation) -> None:
        self._in_flight.discard(invocation)
        self._impatient.pop(invocation, None)

    def _retire_if_idle(self, env: Environment) -> None:
        self._idle_timers.pop(env, None)
        if env.state is EnvState.IDLE and self._live_count() > self._settings.warm_minimum:
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
