"""How pyrie runs one of its own Python programs (its runtime client, its gunicorn front end) as a new process, from
the same program pyrie itself runs as: its entry point (``packaging/pyrie``) with ``OWN_PROGRAM_FLAG`` and the
program's module. From a Python installation that is ``python -m pyrie``, which finds pyrie's packages where the
wheel keeps them (they are not at the top of site-packages); from the single executable file (a frozen program,
without ``-m``) it is the file itself. Nothing depends on a module resolving in a virtual environment.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Sequence
from typing import Final

__all__ = ["OWN_PROGRAM_FLAG", "PROGRAMS", "own_program_command", "run_own_program"]

OWN_PROGRAM_FLAG: Final = "--pyrie-own-program"
# pyrie's own programs: the modules each runs as ``__main__``.
PROGRAMS: Final = ("pyrie_runtime_client", "gunicorn")


def frozen() -> bool:
    """pyrie runs as the single executable file."""
    return bool(getattr(sys, "frozen", False))


def own_program_command(module: str, *args: str) -> tuple[str, ...]:
    """The command line that runs pyrie's program ``module`` with ``args``."""
    assert module in PROGRAMS, module
    entry = () if frozen() else ("-m", "pyrie")
    return (sys.executable, *entry, OWN_PROGRAM_FLAG, module, *args)


def run_own_program(argv: Sequence[str]) -> None:
    """The entry point's side: ``argv`` is ``[program, OWN_PROGRAM_FLAG, module, *args]``; runs that program as
    ``python -m module`` would, with ``sys.argv`` as it would see it."""
    module = argv[2]
    if module not in PROGRAMS:
        sys.exit(f"pyrie: {module!r} is not one of pyrie's programs ({', '.join(PROGRAMS)})")
    sys.argv = [module, *argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
