"""How pyrie runs one of its own Python programs (its runtime client, its gunicorn front end) as a new process, from
the same program pyrie itself runs as.

From a Python installation that is the interpreter with ``-m``. The single executable file (``packaging/``) has no
``-m``: it is a frozen program whose entry point reads the program's name after ``OWN_PROGRAM_FLAG`` instead, so
nothing depends on a module resolving in a virtual environment.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Sequence
from typing import Final

__all__ = ["OWN_PROGRAM_FLAG", "PROGRAMS", "own_program_command", "run_own_program"]

OWN_PROGRAM_FLAG: Final = "--pyrie-own-program"
# pyrie's own programs, by name: the module each runs as ``__main__``.
PROGRAMS: Final = {"runtime-client": "pyrie_runtime_client", "gunicorn": "gunicorn"}


def frozen() -> bool:
    """pyrie runs as the single executable file."""
    return bool(getattr(sys, "frozen", False))


def own_program_command(name: str, *args: str) -> tuple[str, ...]:
    """The command line that runs pyrie's program ``name`` with ``args``."""
    module = PROGRAMS[name]
    if frozen():
        return (sys.executable, OWN_PROGRAM_FLAG, name, *args)
    return (sys.executable, "-m", module, *args)


def run_own_program(argv: Sequence[str]) -> None:
    """The frozen entry point's side: ``argv`` is ``[program, OWN_PROGRAM_FLAG, name, *args]``; runs that program as
    ``python -m`` would, with ``sys.argv`` as it would see it."""
    name = argv[2]
    module = PROGRAMS.get(name)
    if module is None:
        sys.exit(f"pyrie: {name!r} is not one of pyrie's programs ({', '.join(PROGRAMS)})")
    sys.argv = [module, *argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
