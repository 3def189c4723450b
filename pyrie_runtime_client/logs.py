"""The function's log, as awslambdaric writes it: everything goes to stdout (a pipe to the emulator).

- ``sys.stdout``/``sys.stderr`` are line-buffered, so ``print`` output appears as it is printed.
- The root logger gets a handler writing ``[LEVEL]\\t<UTC time>Z\\t<request id>\\t<message>`` lines, or JSON
  objects when ``AWS_LAMBDA_LOG_FORMAT=JSON``; ``AWS_LAMBDA_LOG_LEVEL`` sets the root level.
- Function errors are logged as one ``[ERROR] Type: message\\rTraceback…`` line (or one JSON object).
"""

import contextlib
import json
import logging
import sys
import time
import traceback
from collections.abc import Mapping
from typing import Any

from .function_errors import ErrorBody, format_error_log

TEXT_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n"
TEXT_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
JSON_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

runtime_logger = logging.getLogger("pyrie_runtime_client")
"""For the runtime's own warnings (an aborted stream, a refused response…)."""

_request_id = ""
_tenant_id: str | None = None


def set_request(request_id: str, tenant_id: str | None) -> None:
    """The invoke that log records are attributed to."""
    global _request_id, _tenant_id  # noqa: PLW0603 (one invoke at a time per process)
    _request_id = request_id
    _tenant_id = tenant_id


def is_json_format(environ: Mapping[str, str]) -> bool:
    return environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"


def level_from_env(environ: Mapping[str, str]) -> int | None:
    """The root log level ``AWS_LAMBDA_LOG_LEVEL`` asks for (``TRACE`` is ``DEBUG``), if it is a known one."""
    name = environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    if name == "TRACE":
        name = "DEBUG"
    return logging.getLevelNamesMapping().get(name) if name else None


class RequestIdFilter(logging.Filter):
    """Adds ``aws_request_id`` and ``tenant_id`` to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _request_id
        record.tenant_id = _tenant_id
        return True


class StdoutHandler(logging.Handler):
    """Writes each formatted record (which ends with its own newline) to the current ``sys.stdout``."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record))
        except Exception:
            self.handleError(record)


# Record attributes that are not "extra" fields of a JSON log line.
_RESERVED_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "aws_request_id",
    "tenant_id",
}


def _level_band(levelno: int) -> int:
    return min(50, max(0, levelno)) // 10 * 10


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with awslambdaric's fields (``None`` fields left out)."""

    def __init__(self) -> None:
        super().__init__(datefmt=JSON_DATE_FORMAT)
        self._encode = json.JSONEncoder(ensure_ascii=False, default=str).encode

    def format(self, record: logging.LogRecord) -> str:
        level = _level_band(record.levelno)
        exc_info = record.exc_info
        message = record.msg if isinstance(record.msg, dict) and not record.args else record.getMessage()
        fields: dict[str, Any] = {
            "timestamp": self.formatTime(record, self.datefmt),
            "level": logging.getLevelName(level),
            "message": message,
            "logger": record.name,
            "stackTrace": traceback.format_tb(exc_info[2]) if exc_info else None,
            "errorType": exc_info[0].__name__ if exc_info and exc_info[0] else None,
            "errorMessage": str(exc_info[1]) if exc_info else None,
            "requestId": getattr(record, "aws_request_id", None),
            "location": f"{record.pathname}:{record.funcName}:{record.lineno}" if exc_info else None,
            "tenantId": getattr(record, "tenant_id", None),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED_ATTRIBUTES and key not in fields:
                fields[key] = value
        return self._encode({key: value for key, value in fields.items() if value is not None}) + "\n"


def setup_stdio() -> None:
    """Make stdout and stderr line-buffered (they are pipes, block-buffered by default)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)


def setup_logging(json_format: bool, level: int | None) -> logging.Handler:
    """Give the root logger the Lambda handler; returns the handler."""
    logging.Formatter.converter = time.gmtime  # Lambda logs in UTC, whatever formatter the function uses
    handler = StdoutHandler()
    if json_format:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT, TEXT_DATE_FORMAT))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    if level is not None:
        root.setLevel(level)
    root.addHandler(handler)
    return handler


def format_error_record(body: ErrorBody, json_format: bool) -> str:
    """The log line of a function or init error."""
    if not json_format:
        return format_error_log(body)
    record = {"timestamp": time.strftime(JSON_DATE_FORMAT, time.gmtime()), "level": "ERROR", **body}
    return json.dumps(record, default=str) + "\n"


def log_error(body: ErrorBody, json_format: bool) -> None:
    sys.stdout.write(format_error_record(body, json_format))


def flush() -> None:
    """Flush what the function printed without a newline, so it is logged with its invoke."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
