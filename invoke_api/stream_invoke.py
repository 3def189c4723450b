"""InvokeWithResponseStream (``POST /2021-11-15/functions/{name}/response-streaming-invocations``).

The answer is an ``application/vnd.amazon.eventstream`` body (lambda-protocols.md §b): one ``PayloadChunk`` per
runtime write, sent as it arrives, then one ``InvokeComplete``. A buffered result arrives as chunks too. A function
that fails (its error response, an error trailer after a partial stream, a timeout, a crash) still gets status 200:
``InvokeComplete`` carries the error type in ``ErrorCode`` and the error body in ``ErrorDetails``, the mapping that
runtimes-custom.html describes for the error trailers ("Lambda treats this as a successful response and forwards
the error metadata ... to the client"). Errors before the stream starts are Lambda's rest-json errors, which the
SDKs raise as their modelled exceptions (404 ``ResourceNotFoundException``, 413, 429 ``TooManyRequestsException``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final

from invoke_api import eventstream
from invoke_api.invoke import RequestError, answer_end, begin, read_invoke, refuse
from invoke_api.relay import Relay, RelayBody, start_streaming
from invoke_api.responses import StartResponse
from invoke_api.supervisor_client import SupervisorClient
from pyrie_core import lambda_errors as errors
from pyrie_core.pipe.messages import Chunk, End, Outcome

__all__ = ["complete_event", "handle"]

# The model's ResponseStreamingInvocationType: Event is not among them.
INVOCATION_TYPES: Final = ("RequestResponse", "DryRun")


def handle(
    client: SupervisorClient, environ: dict[str, Any], start_response: StartResponse, name: str
) -> Iterable[bytes]:
    try:
        request = read_invoke(environ, name, stream=True)
        _check_invocation_type(request.invocation_type)
        conn, first = begin(client, request)
    except RequestError as exc:
        return refuse(start_response, exc)
    if isinstance(first, End) and first.outcome is not Outcome.FUNCTION_ERROR:
        client.release(conn)
        return answer_end(start_response, first)  # a service error, or DryRun's 204
    headers = [
        ("Content-Type", eventstream.CONTENT_TYPE),
        ("X-Amzn-RequestId", first.request_id),
        ("X-Amz-Executed-Version", first.executed_version),
    ]
    if isinstance(first, End):  # the function failed before any byte of its response
        client.release(conn)
        start_response("200 OK", headers)
        return [complete_event(first)]
    start_streaming(start_response, "200 OK", headers)
    relay = Relay(client, conn, environ, first.request_id)
    return RelayBody(relay, _events(relay))


def _check_invocation_type(invocation_type: str) -> None:
    # What Lambda answers here is not documented or recorded anywhere we could find. botocore does not check enums
    # client-side, so the request does reach the service; its input validation answers an enum violation as the
    # ValidationException recorded for an invalid InvokeMode (LocalStack's AWS-validated snapshot
    # test_lambda_url_invalid_invoke_mode: 400, "1 validation error detected: Value 'UNKNOWN' at 'invokeMode'
    # failed to satisfy constraint: Member must satisfy enum value set: [...]"). The same shape is used here.
    if invocation_type not in INVOCATION_TYPES:
        raise RequestError(
            400,
            "ValidationException",
            f"1 validation error detected: Value '{invocation_type}' at 'invocationType' failed to satisfy "
            f"constraint: Member must satisfy enum value set: [{', '.join(INVOCATION_TYPES)}]",
            body_fields={},
        )


def _events(relay: Relay) -> Iterator[bytes]:
    while True:
        message = relay.read()
        if isinstance(message, Chunk):
            yield from eventstream.payload_chunks(message.data)
        else:
            yield complete_event(message)
            return


def complete_event(end: End) -> bytes:
    """The ``InvokeComplete`` event for how the invoke ended: its error type and body, and the log tail.

    The error type is the one the error body names (a runtime's ``/error`` header may have been normalised to
    ``Runtime.Unknown`` as the Go emulator does), else the one the supervisor reported (a trailer, a timeout)."""
    if end.outcome is Outcome.OK:
        return eventstream.invoke_complete(log_result=end.log_result)
    error_code = errors.error_type_of(end.body) or end.error_type or "Unhandled"
    details = end.body.decode("utf-8", "replace") if end.body else None
    return eventstream.invoke_complete(error_code, details, end.log_result)
