"""``python -m runtime_client module.function`` — or ``python path/to/runtime_client module.function``.

The second form exists because awslambdaric installs a top-level extension module also named ``runtime_client``:
where both are installed, ``-m`` may find that one first. Run by its path, this package puts its parent directory
on ``sys.path`` just long enough to import itself, and takes its own directory off ``sys.path``, so that neither
shadows the function's modules.
"""

import os
import sys

if __package__:
    from .bootstrap import main
else:  # run by path: sys.path[0] is this directory
    _here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or os.curdir) == _here:
        del sys.path[0]
    sys.modules.pop("runtime_client", None)
    sys.path.insert(0, os.path.dirname(_here))
    try:
        from runtime_client.bootstrap import main
    finally:
        sys.path.remove(os.path.dirname(_here))

if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
