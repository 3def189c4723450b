"""The request target as the client sent it, for the handlers that pass paths on undecoded."""

from __future__ import annotations

from typing import Any

__all__ = ["request_target"]


def request_target(environ: dict[str, Any]) -> str:
    """The request's target in origin form (``/path?query``, still percent-encoded): gunicorn's ``RAW_URI``, with
    an absolute-form target's scheme and authority dropped (``http://host:8080/a?b`` is ``/a?b``); the decoded
    ``PATH_INFO`` when there is no ``RAW_URI``."""
    target: str = environ.get("RAW_URI") or environ.get("PATH_INFO", "/")
    if "://" in target.partition("?")[0]:
        target = "/" + target.split("://", 1)[1].partition("/")[2]
    return target
