"""The single executable file's entry point (PyInstaller's script): gives the process its caller's environment back,
then runs pyrie, or one of pyrie's own programs that pyrie started from this file (``pyrie.main``).

PyInstaller's bootloader adds what it needs to find the bundle's libraries (``LD_LIBRARY_PATH``, keeping the caller's
value in ``LD_LIBRARY_PATH_ORIG``) and its own ``_PYI_*`` variables. The loader has read them by now, and nothing
started from here may see them: a function's runtime (node, java, a bootstrap) would load the bundle's C library
through ``LD_LIBRARY_PATH`` and fail. So every process of pyrie, the runtime environment built from its
environment, and whatever a handler in pyrie's runtime client starts get the caller's environment; pyrie's own
programs find the bundle without any variable (the main program's RPATH), and the bootloader sets its own again in
each of them.
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

from pyrie import main  # noqa: E402

sys.exit(main())
