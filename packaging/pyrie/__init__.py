"""pyrie's entry point: the ``pyrie`` command, ``python -m pyrie`` and the single file (``packaging/pyrie_main.py``).

Installed from the wheel, pyrie's own packages (``supervisor``, ``runtime_api``, ``invoke_api``, ``pyrie_core``,
``pyrie_durable``, ``pyrie_runtime_client``) are not at the top of site-packages, where they would shadow a
function's packages of the same names (Supervisord's ``supervisor``, for one) or be shadowed by them: the wheel puts
them in this package's ``_lib`` directory (``setup.py``), which only pyrie's own processes put on ``sys.path``. First
for pyrie's supervisor and front end, so that theirs are pyrie's; last for pyrie's runtime client, so that the
function's own packages win over pyrie's in the function's process. From a source tree (an editable install) there
is no ``_lib``: the packages are importable as they are.

pyrie starts its own programs (its runtime client, its gunicorn front end) through here too
(``pyrie_core.own_programs``).
"""

import os
import sys

_LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_lib")
_FUNCTION_SIDE = "pyrie_runtime_client"  # the own program that imports a function's code


def main() -> int:
    private = os.path.isdir(_LIB)
    if private:
        sys.path.insert(0, _LIB)

    from pyrie_core.own_programs import OWN_PROGRAM_FLAG, run_own_program

    if len(sys.argv) > 2 and sys.argv[1] == OWN_PROGRAM_FLAG:
        if private and sys.argv[2] == _FUNCTION_SIDE:
            sys.path.remove(_LIB)
            sys.path.append(_LIB)
        run_own_program(sys.argv)
        return 0

    from supervisor.__main__ import main as pyrie

    return pyrie()
