"""Placing invokes on execution environments: an idle one, one about to be free, a new one, or a throttle.

For now pyrie keeps one execution environment (the pool of many comes later); the dispatcher already chooses among
a list of them, so the pool only changes how many it may start and where their Runtime APIs listen.
"""

from __future__ import annotations

import logging

import gevent

from supervisor.config import Config
from supervisor.environment import Environment
from supervisor.errors import ServiceError
from supervisor.functions import InvalidFunctionName, parse_function_ref, resolves_to
from supervisor.invocation import Invocation, ResponseSink
from supervisor.logs import FunctionLog
from supervisor.messages import Invoke
from supervisor.states import EnvState

__all__ = ["Dispatcher"]

log = logging.getLogger(__name__)

INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
LOG_TYPES = ("None", "Tail")


class Dispatcher:
    def __init__(self, config: Config, function_log: FunctionLog) -> None:
        self._config = config
        self._log = function_log
        self._environments: list[Environment] = []
        self._max_environments = 1
        self._started = 0  # environments started so far (their names count up)
        self._accepting = True
        self._in_flight: set[Invocation] = set()

    @property
    def environments(self) -> list[Environment]:
        return list(self._environments)

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
        if not resolves_to(ref, function):
            qualified = f"{function.arn.rpartition(':')[0]}:{ref.name}:{ref.qualifier or '$LATEST'}"
            invocation.reject(404, ServiceError.NOT_FOUND, f"Function not found: {qualified}")
            return invocation
        if request.invocation_type not in INVOCATION_TYPES:
            invocation.reject(
                400,
                ServiceError.INVALID_PARAMETER,
                f"1 validation error detected: Value '{request.invocation_type}' at 'invocationType' failed to "
                f"satisfy constraint: Member must satisfy enum value set: [{', '.join(INVOCATION_TYPES)}]",
            )
            return invocation
        if request.log_type not in LOG_TYPES:
            invocation.reject(
                400,
                ServiceError.INVALID_PARAMETER,
                f"1 validation error detected: Value '{request.log_type}' at 'logType' failed to satisfy "
                f"constraint: Member must satisfy enum value set: [{', '.join(LOG_TYPES)}]",
            )
            return invocation
        if request.invocation_type == "DryRun":
            invocation.acknowledge(204)
            return invocation
        self._place(invocation)
        return invocation

    def shutdown(self, grace_s: float) -> None:
        """Refuse new invokes, give running ones up to ``grace_s`` to finish, then end every environment."""
        self._accepting = False
        with gevent.Timeout(grace_s, False):
            for invocation in list(self._in_flight):
                invocation.finished.wait()
        for env in list(self._environments):
            env.shutdown()

    # -- EnvironmentObserver ------------------------------------------------------------------------------------

    def environment_idle(self, env: Environment) -> None:
        log.debug("%s is idle", env.name)

    def environment_gone(self, env: Environment, orphan: Invocation | None) -> None:
        if env in self._environments:
            self._environments.remove(env)
        if orphan is None or orphan.finished.is_set():
            return
        if self._accepting:
            self._place(orphan)
        else:
            orphan.reject(503, ServiceError.SERVICE, "pyrie is shutting down")

    # -- placement ----------------------------------------------------------------------------------------------

    def _place(self, invocation: Invocation) -> None:
        env = self._choose()
        if env is None and self._live_count() < self._max_environments:
            self._new_environment(invocation)
            return
        if env is None:
            invocation.reject(
                429,
                ServiceError.TOO_MANY_REQUESTS,
                "Rate Exceeded.",
                headers={"Retry-After": "1"},
                Reason="ReservedFunctionConcurrentInvocationLimitExceeded",
            )
            return
        self._track(invocation)
        env.assign(invocation)

    def _choose(self) -> Environment | None:
        """An idle environment, else one about to be free (its invoke answered, its runtime not yet back)."""
        accepting = [env for env in self._environments if env.accepting]
        for env in accepting:
            if env.state is EnvState.IDLE:
                return env
        return accepting[0] if accepting else None

    def _live_count(self) -> int:
        """Environments that count against the limit: all but those being torn down."""
        return sum(1 for env in self._environments if env.state not in (EnvState.RESETTING, EnvState.GONE))

    def _new_environment(self, invocation: Invocation) -> None:
        """Start an environment whose init ``invocation`` waits for."""
        self._started += 1
        address = self._config.runtime_api_address
        env = Environment(self._started, self._config, address, self._log, self)
        self._environments.append(env)
        self._track(invocation)
        env.assign(invocation)
        try:
            env.start()
        except OSError as exc:
            log.error("%s cannot listen on %s: %s", env.name, address, exc)
            invocation.reject(500, ServiceError.SERVICE, f"the Runtime API cannot listen on {address}: {exc.strerror}")
            env.reset("no Runtime API")

    def _track(self, invocation: Invocation) -> None:
        self._in_flight.add(invocation)
        invocation.finished.rawlink(lambda _event: self._in_flight.discard(invocation))
