"""A child process in its own process group, its output relayed line by line, its exit reported once.

It is started by the standard library's ``subprocess`` (``vfork`` and C code up to the exec: no Python runs in the
child, which is what makes starting a process safe while the supervisor has threads), in a process group of its own,
with nothing of the supervisor's but its output pipe. Kills go to the whole group (the runtime and anything it
started), SIGTERM first when a grace period is given, then SIGKILL; gevent's SIGCHLD watcher reaps, so nothing is left
as a zombie. Given the ``EnvironmentProcesses`` of its environment, it carries the environment's mark and joins its
cgroup once it has exec'd (``supervisor.processes.containment``, which also says what ends it if the supervisor dies);
one started for an environment that has ended is killed as soon as it exists.

Output (stdout and stderr, one pipe) is read by a greenlet as it arrives; ``flush_output`` also takes whatever the
pipe holds right now, so a caller can put the function's last lines before the END line that follows them. ``stop``
ends that greenlet, even one waiting for room, once the process has exited: what the pipe holds then is relayed, and
the pipe closed.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import struct
import subprocess
import termios
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

import gevent
import gevent.event
import gevent.socket
import psutil

if TYPE_CHECKING:
    from supervisor.processes.containment import EnvironmentProcesses

__all__ = ["ManagedProcess"]

log = logging.getLogger(__name__)

# A line longer than this is passed on in pieces rather than held whole.
MAX_LINE: Final = 64 * 1024
# After SIGKILL, ``stop`` waits this long for the exit to be reaped.
EXIT_WAIT_S: Final = 1.0


class ManagedProcess:
    def __init__(
        self,
        *,
        name: str,
        argv: Sequence[str],
        cwd: str,
        env: Mapping[str, str],
        on_output: Callable[[bytes], None],
        on_exit: Callable[[int], None],
        wait_for_room: Callable[[], None] | None = None,
        members: EnvironmentProcesses | None = None,
    ) -> None:
        """Start the process; raises ``OSError`` when it cannot be executed. ``wait_for_room``, when given, is called
        before each read of the output pipe: while it waits, the pipe is not read and the process slows down.
        ``members``: the processes of the environment it belongs to."""
        self.name = name
        read_end, write_end = os.pipe()
        try:
            # Returns once the child has exec'd (or failed to: then it raises), without yielding to the loop.
            self._popen = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=members.environ(env) if members is not None else dict(env),
                stdin=subprocess.DEVNULL,
                stdout=write_end,
                stderr=write_end,
                process_group=0,
                close_fds=True,
            )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        os.set_blocking(read_end, False)
        self.pid: int = self._popen.pid
        # Its exit, from gevent's child watcher (which reaps every child of the supervisor); the Popen object is kept,
        # and given the exit status, so that the standard library never tries to reap it too.
        self._exit_status: gevent.event.AsyncResult[int] = gevent.event.AsyncResult()
        self._child = gevent.get_hub().loop.child(self.pid, False)
        self._child.start(self._child_exited)
        if members is not None:
            if members.ended:
                log.debug("%s (pid %d) started after its environment was ended: killed", name, self.pid)
                self.signal_group(signal.SIGKILL)
            else:
                members.started(self.pid)
        self.returncode: int | None = None
        self._on_output = on_output
        self._on_exit = on_exit
        self._wait_for_room = wait_for_room
        self._output_fd: int | None = read_end
        self._partial = bytearray()  # the start of a line whose newline has not arrived yet
        self._pump = gevent.spawn(self._relay_output)
        self._waiter = gevent.spawn(self._wait)
        log.debug("started %s (pid %d): %s", name, self.pid, " ".join(argv))

    @property
    def running(self) -> bool:
        return self.returncode is None

    def signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            pass  # the whole group is gone already
        except PermissionError:
            log.warning("not allowed to signal process group %d of %s", self.pid, self.name)

    def stop(self, grace_s: float = 0.0, also: Iterable[psutil.Process] = ()) -> None:
        """End the process group, and ``also`` processes that left it: SIGTERM and up to ``grace_s`` to exit, then
        SIGKILL. Returns once the leader has exited (or ``EXIT_WAIT_S`` after SIGKILL); the rest have been sent
        SIGKILL. ``EnvironmentProcesses.end`` ends everything the process started, wherever it went."""
        stragglers = [process for process in also if process.pid != self.pid]
        if grace_s > 0 and self.running:
            self.signal_group(signal.SIGTERM)
            _signal_each(stragglers, signal.SIGTERM)
            self._waiter.join(timeout=grace_s)
        self.signal_group(signal.SIGKILL)
        _signal_each(stragglers, signal.SIGKILL)
        if gevent.getcurrent() is not self._waiter:  # stop() may be called from the exit callback itself
            self._waiter.join(timeout=EXIT_WAIT_S)
            if self.running:
                log.warning("%s (pid %d) has not exited %.1f s after SIGKILL", self.name, self.pid, EXIT_WAIT_S)
        self._end_relay()

    def _end_relay(self) -> None:
        """End the output relay, which may be waiting for room (stdout's reader away) or for output that will not
        come: what the pipe holds now is relayed, then it is closed."""
        if gevent.getcurrent() is self._pump:  # stop() from an output callback: the relay ends at the pipe's end
            return
        self._pump.kill(block=True, timeout=EXIT_WAIT_S)  # its finally relays and closes; it never waits
        self._close_output()  # when the relay never ran (a greenlet killed before it starts runs nothing)

    def wait(self, timeout: float | None = None) -> int | None:
        self._waiter.join(timeout=timeout)
        return self.returncode

    def flush_output(self) -> None:
        """Relay the complete lines the pipe holds now, without waiting for more."""
        if self._output_fd is not None:
            self._read_available(_unread(self._output_fd))

    def _relay_output(self) -> None:
        try:
            while self._output_fd is not None:
                if self._wait_for_room is not None:
                    self._wait_for_room()
                try:
                    gevent.socket.wait_read(self._output_fd)
                except OSError:
                    break
                if not self._read_available(MAX_LINE):  # one read, then room is looked at again
                    break
        finally:  # the pipe's end, or stop() (GreenletExit)
            self._close_output()

    def _close_output(self) -> None:
        """Relay what the pipe holds now and the unfinished last line, then close the pipe; never waits."""
        fd = self._output_fd
        if fd is None:
            return
        try:
            self._read_available(_unread(fd))
            if self._partial:
                self._on_output(bytes(self._partial))
                self._partial.clear()
        finally:
            self._output_fd = None
            os.close(fd)

    def _read_available(self, limit: int) -> bool:
        """Read until the pipe is empty or about ``limit`` bytes are read (a process that keeps writing must not keep
        this reading: its output is read as fast as it can be written out, and the loop has other work), relaying
        whole lines; False once the pipe has closed."""
        assert self._output_fd is not None
        read = 0
        while read < limit:
            try:
                data = os.read(self._output_fd, MAX_LINE)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not data:
                return False
            read += len(data)
            buffer = self._partial
            buffer += data
            start = 0
            while (end := buffer.find(b"\n", start)) != -1:
                self._on_output(bytes(buffer[start : end + 1]))
                start = end + 1
            del buffer[:start]
            if len(buffer) >= MAX_LINE:  # a line too long to hold: pass it on in pieces
                self._on_output(bytes(buffer))
                buffer.clear()
        return True

    def _child_exited(self) -> None:
        # Runs in the hub: hand the status to the waiter greenlet.
        self._child.stop()
        self._exit_status.set(self._child.rstatus)

    def _wait(self) -> None:
        self.returncode = os.waitstatus_to_exitcode(self._exit_status.get())
        self._popen.returncode = self.returncode
        log.debug("%s (pid %d) exited: %s", self.name, self.pid, self.returncode)
        self._on_exit(self.returncode)

    def __repr__(self) -> str:
        return f"<ManagedProcess {self.name} pid={self.pid} returncode={self.returncode}>"


def _unread(fd: int) -> int:
    """How many bytes the pipe holds now."""
    try:
        return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])
    except OSError:
        return MAX_LINE


def _signal_each(processes: Iterable[psutil.Process], signum: int) -> None:
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(signum)  # psutil checks the pid was not reused by another process
