"""An environment's runtime process and what watches it: its output relayed line by line, its exit reported, and
its memory sampled (``MemoryGuard``)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pyrie_core.address import Address
from supervisor.config import FunctionConfig
from supervisor.environment.memory_guard import MemoryGuard
from supervisor.processes.containment import EnvironmentProcesses
from supervisor.processes.managed_process import ManagedProcess

__all__ = ["RuntimeProcess"]

log = logging.getLogger(__name__)


class RuntimeProcess:
    def __init__(
        self,
        index: int,
        function: FunctionConfig,
        *,
        on_output: Callable[[bytes], None],
        on_exit: Callable[[int], None],
        wait_for_room: Callable[[], None],
        on_out_of_memory: Callable[[int], None],
        members: EnvironmentProcesses,
    ) -> None:
        self._index = index
        self._function = function
        self._on_output = on_output
        self._on_exit = on_exit
        self._wait_for_room = wait_for_room
        self._working = True  # whether its memory is watched: the environment works
        self._on_out_of_memory = on_out_of_memory
        self._members = members
        self._process: ManagedProcess | None = None
        self._memory: MemoryGuard | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def peak_mb(self) -> int:
        """The largest resident size of its tree so far (REPORT's Max Memory Used)."""
        return self._memory.peak_mb if self._memory is not None else 0

    def start(self, address: Address) -> None:
        """Spawn the runtime with ``address`` as its Runtime API; ``OSError`` when it cannot be executed."""
        function = self._function
        self._process = ManagedProcess(
            name=f"runtime-{self._index}",
            argv=function.command,
            cwd=function.cwd,
            env=function.runtime_env(address),
            on_output=self._on_output,
            on_exit=self._on_exit,
            wait_for_room=self._wait_for_room,
            members=self._members,
        )
        self._memory = MemoryGuard(self._process.pid, function.memory_mb, self._on_out_of_memory, self._members)
        if not self._working:
            self._memory.rest()

    def sample_memory(self) -> None:
        if self._memory is not None:
            self._memory.sample()

    def watch_memory(self, working: bool) -> None:
        """Whether the environment works (initialises, restores, runs an invoke): its memory is sampled only then."""
        self._working = working
        if self._memory is not None:
            if working:
                self._memory.watch()
            else:
                self._memory.rest()

    def flush_output(self) -> None:
        """Relay the lines it has written so far."""
        if self._process is not None:
            self._process.flush_output()

    def stop(self, grace_s: float) -> None:
        """SIGTERM, ``grace_s`` to exit, then SIGKILL to its process group and every descendant. A runtime that has
        exited already only has its group killed. Either way its output relay ends (``ManagedProcess.stop``)."""
        process, memory = self._process, self._memory
        if memory is not None:
            memory.stop()
        if process is None:
            return
        if not process.running:
            process.stop()  # SIGKILL to its group, and the relay ended
            return
        log.debug("%s: SIGTERM, and SIGKILL %.2f s later", process.name, grace_s)
        process.stop(grace_s, also=memory.tree.processes() if memory is not None else [])
