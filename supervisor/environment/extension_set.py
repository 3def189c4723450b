"""The extensions of one execution environment (rie-behaviour.md §3.3, §5, §7): launch, registration, events.

External extensions are the files of the extensions directory (default ``/opt/extensions``), each started with no
arguments in its own process group before the runtime, with the extension environment of rie-behaviour.md §3.3; each
must register under its file name. Any other name registering is an internal extension (one the runtime process
started), which may only subscribe to INVOKE. Registration closes at the runtime's first ``/next``.

An extension blocked in ``/event/next`` is Ready; it is handed the next event it subscribed to (INVOKE, SHUTDOWN) and
is Running until it calls ``/event/next`` again. The environment waits for every extension to be Ready before init
ends, and for every INVOKE subscriber to be Ready again before the next invoke.

Shutdown (``shutdown``): SHUTDOWN subscribers get ``{"eventType":"SHUTDOWN","deadlineMs":now+2000,...}`` and two
seconds to exit; the others, and any still running at the deadline, get SIGKILL. The reasons are Lambda's documented
spellings (``spindown``, ``timeout``, ``failure``), not the Go emulator's ``Timeout``/``ReleaseFail``/
``SandboxTerminated``: extension libraries compare against Lambda's (New Relic's extension and AWS's Go sample
extension define ``Timeout ShutdownReason = "timeout"`` and ``Failure = "failure"``).
"""

from __future__ import annotations

import enum
import functools
import json
import logging
import os
import signal
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

import gevent
import gevent.event

from pyrie_core.function_names import ACCOUNT_ID
from pyrie_core.machine import InvalidTransition, Machine
from runtime_api.extension_states import ExtensionState, extension_machine
from runtime_api.registration import EXTENSION_LIMIT, INVOKE, SHUTDOWN, ExtensionError, ExtensionEvent, check_events
from runtime_api.runtime_api_server import Parking
from supervisor.config import FunctionConfig
from supervisor.observe.telemetry_events import encode_event
from supervisor.processes.containment import EnvironmentProcesses
from supervisor.processes.managed_process import ManagedProcess

__all__ = [
    "DISABLE_EXTENSIONS_FILE",
    "SHUTDOWN_DEADLINE_S",
    "Extension",
    "ExtensionSet",
    "LaunchError",
    "ShutdownReason",
    "discover",
    "extension_paths",
    "invoke_event",
    "shutdown_event",
]

log = logging.getLogger(__name__)

SHUTDOWN_DEADLINE_S: Final = 2.0
# The Go emulator turns the Extensions API off when this file exists (rapid/sandbox.go: disableExtensionsFile).
DISABLE_EXTENSIONS_FILE: Final = "/opt/disable-extensions-jwigqn8j"


class ShutdownReason(enum.StrEnum):
    SPINDOWN = "spindown"  # pyrie stops, or an init failed
    TIMEOUT = "timeout"
    FAILURE = "failure"  # a crash, an extension's error


class LaunchError(Exception):
    """An external extension could not be started; init fails with ``Extension.LaunchError``."""


# -- pure pieces ---------------------------------------------------------------------------------------------------


def discover(directory: str) -> list[str] | None:
    """The external extensions in ``directory``: its entries that are not directories, by name (Go's ReadDir
    order; the execute bit is not checked). ``None`` when the directory does not exist."""
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return [entry.path for entry in entries if not entry.is_dir()]


def invoke_event(deadline_ms: int, request_id: str, function_arn: str, trace_id: str | None) -> bytes:
    """The INVOKE event (rie-behaviour.md §7), keys in Go's order, no trailing newline."""
    body: dict[str, Any] = {
        "eventType": INVOKE,
        "deadlineMs": deadline_ms,
        "requestId": request_id,
        "invokedFunctionArn": function_arn,
    }
    if trace_id:
        body["tracing"] = {"type": "X-Amzn-Trace-Id", "value": trace_id}
    return encode_event(body)


def shutdown_event(deadline_ms: int, reason: ShutdownReason) -> bytes:
    return encode_event({"eventType": SHUTDOWN, "deadlineMs": deadline_ms, "shutdownReason": reason.value})


# -- one extension -------------------------------------------------------------------------------------------------


class Extension:
    def __init__(self, name: str, external: bool) -> None:
        self.id = str(uuid.uuid4())
        self.name = name
        self.external = external
        self.machine: Machine[ExtensionState] = extension_machine(name)
        self.events: frozenset[str] = frozenset()
        self.process: ManagedProcess | None = None
        self.fatal: str | None = None  # Extension.InitError or Extension.ExitError, once it reported one
        self._queue: list[ExtensionEvent] = []
        self._arrived = gevent.event.Event()

    @property
    def state(self) -> ExtensionState:
        return self.machine.state

    @property
    def waiting(self) -> bool:
        """Blocked in ``/event/next`` with nothing to hand it: done with its last event."""
        return self.machine.state is ExtensionState.READY and not self._queue

    def offer(self, event: ExtensionEvent) -> None:
        """Queue ``event``; the extension gets it now if it waits in ``/event/next``, else at its next call."""
        self._queue.append(event)
        self._arrived.set()

    def next_event(self, parking: Parking) -> ExtensionEvent:
        """Block (in ``/event/next``, the extension now Ready, its connection parked) until an event comes; it is
        then Running."""
        while not self._queue:
            self._arrived.clear()
            parking.park()
            try:
                self._arrived.wait()
            finally:
                parking.unpark()
        event = self._queue.pop(0)
        self.machine.transition(ExtensionState.RUNNING)  # Ready -> Running
        return event

    def __repr__(self) -> str:
        kind = "external" if self.external else "internal"
        return f"<Extension {self.name} {kind} {self.machine.state.name}>"


# -- the set of an environment's extensions ------------------------------------------------------------------------


class ExtensionSet:
    def __init__(
        self,
        *,
        index: int,
        function: FunctionConfig,
        paths: list[str] | None,
        on_output: Callable[[bytes], None],
        on_exit: Callable[[Extension, int], None],
        wait_for_room: Callable[[], None] | None = None,
        invoke_events: bool = True,
        members: EnvironmentProcesses | None = None,
    ) -> None:
        """``paths`` are the external extensions to launch; ``None`` when the Extensions API is off (its routes then
        answer 404, as the Go emulator's do with the disable file)."""
        self.enabled = paths is not None
        self._index = index
        self._function = function
        self._paths = paths or []
        self._on_output = on_output
        self._on_exit = on_exit
        self._wait_for_room = wait_for_room
        self._invoke_events = invoke_events  # INVOKE may be subscribed to (not with Managed Instances)
        self._members = members  # the environment's processes, which the extensions' are
        self._extensions: list[Extension] = []
        self._registration_open = True
        self.all_registered = gevent.event.Event()  # every external extension has registered (or failed)

    @property
    def present(self) -> bool:
        return bool(self._extensions)

    def __iter__(self) -> Any:
        return iter(list(self._extensions))

    # -- launch and registration --------------------------------------------------------------------------------

    def launch(self, env: Mapping[str, str]) -> None:
        """Start every external extension with environment ``env``; ``LaunchError`` if one cannot be started or
        there are too many."""
        if len(self._paths) > EXTENSION_LIMIT:
            raise LaunchError(f"Extension limit ({EXTENSION_LIMIT}) reached: {len(self._paths)} extensions")
        for path in self._paths:
            extension = Extension(os.path.basename(path), external=True)
            self._extensions.append(extension)
            try:
                extension.process = ManagedProcess(
                    name=f"extension-{extension.name}-{self._index}",
                    argv=[path],
                    cwd=os.getcwd(),
                    env=env,
                    on_output=self._on_output,
                    on_exit=functools.partial(self._on_exit, extension),
                    wait_for_room=self._wait_for_room,
                    members=self._members,
                )
            except OSError as exc:
                extension.machine.transition(ExtensionState.LAUNCH_ERROR)  # Started -> LaunchError
                raise LaunchError(f"fork/exec {path}: {exc.strerror}") from exc
        self._check_registered()

    def register(self, name: str, events: list[str], with_account: bool) -> tuple[Extension, bytes]:
        """Register ``name`` (``/extension/register``): the extension and the response body, or ``ExtensionError``."""
        extension = next((e for e in self._extensions if e.external and e.name == name), None)
        check_events(events, external=extension is not None, invoke=self._invoke_events)
        if extension is not None:
            try:
                extension.machine.transition(ExtensionState.REGISTERED)  # Started -> Registered
            except InvalidTransition as refused:
                raise ExtensionError("Extension.InvalidExtensionState", str(refused)) from None
        else:
            if not self._registration_open:
                raise ExtensionError("Extension.RegistrationClosed", "Extension registration closed already")
            if any(e.name == name for e in self._extensions):
                raise ExtensionError("Extension.InvalidExtensionState", "Extension with this name already registered")
            if len(self._extensions) >= EXTENSION_LIMIT:
                raise ExtensionError("Extension.TooManyExtensions", f"Extension limit ({EXTENSION_LIMIT}) reached")
            extension = Extension(name, external=False)
            extension.machine.transition(ExtensionState.REGISTERED)  # Started -> Registered
            self._extensions.append(extension)
        extension.events = frozenset(events)
        log.info("extension %s registered (%s), subscribed to %s", name, extension.id, ", ".join(events) or "nothing")
        self._check_registered()
        function = self._function
        response: dict[str, str] = {
            "functionName": function.name,
            "functionVersion": function.version,
            "handler": function.handler or "",
        }
        if with_account:
            response["accountId"] = ACCOUNT_ID
        return extension, json.dumps(response, separators=(",", ":")).encode() + b"\n"

    def find(self, ident: str) -> Extension | None:
        return next((e for e in self._extensions if e.id == ident), None)

    def close_registration(self) -> None:
        self._registration_open = False

    def _check_registered(self) -> None:
        if all(e.state is not ExtensionState.STARTED for e in self._extensions if e.external):
            self.all_registered.set()

    # -- events -------------------------------------------------------------------------------------------------

    def all_ready(self) -> bool:
        """Every extension has called ``/event/next`` and waits there (the end of init)."""
        return all(e.waiting for e in self._extensions)

    def invoke_done(self) -> bool:
        """Every INVOKE subscriber is back in ``/event/next`` (an extension that reported its exit is not waited
        for: it will not come back)."""
        return all(
            e.waiting for e in self._extensions if INVOKE in e.events and e.state is not ExtensionState.EXIT_ERROR
        )

    def deliver_invoke(self, body: bytes) -> None:
        for extension in self._extensions:
            if INVOKE in extension.events:
                extension.offer(ExtensionEvent(body, str(uuid.uuid4())))

    # -- shutdown -----------------------------------------------------------------------------------------------

    def shutdown(self, reason: ShutdownReason, deadline_s: float = SHUTDOWN_DEADLINE_S) -> None:
        """SHUTDOWN to its subscribers and ``deadline_s`` to exit; SIGKILL for the others, and at the deadline."""
        body = shutdown_event(int(time.time() * 1000 + deadline_s * 1000), reason)
        deadline = time.monotonic() + deadline_s
        for extension in self._extensions:
            process = extension.process
            if SHUTDOWN in extension.events and process is not None and process.running:
                extension.offer(ExtensionEvent(body, None))
            elif process is not None:
                process.signal_group(signal.SIGKILL)
        for extension in self._extensions:
            process = extension.process
            if process is None:
                continue
            if process.wait(timeout=max(deadline - time.monotonic(), 0)) is None:
                log.info("extension %s did not exit by its SHUTDOWN deadline; killing it", extension.name)
                _move(extension, ExtensionState.SHUTDOWN_FAILED)
            else:
                _move(extension, ExtensionState.EXITED)
            process.stop()  # SIGKILL to its group: whatever it left running goes too

    def flush_output(self) -> None:
        """Relay the lines the extensions have written so far."""
        for extension in self._extensions:
            if extension.process is not None:
                extension.process.flush_output()


def _move(extension: Extension, target: ExtensionState) -> None:
    if extension.machine.can(target):
        extension.machine.transition(target)


def extension_paths(directory: str) -> list[str] | None:
    """The external extensions to launch; ``None`` when the Go emulator's disable file turns extensions off."""
    if os.path.exists(DISABLE_EXTENSIONS_FILE):
        return None
    paths = discover(directory)
    if paths is None:
        _note_no_extensions_dir(directory)
        return []
    return paths


@functools.lru_cache(maxsize=8)
def _note_no_extensions_dir(directory: str) -> None:
    """Say it once per directory, not at every environment's start (the Go emulator's line)."""
    log.info('The extension\'s directory "%s" does not exist, assuming no extensions to be loaded.', directory)
