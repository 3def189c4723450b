"""``pyrie`` and ``python -m supervisor``: parse the command line, then run the supervisor until it is stopped.

Start-up is ordered for speed and shared memory: the command line is read and the listeners bound with the standard
library alone (a busy port stops pyrie at once), then what the supervisor and its front end both use is imported
(``_import_shared``), the front end is forked (``supervisor.frontend_link.gunicorn_fork``), and the supervisor
imports the rest of itself while gunicorn boots beside it.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence
from typing import Final

NOT_OURS: Final = (
    "pyrie: error: the Python package 'supervisor' in {path} is not pyrie's (another program's package of that name, "
    "such as Supervisord's, was installed over it); install pyrie into a virtual environment of its own"
)


def main(argv: Sequence[str] | None = None) -> int:
    import supervisor

    if getattr(supervisor, "PYRIE_SUPERVISOR", False) is not True:
        print(NOT_OURS.format(path=os.path.dirname(supervisor.__file__ or "?")), file=sys.stderr)
        return 2

    from supervisor import cli
    from supervisor.config import ConfigError

    args = sys.argv[1:] if argv is None else list(argv)
    try:
        config = cli.parse(args)
    except cli.HelpRequested:
        print(cli.help_text())
        return 0
    except ConfigError as exc:
        print(f"pyrie: error: {exc}", file=sys.stderr)
        return 2

    store = None
    if config.durable is not None and config.durable.store_path is not None:
        # Opened (and locked) before anything starts: a pyrie that took the file since the check above is refused
        # in one line, with nothing to stop.
        from pyrie_durable.store import SqliteStore, StoreInUse

        try:
            store = SqliteStore(config.durable.store_path)
        except StoreInUse as exc:
            print(f"pyrie: error: --durable-store: {exc}", file=sys.stderr)
            return 2

    from supervisor.frontend_link.listeners import StartupError, open_listeners

    try:
        listeners = open_listeners(config)
    except StartupError as exc:
        print(f"pyrie: error: {exc}", file=sys.stderr)
        return 1
    _import_shared()
    from supervisor.frontend_link.gunicorn_fork import fork_gunicorn

    gc.freeze()  # kept out of the collections of the supervisor and of what it forks: the pages stay shared
    gunicorn = fork_gunicorn(config, listeners)

    from supervisor.arbiter import Supervisor
    from supervisor.observe.logging_setup import setup_logging

    setup_logging(config.log_level)
    return Supervisor(config, listeners, gunicorn, store).run()


def _import_shared() -> None:
    """Import, before the front end is forked, what the supervisor and the front end both use: gevent, msgspec and
    the pipe's frames and messages (and the standard library modules they bring). Imported once, their pages are
    shared by every process of pyrie."""
    import gevent.event
    import gevent.lock
    import gevent.pool
    import gevent.queue
    import gevent.server
    import gevent.socket  # noqa: F401

    import pyrie_core.ids
    import pyrie_core.lambda_errors
    import pyrie_core.log_format
    import pyrie_core.pipe.frames
    import pyrie_core.pipe.messages
    import pyrie_core.socket_io  # noqa: F401


if __name__ == "__main__":
    sys.exit(main())
