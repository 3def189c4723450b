"""An environment's SnapStart side as its Runtime API sees it (``runtime_api.host.SnapStart``): where the runtime's
``/restore/next`` waits for the restore, where its ``/restore/error`` is passed on, and the container credentials
endpoint's lookup.

The handlers move the runtime's machine (Started -> RestoreReady, Restoring -> RuntimeRestoreErrorState); the
environment moves it once more when it restores (RestoreReady -> Restoring, ``release``), which lets the waiting
``/restore/next`` return. The facts go to the environment, which acts on them afterwards (``supervisor.reactor``).
"""

from __future__ import annotations

import time
from typing import Final, Protocol

import gevent.event

from pyrie_core.machine import Machine
from runtime_api.host import ContainerCredentials
from runtime_api.http_connection import ConnectionClosed
from runtime_api.runtime_states import RuntimeState
from supervisor.config import SnapStartConfig

__all__ = ["CREDENTIALS_LIFETIME_S", "SnapStartEvents", "SnapStartSide"]

# The credentials endpoint's Expiration is this far ahead of each request: always in the future, never stale, and
# far enough for the SDKs' refresh windows (botocore refreshes 15 minutes before it).
CREDENTIALS_LIFETIME_S: Final = 3600.0


class SnapStartEvents(Protocol):
    """What the environment is told by its SnapStart side."""

    @property
    def closing(self) -> bool: ...

    def restore_ready(self) -> None:
        """The runtime waits in ``/restore/next``: its init, its before-snapshot hooks included, is done."""
        ...

    def restore_failed(self, error_type: str) -> None:
        """The runtime reported that its after-restore hooks failed (``/restore/error``)."""
        ...


class SnapStartSide:
    def __init__(self, config: SnapStartConfig, runtime: Machine[RuntimeState], events: SnapStartEvents) -> None:
        self._config = config
        self._runtime = runtime
        self._events = events
        self._released = gevent.event.Event()  # set when the environment restores, or when it closes
        self.parked = 0  # Runtime API connections waiting in /restore/next

    def restore_next(self) -> None:
        self._events.restore_ready()
        while self._runtime.state is RuntimeState.RESTORE_READY:
            if self._events.closing:
                raise ConnectionClosed("the environment was reset")
            self.parked += 1
            try:
                self._released.wait()
            finally:
                self.parked -= 1
        if self._events.closing:
            raise ConnectionClosed("the environment was reset")

    def release(self) -> None:
        """The environment is restored: the runtime's ``/restore/next`` returns (RestoreReady -> Restoring)."""
        self._runtime.transition(RuntimeState.RESTORING)
        self._released.set()

    def close(self) -> None:
        """The environment is going: a runtime waiting in ``/restore/next`` gives up."""
        self._released.set()

    def restore_failed(self, error_type: str) -> None:
        self._events.restore_failed(error_type)

    def credentials(self, token: str) -> ContainerCredentials | None:
        config = self._config
        import hmac  # noqa: PLC0415 - only init caching needs it, and it loads OpenSSL (3 MiB)

        if not hmac.compare_digest(token.encode(), config.token.encode()):
            return None
        expiration = time.time() + CREDENTIALS_LIFETIME_S
        return ContainerCredentials(config.access_key_id, config.secret_access_key, config.session_token, expiration)
