"""The context object handed to handlers, with the attributes of awslambdaric's ``LambdaContext``."""

import json
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from .function_errors import CONTEXT_UNMARSHAL_ERROR, FaultError

# The W3C trace-context fields of the client context that `LambdaContext.w3c()` exposes (as awslambdaric).
_W3C_FIELDS = ("traceparent", "tracestate", "baggage")


class FunctionInfo:
    """What the environment says about the function; read once at start-up, shared by every context."""

    __slots__ = ("function_name", "function_version", "log_group_name", "log_stream_name", "memory_limit_in_mb")

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        # A string, as in awslambdaric.
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")


class CognitoIdentity:
    """``context.identity``: the Amazon Cognito identity of the caller (both fields ``None`` if there is none)."""

    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, cognito_identity_id: str | None = None, cognito_identity_pool_id: str | None = None) -> None:
        self.cognito_identity_id = cognito_identity_id
        self.cognito_identity_pool_id = cognito_identity_pool_id

    def __repr__(self) -> str:
        return (
            f"CognitoIdentity([cognito_identity_id={self.cognito_identity_id},"
            f"cognito_identity_pool_id={self.cognito_identity_pool_id}])"
        )


class Client:
    """``context.client_context.client``: the mobile client application."""

    __slots__ = ("app_package_name", "app_title", "app_version_code", "app_version_name", "installation_id")

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.installation_id = fields.get("installation_id")
        self.app_title = fields.get("app_title")
        self.app_version_name = fields.get("app_version_name")
        self.app_version_code = fields.get("app_version_code")
        self.app_package_name = fields.get("app_package_name")

    def __repr__(self) -> str:
        return (
            f"Client([installation_id={self.installation_id},app_title={self.app_title},"
            f"app_version_name={self.app_version_name},app_version_code={self.app_version_code},"
            f"app_package_name={self.app_package_name}])"
        )


class ClientContext:
    """``context.client_context``: what the caller sent in ``X-Amz-Client-Context``."""

    __slots__ = ("client", "custom", "env")

    def __init__(self, fields: Mapping[str, Any]) -> None:
        client = fields.get("client")
        self.client = Client(client) if isinstance(client, Mapping) else None
        self.custom = fields.get("custom")
        self.env = fields.get("env")

    def __repr__(self) -> str:
        return f"ClientContext([custom={self.custom},env={self.env},client={self.client}])"


class LambdaContext:
    """The second argument of every handler."""

    def __init__(
        self,
        aws_request_id: str,
        invoked_function_arn: str | None,
        deadline_ms: int,
        function: FunctionInfo,
        *,
        client_context: ClientContext | None = None,
        identity: CognitoIdentity | None = None,
        tenant_id: str | None = None,
        w3c_fields: dict[str, str] | None = None,
    ) -> None:
        self.aws_request_id = aws_request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = function.function_name
        self.function_version = function.function_version
        self.memory_limit_in_mb = function.memory_limit_in_mb
        self.log_group_name = function.log_group_name
        self.log_stream_name = function.log_stream_name
        self.client_context = client_context
        self.identity = identity if identity is not None else CognitoIdentity()
        self.tenant_id = tenant_id
        self._epoch_deadline_time_in_ms = deadline_ms
        self._w3c_fields = w3c_fields or {}

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invoke times out (0 once past the deadline)."""
        remaining = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def w3c(self) -> dict[str, str]:
        """The W3C trace context (``traceparent``, ``tracestate``, ``baggage``) the caller sent, if any."""
        return dict(self._w3c_fields)

    def log(self, msg: Any) -> None:
        """Write ``msg`` to the function's log as it is."""
        sys.stdout.write(str(msg))

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},log_group_name={self.log_group_name},"
            f"log_stream_name={self.log_stream_name},function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},client_context={self.client_context},"
            f"identity={self.identity},tenant_id={self.tenant_id}])"
        )


def _parse_json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except Exception as exc:
        raise FaultError(CONTEXT_UNMARSHAL_ERROR, f"Unable to parse {what} JSON: {exc}") from None
    if not isinstance(value, dict):
        raise FaultError(CONTEXT_UNMARSHAL_ERROR, f"Unable to parse {what} JSON: not a JSON object")
    return value


def parse_deadline(header: str | None) -> int:
    """``Lambda-Runtime-Deadline-Ms`` as an int (0, i.e. already due, if absent or malformed)."""
    try:
        return int(header) if header else 0
    except ValueError:
        return 0


def make_context(
    request_id: str,
    invoked_function_arn: str | None,
    deadline_ms: int,
    function: FunctionInfo,
    *,
    client_context_json: str | None = None,
    cognito_identity_json: str | None = None,
    tenant_id: str | None = None,
) -> LambdaContext:
    """The context of one invoke, from the values of its ``/next`` headers.

    Raises ``FaultError`` (``Runtime.LambdaContextUnmarshalError``) if a JSON header cannot be parsed.
    """
    client_context = None
    w3c_fields = None
    if client_context_json:
        fields = _parse_json_object(client_context_json, "Client Context")
        w3c = fields.pop("w3c", None)  # not visible through client_context, as in awslambdaric
        if isinstance(w3c, dict):
            w3c_fields = {key: value for key in _W3C_FIELDS if isinstance(value := w3c.get(key), str)}
        client_context = ClientContext(fields)
    identity = None
    if cognito_identity_json:
        fields = _parse_json_object(cognito_identity_json, "Cognito Identity")
        identity = CognitoIdentity(fields.get("cognitoIdentityId"), fields.get("cognitoIdentityPoolId"))
    return LambdaContext(
        request_id,
        invoked_function_arn,
        deadline_ms,
        function,
        client_context=client_context,
        identity=identity,
        tenant_id=tenant_id,
        w3c_fields=w3c_fields,
    )
