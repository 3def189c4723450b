"""The runtime: import the handler, then ask the Runtime API for events and answer them, forever.

Start-up mirrors awslambdaric: the handler comes from ``argv[1]`` (else ``_HANDLER``), the Runtime API from
``AWS_LAMBDA_RUNTIME_API``; the function's directory (``LAMBDA_TASK_ROOT``, else the working directory) goes first on
``sys.path``. If the handler cannot be loaded, the error is posted to ``/init/error`` and the process exits 1. If the
Runtime API goes away, the process exits 1 with one "Failed to get next invocation" line. SIGTERM exits 0.
"""

import logging
import os
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from types import FrameType
from typing import Any

from . import logs
from .api import Invocation, RuntimeApi, RuntimeApiError, StreamAborted
from .context import FunctionInfo, make_context, parse_deadline
from .function_errors import ErrorBody, FaultError, error_from_exception, error_from_fault, make_error
from .handler import Handler, load_handler, prepend_sys_path
from .marshalling import Marshaller
from .streaming import STREAMING_ATTRIBUTE, as_stream, first_chunk, iterate_body, stream_content_type, to_bytes

TRACE_ID_ENV = "_X_AMZN_TRACE_ID"
UNHANDLED_INIT_WARNING = "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function code."


def set_trace_id(trace_id: str | None) -> None:
    """``_X_AMZN_TRACE_ID`` holds the invoke's ``Lambda-Runtime-Trace-Id`` (unset when there is none)."""
    if trace_id is not None:
        os.environ[TRACE_ID_ENV] = trace_id
    else:
        os.environ.pop(TRACE_ID_ENV, None)


def _close_iterator(chunks: Iterator[Any]) -> None:
    close = getattr(chunks, "close", None)
    if close is None:
        return
    try:
        close()  # runs the generator's `finally` blocks
    except Exception:
        logs.runtime_logger.warning("closing the abandoned stream failed", exc_info=True)


class Runtime:
    """Runs one handler for every event the Runtime API gives."""

    def __init__(
        self, api: RuntimeApi, handler: Handler, function: FunctionInfo, marshaller: Marshaller, json_logs: bool
    ) -> None:
        self.api = api
        self.handler = handler
        self.function = function
        self.marshaller = marshaller
        self.json_logs = json_logs
        marked = getattr(handler, STREAMING_ATTRIBUTE, None)
        self.marked_content_type: str | None = marked if isinstance(marked, str) else None

    def run(self) -> None:
        """Answer events until the Runtime API fails (``RuntimeApiError``)."""
        while True:
            self.handle(self.api.next_invocation())

    def handle(self, invocation: Invocation) -> None:
        """Run the handler for one event and send its result, streamed or not, or its error."""
        request_id = invocation.request_id
        logs.set_request(request_id, invocation.tenant_id)
        set_trace_id(invocation.trace_id)
        try:
            self._handle(invocation, request_id)
        except RuntimeApiError as exc:
            logs.runtime_logger.error("%s", exc)
        finally:
            logs.flush()

    def _handle(self, invocation: Invocation, request_id: str) -> None:
        marked = self.marked_content_type
        try:
            context = make_context(
                request_id,
                invocation.invoked_function_arn,
                parse_deadline(invocation.deadline_ms),
                self.function,
                client_context_json=invocation.client_context,
                cognito_identity_json=invocation.cognito_identity,
                tenant_id=invocation.tenant_id,
            )
            event = self.marshaller.unmarshal(invocation.body, invocation.content_type)
            result = self.handler(event, context)
            stream = as_stream(result, marked)
            if stream is None:
                payload, content_type = self.marshaller.marshal(result)
            else:
                content_type = stream_content_type(stream, marked)
                chunks = iterate_body(stream.body)
                first = first_chunk(chunks)  # an error before the first chunk is a plain error response
        except FaultError as fault:
            self._report_error(request_id, *error_from_fault(fault, request_id))
            return
        except Exception as exc:
            self._report_error(request_id, *error_from_exception(exc, request_id))
            return
        if stream is None:
            self.api.post_response(request_id, payload, content_type)
        else:
            self._stream(request_id, content_type, stream.prelude, first, chunks)

    def _report_error(self, request_id: str, body: ErrorBody, xray_cause: dict[str, Any]) -> None:
        logs.log_error(body, self.json_logs)
        to_json = self.marshaller.to_json
        self.api.post_error(request_id, to_json(body), body["errorType"], to_json(xray_cause))

    def _stream(
        self, request_id: str, content_type: str, prelude: Sequence[bytes], first: bytes | None, chunks: Iterator[Any]
    ) -> None:
        out = self.api.open_stream(request_id, content_type)
        try:
            for part in prelude:
                if part:
                    out.write(part)
            if first is not None:
                out.write(first)
                for item in chunks:
                    data = to_bytes(item)
                    if data:
                        out.write(data)
        except StreamAborted as exc:
            logs.runtime_logger.warning("%s", exc)
            _close_iterator(chunks)
            return
        except Exception as exc:
            body, _ = error_from_exception(exc, request_id)
            logs.log_error(body, self.json_logs)
            out.fail(body["errorType"], self.marshaller.to_json(body))
            return
        out.finish()


def _fatal(message: str) -> None:
    logs.flush()
    sys.stderr.write(f"[ERROR] pyrie_runtime_client: {message}\n")
    sys.stderr.flush()


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _load(handler_name: str) -> tuple[Handler | None, ErrorBody | None]:
    try:
        return load_handler(handler_name), None
    except FaultError as fault:
        return None, make_error(fault.message, fault.error_type, fault.stack_trace)
    except Exception as exc:
        body, _ = error_from_exception(exc)
        return None, body


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the runtime; returns the exit status."""
    args = sys.argv if argv is None else argv
    env = os.environ if environ is None else environ
    handler_name = args[1] if len(args) > 1 and args[1] else env.get("_HANDLER")
    if not handler_name:
        _fatal("no handler: give it as the first argument (module.function) or in _HANDLER")
        return 1
    address = env.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        _fatal("AWS_LAMBDA_RUNTIME_API is not set")
        return 1

    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    logs.setup_stdio()
    json_logs = logs.is_json_format(env)
    logs.setup_logging(json_logs, logs.level_from_env(env))
    prepend_sys_path(env.get("LAMBDA_TASK_ROOT") or os.getcwd())
    marshaller = Marshaller(env)
    api = RuntimeApi(address)
    try:
        handler, init_error = _load(handler_name)
        if handler is None:
            assert init_error is not None
            logging.warning(UNHANDLED_INIT_WARNING)
            logs.log_error(init_error, json_logs)
            try:
                api.post_init_error(marshaller.to_json(init_error), init_error["errorType"])
            except RuntimeApiError as exc:
                _fatal(f"could not report the init error: {exc}")
            return 1
        runtime = Runtime(api, handler, FunctionInfo(env), marshaller, json_logs)
        try:
            runtime.run()
        except RuntimeApiError as exc:
            _fatal(f"Failed to get next invocation: {exc}")
            return 1
    finally:
        logs.flush()
        api.close()
    return 0  # not reached: the loop only ends by an exception
