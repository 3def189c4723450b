"""The Runtime API client: one persistent HTTP/1.1 connection (``http.client``) for ``/next``, responses,
errors and streamed responses with trailers.

A connection the Runtime API closed while idle is noticed before it is used (it polls readable) and replaced; a
request that fails on a reused connection is retried once on a fresh one. A streamed response is written chunk by
chunk on the same connection; if the Runtime API answers before the body is complete (413, an invoke that timed
out…) or drops the connection, the stream raises ``StreamAborted`` and the connection is replaced.
"""

import http.client
import select
import sys
from urllib.parse import quote

from .chunked import LAST_CHUNK, TRAILER_HEADER_VALUE, encode_chunk, encode_error_trailers, field_value

API_VERSION = "/2018-06-01"
NEXT_PATH = f"{API_VERSION}/runtime/invocation/next"
INIT_ERROR_PATH = f"{API_VERSION}/runtime/init/error"
_INVOCATION_PREFIX = f"{API_VERSION}/runtime/invocation/"

ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
XRAY_ERROR_CAUSE_HEADER = "Lambda-Runtime-Function-XRay-Error-Cause"
RESPONSE_MODE_HEADER = "Lambda-Runtime-Function-Response-Mode"
# Larger causes are left out (awslambdaric's limit is 1 MiB, but a header block that large would be refused by
# servers with a 16 KiB default, such as h11, and the error response with it).
_XRAY_CAUSE_MAX_BYTES = 8 * 1024

USER_AGENT = "pyrie-runtime-client/0.1 python/{}.{}.{}".format(*sys.version_info[:3])

_NETWORK_ERRORS = (OSError, http.client.HTTPException)


class RuntimeApiError(Exception):
    """The Runtime API could not be reached, dropped the connection, or answered with an unexpected status."""


class StreamAborted(RuntimeApiError):
    """A streamed response could not be completed: the Runtime API answered early or dropped the connection."""


class Invocation:
    """One event from ``/next``: its body and the headers the runtime uses."""

    __slots__ = (
        "body",
        "client_context",
        "cognito_identity",
        "content_type",
        "deadline_ms",
        "invoked_function_arn",
        "request_id",
        "tenant_id",
        "trace_id",
    )

    def __init__(self, body: bytes, headers: http.client.HTTPMessage) -> None:
        get = headers.get
        self.body = body
        self.request_id: str = get("Lambda-Runtime-Aws-Request-Id") or ""
        self.deadline_ms: str | None = get("Lambda-Runtime-Deadline-Ms")
        self.invoked_function_arn: str | None = get("Lambda-Runtime-Invoked-Function-Arn")
        self.trace_id: str | None = get("Lambda-Runtime-Trace-Id")
        self.client_context: str | None = get("Lambda-Runtime-Client-Context")
        self.cognito_identity: str | None = get("Lambda-Runtime-Cognito-Identity")
        self.tenant_id: str | None = get("Lambda-Runtime-Aws-Tenant-Id")
        self.content_type: str | None = get("Content-Type")


def invocation_path(request_id: str, what: str) -> str:
    """``/2018-06-01/runtime/invocation/{id}/{what}``."""
    return f"{_INVOCATION_PREFIX}{quote(request_id, safe='')}/{what}"


def _describe(status: int, body: bytes) -> str:
    text = body[:500].decode("utf-8", "replace").strip()
    return f"{status} {text}" if text else str(status)


class RuntimeApi:
    """The Runtime API at ``address`` (``host:port``)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._conn = http.client.HTTPConnection(address)
        self._get_headers = {"User-Agent": USER_AGENT}

    def close(self) -> None:
        self._conn.close()

    def _ready_connection(self) -> bool:
        """Drop the connection if the peer closed it (or sent something unasked) while idle.
        Returns whether a live connection will be reused."""
        sock = self._conn.sock
        if sock is None:
            return False
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        if poller.poll(0):
            self._conn.close()
            return False
        return True

    def _exchange(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[http.client.HTTPResponse, bytes]:
        """Send one request and read its whole answer; retried once if a reused connection turns out dead."""
        for attempt in (1, 2):
            reused = self._ready_connection()
            try:
                self._conn.request(method, path, body, headers)
                response = self._conn.getresponse()
                return response, response.read()
            except _NETWORK_ERRORS as exc:
                self._conn.close()
                if not reused or attempt == 2:
                    raise RuntimeApiError(f"{method} {path}: {exc or type(exc).__name__}") from exc
        raise AssertionError("unreachable")

    def next_invocation(self) -> Invocation:
        """Wait for the next event (``GET /next`` blocks until the Runtime API has one)."""
        response, body = self._exchange("GET", NEXT_PATH, None, self._get_headers)
        if response.status != 200:
            raise RuntimeApiError(f"GET {NEXT_PATH} answered {_describe(response.status, body)}")
        return Invocation(body, response.headers)

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        response, answer = self._exchange("POST", path, body, headers)
        if response.status != 202:
            raise RuntimeApiError(f"POST {path} answered {_describe(response.status, answer)}")

    def post_response(self, request_id: str, body: bytes, content_type: str) -> None:
        """Send a buffered result."""
        headers = {"Content-Type": content_type, "User-Agent": USER_AGENT}
        self._post(invocation_path(request_id, "response"), body, headers)

    def post_error(self, request_id: str, body: bytes, error_type: str, xray_cause: bytes | None = None) -> None:
        """Report a failed invoke with its JSON error body."""
        self._post(invocation_path(request_id, "error"), body, self._error_headers(error_type, xray_cause))

    def post_init_error(self, body: bytes, error_type: str) -> None:
        """Report a failed initialisation with its JSON error body."""
        self._post(INIT_ERROR_PATH, body, self._error_headers(error_type, None))

    @staticmethod
    def _error_headers(error_type: str, xray_cause: bytes | None) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            ERROR_TYPE_HEADER: field_value(error_type) or "Runtime.Unknown",
        }
        if xray_cause and len(xray_cause) < _XRAY_CAUSE_MAX_BYTES:
            headers[XRAY_ERROR_CAUSE_HEADER] = field_value(xray_cause.decode("utf-8", "replace"))
        return headers

    def open_stream(self, request_id: str, content_type: str) -> "ResponseStream":
        """Start a streamed response; nothing is sent before its first chunk (or its end)."""
        self._ready_connection()
        return ResponseStream(self._conn, invocation_path(request_id, "response"), content_type)


class ResponseStream:
    """One streamed ``/response``: ``write`` each chunk, then ``finish`` or ``fail``.

    Every method raises ``StreamAborted`` (after closing the connection) if the Runtime API answered before the end
    of the body or the connection broke, and ``finish``/``fail`` raise ``RuntimeApiError`` if the final answer is not
    202.
    """

    def __init__(self, conn: http.client.HTTPConnection, path: str, content_type: str) -> None:
        self._conn = conn
        self.path = path
        self._content_type = content_type
        self._poller: select.poll | None = None

    def _start(self) -> None:
        conn = self._conn
        try:
            conn.putrequest("POST", self.path, skip_accept_encoding=True)
            conn.putheader(RESPONSE_MODE_HEADER, "streaming")
            conn.putheader("Transfer-Encoding", "chunked")
            conn.putheader("Trailer", TRAILER_HEADER_VALUE)
            conn.putheader("Content-Type", self._content_type)
            conn.putheader("User-Agent", USER_AGENT)
            conn.endheaders()
        except _NETWORK_ERRORS as exc:
            conn.close()
            raise StreamAborted(f"POST {self.path}: {exc or type(exc).__name__}") from exc
        assert conn.sock is not None
        self._poller = select.poll()
        self._poller.register(conn.sock, select.POLLIN)

    def _send(self, data: bytes) -> None:
        if self._poller is None:
            self._start()
        elif self._poller.poll(0):
            self._early_answer()
        try:
            self._conn.send(data)
        except _NETWORK_ERRORS as exc:
            self._conn.close()
            raise StreamAborted(f"POST {self.path}: connection lost while streaming ({exc})") from exc

    def _early_answer(self) -> None:
        """The Runtime API answered (or hung up) before the body was complete: read why, give up the connection."""
        try:
            response = self._conn.getresponse()
            reason = f"answered {_describe(response.status, response.read())} before the end of the stream"
        except _NETWORK_ERRORS as exc:
            reason = f"closed the connection before the end of the stream ({exc or type(exc).__name__})"
        self._conn.close()
        raise StreamAborted(f"POST {self.path}: {reason}")

    def write(self, data: bytes) -> None:
        """Send one non-empty chunk now."""
        self._send(encode_chunk(data))

    def finish(self) -> None:
        """End the body and wait for the Runtime API's answer."""
        self._send(LAST_CHUNK)
        self._answer()

    def fail(self, error_type: str, error_body: bytes) -> None:
        """End the body with the error trailers and wait for the Runtime API's answer."""
        self._send(encode_error_trailers(error_type, error_body))
        self._answer()

    def _answer(self) -> None:
        try:
            response = self._conn.getresponse()
            body = response.read()
        except _NETWORK_ERRORS as exc:
            self._conn.close()
            raise StreamAborted(f"POST {self.path}: no answer after the stream ({exc or type(exc).__name__})") from exc
        if response.status != 202:
            raise RuntimeApiError(f"POST {self.path} answered {_describe(response.status, body)}")
