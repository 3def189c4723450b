"""``make dist ARCH=aarch64`` on an x86_64 machine: the same build (``make dist``) inside a Debian 12 root file system
of that architecture, run through QEMU's user-mode emulation (Debian's qemu-user-static). Needs root.

The root (``debootstrap --arch=arm64`` with python3.11, gcc, libzstd-dev and make) is built once and kept under
``$PYRIE_ROOTFS_CACHE`` (default ``~/.cache/pyrie/rootfs``), with the build's own environment inside it, so a later
build only copies this tree's sources in and runs ``make dist`` again (about 4 minutes, emulated). The binfmt_misc
handler for the architecture is registered from Debian's file when it is missing (with its F flag, so it works in a
chroot). Standard library only: this runs on the host's Python.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Final

REPOSITORY: Final = Path(__file__).resolve().parent.parent
DEBIAN_ARCH: Final = {"aarch64": "arm64"}
PACKAGES: Final = (
    "python3.11",
    "python3.11-venv",
    "python3-distutils",  # what python3.11-venv needs (debootstrap resolves no virtual package)
    "libpython3.11",
    "gcc",
    "libc6-dev",
    "libzstd-dev",
    "make",
    "binutils",
    "ca-certificates",
)
MIRROR: Final = "http://deb.debian.org/debian"
# What the build needs of this tree (as deploy/lambda-base-image.Dockerfile copies it).
SOURCES: Final = (
    "Makefile",
    "setup.py",
    "setup.cfg",
    "pyproject.toml",
    "README.md",
    "packaging",
    "pyrie_core",
    "supervisor",
    "runtime_api",
    "invoke_api",
    "pyrie_durable",
    "pyrie_runtime_client",
)
BINFMT: Final = Path("/proc/sys/fs/binfmt_misc")


def fail(message: str) -> None:
    raise SystemExit(
        f"make dist ARCH=...: {message}; docs/distribution.md says how to build with docker buildx instead"
    )


def run(*command: str) -> None:
    subprocess.run(command, check=True, stdin=subprocess.DEVNULL)


def ensure_binfmt(arch: str) -> None:
    """The kernel runs ``arch`` programs through qemu-user-static."""
    if not (BINFMT / "register").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], check=False, capture_output=True)
    if (BINFMT / f"qemu-{arch}").exists():
        return
    rule = Path(f"/usr/lib/binfmt.d/qemu-{arch}.conf")
    if not rule.exists():
        fail(f"{rule} is missing: apt-get install qemu-user-static")
    if not (BINFMT / "register").exists():
        fail("binfmt_misc is not available on this machine")
    (BINFMT / "register").write_text(rule.read_text().strip())


def build_root(arch: str) -> Path:
    cache = Path(os.environ.get("PYRIE_ROOTFS_CACHE") or Path.home() / ".cache" / "pyrie" / "rootfs")
    key = hashlib.sha256(repr((arch, PACKAGES, MIRROR)).encode()).hexdigest()[:12]
    root = cache / f"bookworm-{DEBIAN_ARCH[arch]}-build-{key}"
    if (root / "usr" / "bin" / "python3.11").exists():
        return root
    debootstrap = shutil.which("debootstrap", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if debootstrap is None:
        fail("debootstrap is not installed (apt-get install debootstrap)")
    cache.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=root.name + ".", dir=cache))
    try:
        run(
            str(debootstrap),
            f"--arch={DEBIAN_ARCH[arch]}",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            "bookworm",
            str(partial),
            MIRROR,
        )
        partial.rename(root)
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    return root


def build(arch: str, out: Path) -> Path:
    if os.geteuid() != 0:
        fail("building for another architecture here needs root (debootstrap, chroot)")
    ensure_binfmt(arch)
    root = build_root(arch)
    source = root / "src"
    source.mkdir(exist_ok=True)
    for name in SOURCES:  # the build's environment (src/build) stays from the last time
        target = source / name
        if target.is_dir():
            shutil.rmtree(target)
        if (REPOSITORY / name).is_dir():
            shutil.copytree(REPOSITORY / name, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPOSITORY / name, target)
    shutil.rmtree(source / "dist", ignore_errors=True)
    # pip in the root trusts what this machine trusts
    shutil.copy2("/etc/ssl/certs/ca-certificates.crt", root / "etc/ssl/certs/ca-certificates.crt")
    mounted: list[Path] = []
    try:
        for kind, what, inside in (("proc", "proc", "proc"), ("bind", "/dev", "dev")):
            target = root / inside
            run("mount", "--bind", what, str(target)) if kind == "bind" else run("mount", "-t", kind, what, str(target))
            mounted.append(target)
        run("chroot", str(root), "/bin/sh", "-c", "cd /src && make dist")
    finally:
        for target in reversed(mounted):
            subprocess.run(["umount", str(target)], check=False)
    (built,) = (source / "dist").glob(f"pyrie-*-linux-{arch}")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(built, out / built.name)
    return out / built.name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--arch", required=True, choices=sorted(DEBIAN_ARCH))
    parser.add_argument("--out", type=Path, default=Path("dist"))
    args = parser.parse_args(argv)
    print(build(args.arch, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
