"""A root file system without Python for the single executable file's tests (tests/test_dist_file.py).

Debian 12 (bookworm), ``debootstrap --variant=minbase`` from deb.debian.org with curl, built once and kept under
``$PYRIE_ROOTFS_CACHE`` (default ``~/.cache/pyrie/rootfs``) in a directory named by what it holds. Each test session
mounts it read-only under an overlay (so it stays as built), adds what a Lambda base image has (the file at
``/usr/local/bin/aws-lambda-rie``, ``/lambda-entrypoint.sh``, a runtime under ``/var/runtime``), and runs it with
chroot, with /proc, /dev and a tmpfs /tmp mounted; everything is unmounted afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("curl", "ca-certificates")
CACHE = Path(os.environ.get("PYRIE_ROOTFS_CACHE") or Path.home() / ".cache" / "pyrie" / "rootfs")

# As the Lambda base images' /lambda-entrypoint.sh: outside Lambda (no AWS_LAMBDA_RUNTIME_API) the emulator at
# /usr/local/bin/aws-lambda-rie runs the runtime's bootstrap with the handler.
ENTRYPOINT = """#!/bin/sh
if [ $# -ne 1 ]; then
  echo "entrypoint requires the handler name to be the first argument" 1>&2
  exit 142
fi
export _HANDLER="$1"

RUNTIME_ENTRYPOINT=/var/runtime/bootstrap
if [ -z "${AWS_LAMBDA_RUNTIME_API}" ]; then
  exec /usr/local/bin/aws-lambda-rie $RUNTIME_ENTRYPOINT
else
  exec $RUNTIME_ENTRYPOINT
fi
"""


class RootUnavailable(Exception):
    """This machine cannot build or mount the root file system; the message says why."""


def cache_dir() -> Path:
    key = hashlib.sha256(repr((SUITE, "minbase", MIRROR, PACKAGES)).encode()).hexdigest()[:12]
    return CACHE / f"{SUITE}-minbase-{key}"


def built_root() -> Path:
    """The cached root file system, built with debootstrap when it is missing."""
    root = cache_dir()
    if (root / "etc" / "debian_version").exists():
        return root
    if os.geteuid() != 0:
        raise RootUnavailable("building a root file system with debootstrap needs root")
    debootstrap = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin:/sbin")
    if debootstrap is None:
        raise RootUnavailable("debootstrap is not installed (apt-get install debootstrap)")
    root.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=root.name + ".", dir=root.parent))
    try:
        result = subprocess.run(
            [debootstrap, "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(partial), MIRROR],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=900,
            check=False,
        )
        if result.returncode != 0:
            raise RootUnavailable(f"debootstrap failed: {(result.stdout + result.stderr)[-2000:]}")
        partial.rename(root)
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    return root


def processes_in(root: Path) -> list[psutil.Process]:
    """Every process whose root directory is ``root`` (chroot's children, however they detached)."""
    found = []
    target = str(root)
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.readlink(f"/proc/{process.pid}/root") == target:
                found.append(process)
    return found


@dataclass
class Root:
    path: Path  # the mounted root, as seen from outside

    def put(self, inside: str, content: bytes | str, mode: int = 0o644) -> Path:
        target = self.path / inside.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
        target.chmod(mode)
        return target

    def copy_in(self, source: Path, inside: str) -> None:
        target = self.path / inside.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)

    def add_program(self, program: Path, inside: str) -> None:
        """A host program and the shared libraries it needs that the root lacks (same C library: both Debian 12)."""
        self.copy_in(program, inside)
        for line in subprocess.run(["ldd", str(program)], capture_output=True, text=True, check=True).stdout.split(
            "\n"
        ):
            _, arrow, rest = line.strip().partition(" => ")
            library = Path(rest.split(" (")[0].strip()) if arrow else None
            if library is not None and library.is_absolute() and not (self.path / str(library).lstrip("/")).exists():
                self.copy_in(library, str(library))

    def start(self, handler: str, env: dict[str, str], *, pid_1: bool = False) -> subprocess.Popen[bytes]:
        """``/lambda-entrypoint.sh HANDLER`` in the root, as a container would run it (its pid is the emulator's:
        chroot, the entrypoint and the file's launcher each exec the next). With ``pid_1``, in a PID namespace of
        its own (with its own /proc, as a container has), where the emulator is PID 1 and the returned process is
        unshare's, its parent outside."""
        clean = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", **env}
        namespace = ["unshare", "--pid", "--fork", "--kill-child", "--mount", f"--mount-proc={self.path / 'proc'}"]
        return subprocess.Popen(
            [*(namespace if pid_1 else []), "chroot", str(self.path), "/lambda-entrypoint.sh", handler],
            env=clean,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def processes(self) -> list[psutil.Process]:
        return processes_in(self.path)


def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RootUnavailable(f"mount {' '.join(args)}: {result.stderr.strip()}")


@contextlib.contextmanager
def mounted_root(dist_file: Path) -> Iterator[Root]:
    """The cached root under an overlay with /proc, /dev and a tmpfs /tmp; the file at the emulator's path."""
    base = built_root()
    work = Path(tempfile.mkdtemp(prefix="pyrie-root-"))
    upper, scratch, merged = work / "upper", work / "work", work / "root"
    for path in (upper, scratch, merged):
        path.mkdir()
    mounted: list[Path] = []
    try:
        _mount("-t", "overlay", "overlay", "-o", f"lowerdir={base},upperdir={upper},workdir={scratch}", str(merged))
        mounted.append(merged)
        for kind, source, inside in (("proc", "proc", "proc"), ("bind", "/dev", "dev"), ("tmpfs", "tmpfs", "tmp")):
            target = merged / inside
            _mount("--bind", source, str(target)) if kind == "bind" else _mount("-t", kind, source, str(target))
            mounted.append(target)
        root = Root(merged)
        root.copy_in(dist_file, "/usr/local/bin/aws-lambda-rie")
        root.put("/lambda-entrypoint.sh", ENTRYPOINT, 0o755)
        yield root
    finally:
        for process in processes_in(merged):  # only after a failed test: a passing one leaves none
            with contextlib.suppress(psutil.Error):
                process.send_signal(signal.SIGKILL)
        psutil.wait_procs(processes_in(merged), timeout=10)
        for target in reversed(mounted):
            if subprocess.run(["umount", str(target)], capture_output=True, check=False).returncode != 0:
                subprocess.run(["umount", "--lazy", str(target)], capture_output=True, check=False)
        still_mounted = [line for line in Path("/proc/mounts").read_text().splitlines() if f" {work}/" in line]
        if not still_mounted:  # never remove through a mount that stayed (the host's /dev is bound inside)
            shutil.rmtree(work, ignore_errors=True)
