"""Running pyrie for real in tests: a subprocess on free loopback ports, its output captured, its exit checked.

``Pyrie`` starts ``python -m supervisor`` exactly as a user would start ``pyrie``, waits until the Invoke API answers,
and on ``stop`` sends SIGTERM and checks that pyrie exits 0 leaving no process of its tree behind.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil
import requests

from tests.cpu_wait import RunQueue

ROOT = Path(__file__).resolve().parent.parent
INVOKE_PATH = "/2015-03-31/functions/function/invocations"
# A runtime written against the Runtime API by hand, its behaviour chosen with RAW_SCENARIO (tests/runtimes).
RAW_RUNTIME = str(Path(__file__).parent / "runtimes" / "raw_runtime.py")


def dead(process: psutil.Process | int) -> bool:
    """Gone, or a zombie: orphans wait for PID 1 to reap them, which may take a while outside a container."""
    try:
        found = process if isinstance(process, psutil.Process) else psutil.Process(process)
        return found.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def environments(pyrie: Pyrie) -> list[dict[str, Any]]:
    """The execution environments ``/healthz`` lists."""
    return list(requests.get(f"{pyrie.url}/healthz", timeout=5).json()["environments"])


# Ports handed out by free_port and free_ports, held until the test ends (release_ports, called by tests/conftest.py).
_reserved: list[socket.socket] = []


def free_port() -> int:
    """A loopback port for a server a test starts (pyrie's listeners, gunicorn), reserved until the test ends.

    The port stays bound, not listening, with ``SO_REUSEADDR``: the kernel hands it to nobody else (``bind`` to port
    0 and a ``connect``'s own port never pick a bound port), while a server that sets ``SO_REUSEADDR`` too, as pyrie,
    gunicorn and gevent do, may still bind it and listen. Binding, closing and handing out the number would leave it
    free for any process until the server binds it. A server of the test's own binds port 0 instead."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` consecutive loopback ports, reserved as ``free_port``'s (pyrie's environments take the Runtime API
    port after the configured one when it is taken)."""
    while True:
        with contextlib.ExitStack() as closing:
            first = closing.enter_context(socket.socket())
            first.bind(("127.0.0.1", 0))
            base = int(first.getsockname()[1])
            held = [first]
            for port in range(base + 1, base + count):
                sock = closing.enter_context(socket.socket())
                try:
                    sock.bind(("127.0.0.1", port))  # without SO_REUSEADDR: fails if anyone holds the port at all
                except OSError:
                    break
                held.append(sock)
            else:
                for sock in held:
                    # Set after the bind: it lets a server with SO_REUSEADDR bind the port, not the kernel pick it.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                closing.pop_all()
                _reserved.extend(held)
                return list(range(base, base + count))


def release_ports() -> None:
    """Give back every port ``free_port`` and ``free_ports`` reserved."""
    while _reserved:
        _reserved.pop().close()


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.01, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def wait_answering(
    process: subprocess.Popen[bytes], url: str, stderr: Callable[[], str], what: str, timeout: float
) -> None:
    """Wait until the HTTP server at ``url`` answers (a 404 for a path nobody serves); fail at once if it exits."""

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited with {process.returncode}:\n{stderr()}")
        try:
            # The listener accepts at once (pyrie binds it first); gunicorn answers once it has booted.
            return requests.get(f"{url}/ready-probe", timeout=5).status_code == 404
        except (requests.ConnectionError, requests.Timeout):
            return False

    wait_until(answers, timeout, what=f"{what} to answer")


class Pyrie:
    def __init__(
        self,
        args: Sequence[str],
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        log_dir: Path,
        extra_env: Mapping[str, str] | None = None,
        flags_last: bool = False,
        port: int | None = None,
        paused_stdout: bool = False,
        descriptors: int | None = None,
        launcher: Sequence[str] = (sys.executable, "-m", "supervisor"),
        runtime_api_ports: int = 0,
    ) -> None:
        """With ``paused_stdout``, pyrie's stdout is a pipe that nobody reads until ``resume_stdout`` (then what it
        carries goes to ``stdout_path`` as usual). ``descriptors`` lowers the number of files pyrie may open (its
        soft ``RLIMIT_NOFILE``, as ``ulimit -n`` would). ``launcher`` is the command before pyrie's arguments (a
        test may run ``supervisor.__main__.main`` with one fault put in). The Runtime API listens on port 0 (each
        environment on a port of the kernel's choosing); ``runtime_api_ports=N`` reserves N consecutive ports and
        gives pyrie the first (``runtime_api_port``), for a test about the ports pyrie picks."""
        self.port = free_port() if port is None else port
        self.runtime_api_port = free_ports(runtime_api_ports)[0] if runtime_api_ports else 0
        self.url = f"http://127.0.0.1:{self.port}"
        base_env = dict(os.environ if env is None else env)
        base_env.update(extra_env or {})
        base_env.setdefault("PYRIE_WORKERS", "1")
        self.stdout_path = log_dir / f"pyrie-{self.port}.out"
        self.stderr_path = log_dir / f"pyrie-{self.port}.err"
        flags = [
            "--runtime-interface-emulator-address",
            f"127.0.0.1:{self.port}",
            "--runtime-api-address",
            f"127.0.0.1:{self.runtime_api_port}",
        ]
        self.argv = [*launcher, *((*args, *flags) if flags_last else (*flags, *args))]
        self._stdout = open(self.stdout_path, "wb")  # noqa: SIM115 (closed in stop)
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            self.argv,
            cwd=cwd,
            env=base_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if paused_stdout else self._stdout,
            stderr=self._stderr,
            preexec_fn=None if descriptors is None else lambda: _limit_descriptors(descriptors),  # noqa: PLW1509 (one setrlimit)
        )
        self._stdout_copier: threading.Thread | None = None
        self.psutil = psutil.Process(self.process.pid)
        self.session = requests.Session()
        self.stopped = False

    # -- life ---------------------------------------------------------------------------------------------------

    def wait_ready(self, timeout: float = 15.0) -> Pyrie:
        """Wait until pyrie's supervisor answers (``/healthz`` 200). gunicorn answers before it does (it is spawned
        first, while the supervisor starts), and a SIGTERM that comes before the supervisor has set its handlers
        ends it at once, with no ordered shutdown."""
        wait_answering(self.process, self.url, self.stderr, "pyrie", timeout)

        def supervisor_answers() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"pyrie exited with {self.process.returncode}:\n{self.stderr()}")
            try:
                return requests.get(f"{self.url}/healthz", timeout=5).status_code == 200
            except (requests.ConnectionError, requests.Timeout):
                return False

        wait_until(supervisor_answers, timeout, what="pyrie's supervisor to answer /healthz")
        return self

    def resume_stdout(self) -> None:
        """Start reading the paused stdout pipe (into ``stdout_path``)."""
        assert self.process.stdout is not None, "stdout is not paused"
        assert self._stdout_copier is None, "stdout is read already"
        pipe = self.process.stdout

        def copy() -> None:
            while data := pipe.read1(1 << 20):
                self._stdout.write(data)
                self._stdout.flush()

        self._stdout_copier = threading.Thread(target=copy, daemon=True)
        self._stdout_copier.start()

    def pipe_path(self) -> str:
        """The supervisor's Unix socket (bound under a name of its own, then renamed to ``supervisor.sock``)."""
        # the listener, and the connections it accepted (the same local path)
        [bound] = {str(c.laddr) for c in self.psutil.net_connections(kind="unix") if "supervisor.sock" in str(c.laddr)}
        return os.path.join(os.path.dirname(bound), "supervisor.sock")

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every environment is idle, its runtime back in ``/next``. pyrie gives the next invoke to an
        environment that has just answered only if it comes back within 0.1 s, else to another (a new one if need
        be): on a loaded machine, a test that needs its serial invokes to reuse one warm environment waits for it."""
        wait_until(
            lambda: all(env["state"] == "idle" for env in environments(self)), timeout, what="every environment idle"
        )

    def run_queue(self) -> RunQueue:
        """What pyrie's processes (those it starts later too) and this test process wait for a CPU, from now on."""
        return RunQueue(os.getpid(), tree=self.process.pid)

    def descendants(self) -> list[psutil.Process]:
        try:
            return self.psutil.children(recursive=True)
        except psutil.Error:
            return []

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Stop pyrie with ``sig``; return its exit status after checking that its whole tree is gone."""
        if self.stopped:
            return self.process.returncode
        self.stopped = True
        tree = self.descendants()
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill_tree(tree)
            raise AssertionError(f"pyrie did not exit within {timeout} s of {signal.Signals(sig).name}") from None
        finally:
            self.session.close()
            if self._stdout_copier is not None:
                self._stdout_copier.join(5)
            if self.process.stdout is not None:
                self.process.stdout.close()
            self._stdout.close()
            self._stderr.close()
        _, alive = psutil.wait_procs(tree, timeout=5)
        if alive:
            self._kill_tree(alive)
            raise AssertionError(f"pyrie left processes behind: {[p.pid for p in alive]}")
        return code

    def _kill_tree(self, processes: list[psutil.Process]) -> None:
        for proc in [self.psutil, *processes]:
            with contextlib.suppress(psutil.Error):
                proc.kill()

    # -- use ----------------------------------------------------------------------------------------------------

    def invoke(
        self,
        payload: bytes | str = b"{}",
        *,
        headers: Mapping[str, str] | None = None,
        path: str = INVOKE_PATH,
        timeout: float = 30,
        **kwargs: Any,
    ) -> requests.Response:
        data = payload.encode() if isinstance(payload, str) else payload
        return self.session.post(self.url + path, data=data, headers=dict(headers or {}), timeout=timeout, **kwargs)

    def stdout(self) -> str:
        if not self._stdout.closed:  # after stop() the file is complete
            self._stdout.flush()
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def stdout_lines(self) -> list[str]:
        return self.stdout().splitlines()

    def wait_for_output(self, text: str, timeout: float = 10.0) -> str:
        return wait_until(lambda: self.stdout() if text in self.stdout() else "", timeout, what=repr(text))

    def wait_for_stderr(self, text: str, timeout: float = 10.0) -> str:
        return wait_until(lambda: self.stderr() if text in self.stderr() else "", timeout, what=repr(text))

    def wait_for_lines(self, prefix: str, count: int, timeout: float = 10.0) -> list[str]:
        """Wait until stdout has ``count`` lines starting with ``prefix`` (END and REPORT follow the response)."""

        def lines() -> list[str]:
            found = [line for line in self.stdout_lines() if line.startswith(prefix)]
            return found if len(found) >= count else []

        return wait_until(lines, timeout, what=f"{count} lines starting {prefix!r}")


def _limit_descriptors(soft: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@contextlib.contextmanager
def running(args: Sequence[str], log_dir: Path, **kwargs: Any) -> Iterator[Pyrie]:
    pyrie = Pyrie(args, log_dir=log_dir, **kwargs)
    try:
        yield pyrie.wait_ready()
    finally:
        if not pyrie.stopped:
            code = pyrie.stop()
            assert code == 0, f"pyrie exited with {code}:\n{pyrie.stderr()}"


class FrontEnd:
    """The invoke front end on its own, as a split deployment runs it: ``gunicorn -c deploy/gunicorn.conf.py
    invoke_api.app:application`` on a free loopback port, finding the supervisor through ``env``."""

    def __init__(self, env: Mapping[str, str], *, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("PYRIE_") and k != "GUNICORN_CMD_ARGS"}
        environ.update({"PYRIE_RUNTIME_INTERFACE_EMULATOR_ADDRESS": f"127.0.0.1:{self.port}", "WEB_CONCURRENCY": "1"})
        environ.update(env)
        self.stderr_path = log_dir / f"frontend-{self.port}.err"
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115 (closed in stop)
        argv = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py")]
        self.process = subprocess.Popen(
            [*argv, "invoke_api.app:application"],
            cwd=ROOT,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        self.session = requests.Session()
        self.stopped = False

    def wait_ready(self, timeout: float = 15.0) -> FrontEnd:
        wait_answering(self.process, self.url, self.stderr, "the front end (gunicorn)", timeout)
        return self

    def invoke(self, payload: bytes = b"{}", timeout: float = 30, **kwargs: Any) -> requests.Response:
        return self.session.post(self.url + INVOKE_PATH, data=payload, timeout=timeout, **kwargs)

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        """SIGQUIT, gunicorn's quick stop (SIGTERM would wait for idle keep-alive connections)."""
        if self.stopped:
            return self.process.returncode
        self.stopped = True
        tree = psutil.Process(self.process.pid).children(recursive=True)
        self.session.close()
        self.process.send_signal(signal.SIGQUIT)
        try:
            code = self.process.wait(timeout)
        finally:
            self._stderr.close()
        _, alive = psutil.wait_procs(tree, timeout=5)
        assert not alive, f"gunicorn left processes behind: {[p.pid for p in alive]}"
        return code
