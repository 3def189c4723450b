"""``pyrie`` and ``python -m supervisor``: parse the command line, then run the supervisor until it is stopped.

Start-up is ordered for speed: the listeners are bound and gunicorn is spawned with the standard library alone, so
gunicorn boots while the supervisor imports gevent and the rest of pyrie.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
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

    from supervisor.gunicorn_child import spawn_gunicorn
    from supervisor.listeners import StartupError, open_listeners

    try:
        listeners = open_listeners(config)
    except StartupError as exc:
        print(f"pyrie: error: {exc}", file=sys.stderr)
        return 1
    gunicorn = spawn_gunicorn(config, listeners)

    from supervisor.logs import setup_logging
    from supervisor.main import Supervisor

    setup_logging(config.log_level)
    return Supervisor(config, listeners, gunicorn).run()


if __name__ == "__main__":
    sys.exit(main())
