"""The single executable file (``make dist``) where it matters: a root file system without Python (Debian 12 minbase,
tests/dist_root.py) with the file at ``/usr/local/bin/aws-lambda-rie`` and a base image's ``/lambda-entrypoint.sh``,
run with chroot. A shell bootstrap with curl and Node.js with aws-lambda-ric answer buffered and streamed invokes;
boto3 reads InvokeWithResponseStream from outside the root; SIGTERM and kill -9 leave no process; nothing is loaded
from the root's own libraries.

``make test-dist`` builds the file and runs these (PYRIE_DIST_FILE names the file). Elsewhere they skip, and so they
do where this machine cannot build the root file system (not root, no debootstrap, no network), except under
PYRIE_REQUIRE_ROOTFS=1 (CI), where that fails instead.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import re
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import psutil
import pytest
from botocore.config import Config

from tests.dist_root import Root, RootUnavailable, mounted_root
from tests.harness import ROOT, free_port, wait_until

pytestmark = pytest.mark.slow

REQUIRED = os.environ.get("PYRIE_REQUIRE_ROOTFS") == "1"
# A file for another architecture (make test-dist ARCH=aarch64) runs through qemu-user-static: everything takes
# longer, and its processes' executable is QEMU, with the program and its argv[0] after it on the command line.
FOREIGN = bool(os.environ.get("PYRIE_DIST_FILE")) and not os.environ["PYRIE_DIST_FILE"].endswith(platform.machine())
SLOW = 5 if FOREIGN else 1
NODE_MODULES = ROOT / "tests" / "node" / "node_modules"
INVOKE_PATH = "/2015-03-31/functions/function/invocations"

NODE_BOOTSTRAP = """#!/bin/sh
cd /var/task
exec /usr/local/bin/node /var/runtime/node_modules/aws-lambda-ric/index.mjs "$_HANDLER"
"""

# Before the shell runtime starts, it leaves an orphan that exits a moment later (after marking that it did): only
# a reaping PID 1 keeps it from staying a zombie.
ORPHANS_BOOTSTRAP = """#!/bin/sh
( sh -c 'sleep 0.3; touch /tmp/orphan-exited' & )
exec /var/runtime/shell-bootstrap
"""

NODE_FUNCTION = """import fs from "node:fs";

export const buffered = async (event) => ({ echo: event, node: process.version });

// The second event waits for the gate file the test creates once the first has reached it: a response held back
// anywhere on the way would never open the gate.
export const sse = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.setContentType("text/event-stream");
  responseStream.write("data: first\\n\\n");
  if (!event.gate) return responseStream.end();  // a probe
  while (!fs.existsSync(event.gate)) await new Promise((resolve) => setTimeout(resolve, 20));
  responseStream.write("data: second\\n\\n");
  responseStream.end();
});
"""


def unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"PYRIE_REQUIRE_ROOTFS=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def dist_file() -> Path:
    named = os.environ.get("PYRIE_DIST_FILE")
    if not named:
        unavailable("the single file's tests run under `make test-dist`, which builds the file first")
    path = Path(named or "").resolve()
    if not os.access(path, os.X_OK):
        pytest.fail(f"PYRIE_DIST_FILE={named} is not an executable file")
    return path


@pytest.fixture(scope="module")
def root(dist_file: Path) -> Iterator[Root]:
    try:
        with mounted_root(dist_file) as mounted:
            node = Path(subprocess.run(["which", "node"], capture_output=True, text=True, check=False).stdout.strip())
            if not node.is_absolute():
                pytest.fail("node is not installed (make test-dist needs Node.js 20, as make test does)")
            assert (NODE_MODULES / "aws-lambda-ric").exists(), "run `make node` first (make test-dist does)"
            mounted.add_program(node.resolve(), "/usr/local/bin/node")
            for package in ("aws-lambda-ric", "@aws/lambda-invoke-store"):
                mounted.copy_in(NODE_MODULES / package, f"/var/runtime/node_modules/{package}")
            mounted.put("/var/task/index.mjs", NODE_FUNCTION)
            mounted.copy_in(ROOT / "examples" / "shell-echo" / "bootstrap", "/var/runtime/shell-bootstrap")
            yield mounted
    except RootUnavailable as exc:
        unavailable(f"no root file system for the single file's tests: {exc}")


class Running:
    """pyrie from the file, started by the entrypoint in the root."""

    def __init__(
        self, root: Root, runtime: str, handler: str, *, pid_1: bool = False, env: dict[str, str] | None = None
    ) -> None:
        bootstraps = {"shell": "/var/runtime/shell-bootstrap", "node": NODE_BOOTSTRAP, "orphans": ORPHANS_BOOTSTRAP}
        bootstrap = bootstraps[runtime]
        if runtime == "shell":
            bootstrap = (root.path / bootstrap.lstrip("/")).read_text()
        root.put("/var/runtime/bootstrap", bootstrap, 0o755)
        self.root = root
        self.port = free_port()
        self.process = root.start(
            handler,
            {
                "PYRIE_RUNTIME_INTERFACE_EMULATOR_ADDRESS": f"127.0.0.1:{self.port}",
                "PYRIE_RUNTIME_API_ADDRESS": f"127.0.0.1:{free_port()}",
                "LAMBDA_TASK_ROOT": "/var/task",
                **(env or {}),
            },
            pid_1=pid_1,
        )
        try:
            wait_until(self.answers, timeout=60 * SLOW, interval=0.05, what="pyrie in the root answering")
        except BaseException:
            self.stop()
            raise

    def answers(self) -> bool:
        assert self.process.poll() is None, self.output()
        try:
            return self.invoke(b'{"ready": true}')[0] == 200
        except OSError:
            return False

    def invoke(self, body: bytes) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request("POST", INVOKE_PATH, body)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def output(self) -> str:
        if self.process.poll() is None or self.process.stdout is None:
            return ""
        return self.process.stdout.read().decode(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30 * SLOW)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def running(root: Root) -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for each in started:
        each.stop()
    wait_until(lambda: not root.processes(), timeout=30 * SLOW, what="no process left in the root")


def start(
    started: list[Running],
    root: Root,
    runtime: str,
    handler: str,
    *,
    pid_1: bool = False,
    env: dict[str, str] | None = None,
) -> Running:
    started.append(Running(root, runtime, handler, pid_1=pid_1, env=env))
    return started[-1]


def program_of(root: Root, process: psutil.Process) -> str:
    """The program a process runs, as seen from outside the root, also under QEMU (``qemu-aarch64 PROGRAM ARGV0
    ARGS...``, with PROGRAM as seen inside)."""
    exe = process.exe()
    if "qemu" in Path(exe).name or "binfmt" in exe:
        return str(root.path / process.cmdline()[1].lstrip("/"))
    return exe


def argv0_of(process: psutil.Process) -> str:
    words = process.cmdline()
    return words[2] if "qemu" in Path(process.exe()).name or "binfmt" in process.exe() else words[0]


def unpacked(root: Root) -> Path:
    found = sorted((root.path / "tmp").glob("pyrie.*"))
    assert len(found) == 1, found
    return found[0]


def test_a_shell_bootstrap_with_curl_answers_a_buffered_invoke(root: Root, running: list[Running]) -> None:
    pyrie = start(running, root, "shell", "function.handler")
    assert pyrie.invoke(b'{"hello": "world"}') == (200, b'{"hello": "world"}')
    assert not (root.path / "usr/bin/python3").exists()


def test_node_with_aws_lambda_ric_answers_a_buffered_invoke(root: Root, running: list[Running]) -> None:
    pyrie = start(running, root, "node", "index.buffered")
    status, body = pyrie.invoke(b'{"n": 1}')
    assert status == 200, body
    answer = json.loads(body)
    assert answer["echo"] == {"n": 1} and answer["node"].startswith("v")


def test_an_sse_stream_arrives_write_by_write(root: Root, running: list[Running]) -> None:
    pyrie = start(running, root, "node", "index.sse")
    gate = f"/tmp/gate-{uuid.uuid4().hex}"
    connection = http.client.HTTPConnection("127.0.0.1", pyrie.port, timeout=60)
    try:
        connection.request("POST", INVOKE_PATH, json.dumps({"gate": gate}).encode())
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type") == "text/event-stream"
        assert response.getheader("Lambda-Runtime-Function-Response-Mode") == "streaming"
        first = response.read1()
        assert first == b"data: first\n\n"  # the second is held back until the gate opens
        (root.path / gate.lstrip("/")).touch()
        assert response.read() == b"data: second\n\n"
    finally:
        connection.close()


def test_boto3_reads_invoke_with_response_stream_from_outside_the_root(root: Root, running: list[Running]) -> None:
    pyrie = start(running, root, "node", "index.sse")
    client = boto3.client(
        "lambda",
        endpoint_url=f"http://127.0.0.1:{pyrie.port}",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}, read_timeout=60),
    )
    gate = f"/tmp/gate-{uuid.uuid4().hex}"
    response = client.invoke_with_response_stream(FunctionName="function", Payload=json.dumps({"gate": gate}))
    events = iter(response["EventStream"])
    assert next(events) == {"PayloadChunk": {"Payload": b"data: first\n\n"}}
    (root.path / gate.lstrip("/")).touch()
    rest = list(events)
    assert rest[0] == {"PayloadChunk": {"Payload": b"data: second\n\n"}}
    assert "InvokeComplete" in rest[-1] and not rest[-1]["InvokeComplete"].get("ErrorCode")


def test_the_runtime_gets_the_callers_environment_and_nothing_of_the_bundles(
    root: Root, running: list[Running]
) -> None:
    callers = {"LD_LIBRARY_PATH": "/opt/image/lib", "PYTHONPATH": "/opt/python"}
    pyrie = start(running, root, "shell", "function.handler", env=callers)
    assert pyrie.invoke(b"{}")[0] == 200
    system = str(root.path / "usr")
    shells = [p for p in root.processes() if p.exe().startswith(system) and p.exe().endswith("/dash")]
    (bootstrap,) = [p for p in shells if not p.parent().exe().endswith("/dash")]  # not its subshells
    environ = bootstrap.environ()
    assert {name: environ.get(name) for name in callers} == callers
    assert not [name for name in environ if name.startswith("_PYI_") or name.endswith("_ORIG")], environ
    assert "PYTHONHOME" not in environ and environ["AWS_LAMBDA_RUNTIME_API"].startswith("127.0.0.1:")


def test_sigterm_stops_everything_cleanly(root: Root, running: list[Running]) -> None:
    pyrie = start(running, root, "shell", "function.handler")
    assert pyrie.invoke(b"{}")[0] == 200
    assert len(root.processes()) >= 3  # pyrie, its front end, the bootstrap
    pyrie.process.send_signal(signal.SIGTERM)
    assert pyrie.process.wait(30 * SLOW) == 0, pyrie.output()
    wait_until(lambda: not root.processes(), timeout=30 * SLOW, what="no process left after SIGTERM")


def test_kill_9_of_pyrie_leaves_no_process(root: Root, running: list[Running]) -> None:
    pyrie = start(running, root, "shell", "function.handler")
    assert pyrie.invoke(b"{}")[0] == 200
    pyrie.process.send_signal(signal.SIGKILL)
    pyrie.process.wait(30)
    wait_until(lambda: not root.processes(), timeout=60 * SLOW, what="no process left after kill -9 of pyrie")


def test_as_pid_1_it_reaps_orphans_and_stops_on_sigterm(root: Root, running: list[Running]) -> None:
    marker = root.path / "tmp" / "orphan-exited"
    marker.unlink(missing_ok=True)
    pyrie = start(running, root, "orphans", "function.handler", pid_1=True)
    (init,) = psutil.Process(pyrie.process.pid).children()  # unshare's child: PID 1 in the namespace
    assert program_of(root, init).endswith("/pyrie") and argv0_of(init) == "/usr/local/bin/aws-lambda-rie"
    assert pyrie.invoke(b'{"n": 1}') == (200, b'{"n": 1}')
    wait_until(marker.exists, timeout=30, what="the orphan to exit")
    wait_until(
        lambda: not [p for p in root.processes() if p.status() == psutil.STATUS_ZOMBIE],
        timeout=30,
        what="no zombie left in the namespace",
    )
    init.send_signal(signal.SIGTERM)
    assert pyrie.process.wait(30 * SLOW) == 0, pyrie.output()  # unshare exits as its child did
    wait_until(lambda: not root.processes(), timeout=30 * SLOW, what="no process left after SIGTERM to PID 1")


def test_a_second_start_reuses_what_the_first_unpacked(root: Root, running: list[Running]) -> None:
    first = start(running, root, "shell", "function.handler")
    directory = unpacked(root)
    marker = directory.stat().st_mtime_ns, directory.stat().st_ino
    second = start(running, root, "shell", "function.handler")
    assert second.invoke(b"{}")[0] == 200 and first.invoke(b"{}")[0] == 200
    assert unpacked(root) == directory and (directory.stat().st_mtime_ns, directory.stat().st_ino) == marker
    # every process of both runs executes the unpacked program: none unpacked anything again
    system = str(root.path / "usr")  # the bootstraps' sh and curl
    programs = {program_of(root, process) for process in root.processes() if not process.exe().startswith(system)}
    assert programs == {str(directory / "pyrie")}


def _glibc_versions(text: str) -> set[tuple[int, ...]]:
    return {tuple(int(part) for part in found.split(".")) for found in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", text)}


def test_nothing_is_loaded_from_the_host(root: Root, running: list[Running], dist_file: Path) -> None:
    # The file itself is a static program: no interpreter, no shared library.
    headers = subprocess.run(["objdump", "-p", str(dist_file)], capture_output=True, text=True, check=True).stdout
    assert "INTERP" not in headers and "NEEDED" not in headers, headers
    start(running, root, "node", "index.buffered")
    directory = unpacked(root)
    # Every ELF file the running pyrie maps comes from what it unpacked, none from the root's own /lib.
    pyrie_processes = [p for p in root.processes() if program_of(root, p).startswith(str(directory))]
    assert len(pyrie_processes) >= 2
    for process in pyrie_processes:
        mapped = {
            Path(line.split(maxsplit=5)[5])
            for line in Path(f"/proc/{process.pid}/maps").read_text().splitlines()
            if len(line.split(maxsplit=5)) == 6 and line.split(maxsplit=5)[5].startswith("/")
        }
        libraries = {path for path in mapped if ".so" in path.name or path.name == "pyrie"}
        assert libraries and all(path.is_relative_to(directory) for path in libraries), sorted(map(str, libraries))
    # The floor: what the bundle's ELF files need of the C library is what the bundled one provides.
    needed: set[tuple[int, ...]] = set()
    for path in directory.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.read_bytes()[:4] == b"\x7fELF":
            dynamic = subprocess.run(["objdump", "-T", str(path)], capture_output=True, text=True, check=False)
            needed |= _glibc_versions(dynamic.stdout)
    provided = _glibc_versions(
        subprocess.run(
            ["objdump", "-p", str(directory / "_internal/libc.so.6")], capture_output=True, text=True, check=True
        ).stdout
    )
    assert needed and max(needed) <= max(provided), (max(needed), max(provided))
