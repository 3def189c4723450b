"""``pyrie`` and ``python -m supervisor``: parse the command line, then run the supervisor until it is stopped."""

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

    from supervisor.logs import setup_logging
    from supervisor.main import StartupError, Supervisor

    setup_logging(config.log_level)
    try:
        supervisor = Supervisor(config)
    except StartupError as exc:
        print(f"pyrie: error: {exc}", file=sys.stderr)
        return 1
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
