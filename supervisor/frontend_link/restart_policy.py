"""When the front end (gunicorn) exits on its own: start a new one, or give up.

Supervisor's idea (``startsecs``, BACKOFF -> FATAL) and gunicorn's own (``HaltServer`` instead of a respawn storm):
a gunicorn that ran for ``boot_window_s`` had booted, and whatever ended it (a SIGKILL, the OOM killer) is worth a
new one at once. One that dies sooner failed to boot. If it chose to exit (a status, not a signal: a bad
configuration file, ``GUNICORN_CMD_ARGS`` it cannot parse, an application that does not load), the next try would
fail the same way, so pyrie gives up at once; if it was killed, pyrie tries again, ``max_failed_boots`` times in a
row at most. Pure: the caller measures the time and acts on the verdict.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

__all__ = ["BOOT_WINDOW_S", "MAX_FAILED_BOOTS", "RestartPolicy", "Verdict"]

BOOT_WINDOW_S: Final = 5.0  # gunicorn with gevent workers boots in about a second on a small machine
MAX_FAILED_BOOTS: Final = 3


class Verdict(enum.Enum):
    RESTART = "restart"
    GIVE_UP = "give up"


@dataclass
class RestartPolicy:
    boot_window_s: float = BOOT_WINDOW_S
    max_failed_boots: int = MAX_FAILED_BOOTS
    failed_boots: int = 0  # consecutive exits within the boot window

    def after_exit(self, uptime_s: float, returncode: int) -> Verdict:
        """What to do about a front end that exited with ``returncode`` (negative: killed by that signal) after
        running ``uptime_s`` seconds."""
        if uptime_s >= self.boot_window_s:
            self.failed_boots = 0
            return Verdict.RESTART
        self.failed_boots += 1
        if returncode > 0 or self.failed_boots >= self.max_failed_boots:
            return Verdict.GIVE_UP
        return Verdict.RESTART
