"""The single executable file's entry point: pyrie, or one of pyrie's own programs that pyrie started from this file
(``pyrie_core.own_programs``).

First it gives the process its caller's environment back. PyInstaller's bootloader adds what it needs to find the
bundle's libraries (``LD_LIBRARY_PATH``, keeping the caller's value in ``LD_LIBRARY_PATH_ORIG``) and its own
``_PYI_*`` variables; the loader has read them by now, and nothing started from here may see them: a function's
runtime (node, java, a bootstrap) would load the bundle's C library through ``LD_LIBRARY_PATH`` and fail. So every
process of pyrie, the runtime environment built from it, and whatever a handler in pyrie's runtime client starts get
the caller's environment. pyrie's own programs find the bundle without any variable (the main program's RPATH), and
the bootloader sets its variables again in each.
"""

import os
import sys


def restore_environment(environ: "os._Environ[str]") -> None:
    original = environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is not None:
        environ["LD_LIBRARY_PATH"] = original
    else:
        environ.pop("LD_LIBRARY_PATH", None)
    for name in [name for name in environ if name.startswith("_PYI_")]:
        del environ[name]


restore_environment(os.environ)

from pyrie_core.own_programs import OWN_PROGRAM_FLAG, run_own_program  # noqa: E402

if len(sys.argv) > 2 and sys.argv[1] == OWN_PROGRAM_FLAG:
    run_own_program(sys.argv)
else:
    from supervisor.__main__ import main

    sys.exit(main())
