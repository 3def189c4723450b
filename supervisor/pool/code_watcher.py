"""``--watch``: notice when the function's code changes, by polling file modification times.

A greenlet walks the watched tree once per ``INTERVAL_S`` and compares each file's (mtime, size) with the last
walk; directories that hold no code of the function (version control, caches, virtual environments) are skipped.
Polling needs no extra dependency and works on every file system, containers' bind mounts included.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Final

import gevent

__all__ = ["CodeWatcher", "snapshot"]

log = logging.getLogger(__name__)

INTERVAL_S: Final = 1.0
SKIPPED_DIRS: Final = frozenset({".git", ".hg", ".svn", "__pycache__", ".mypy_cache", ".pytest_cache", ".venv"})
MAX_FILES: Final = 20_000  # a bigger tree is watched only in part (and a warning says so)

Snapshot = dict[str, tuple[int, int]]


def snapshot(root: str) -> Snapshot:
    """Every file under ``root`` (or ``root`` itself) with its modification time and size."""
    found: Snapshot = {}
    if os.path.isfile(root):
        stat = os.stat(root)
        return {root: (stat.st_mtime_ns, stat.st_size)}
    stack = [root]
    while stack and len(found) < MAX_FILES:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in SKIPPED_DIRS:
                        stack.append(entry.path)
                elif entry.is_file():
                    stat = entry.stat()
                    found[entry.path] = (stat.st_mtime_ns, stat.st_size)
            except OSError:
                continue
    return found


class CodeWatcher:
    def __init__(self, root: str, on_change: Callable[[], None]) -> None:
        self._root = root
        self._on_change = on_change
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)

    def _run(self) -> None:
        last = snapshot(self._root)
        if len(last) >= MAX_FILES:
            log.warning("--watch: %s holds over %d files; only some of them are watched", self._root, MAX_FILES)
        log.info("watching %s for code changes (%d files)", self._root, len(last))
        while True:
            gevent.sleep(INTERVAL_S)
            current = snapshot(self._root)
            if current != last:
                changed = sorted(set(current.items()) ^ set(last.items()))
                log.info("code changed under %s (%s%s)", self._root, changed[0][0], " ..." if len(changed) > 1 else "")
                last = current
                self._on_change()
