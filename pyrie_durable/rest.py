"""The durable REST APIs (version 2025-12-01) as request in, response out: no HTTP server, no sockets.

The front end hands a request whose path starts with ``/2025-12-01/`` to ``DurableApi.handle`` as it came (method,
raw path and query, body) and writes back the ``RestResponse``: Lambda's rest-json answers and errors (status,
``X-Amzn-ErrorType``, ``{"Type", "Message"|"message"}``), exactly the shapes of botocore's model.

Routes (the model's ``requestUri``s):

    GET    /2025-12-01/durable-executions/{Arn}                       GetDurableExecution
    DELETE /2025-12-01/durable-executions/{Arn}                       DeleteDurableExecution (202)
    POST   /2025-12-01/durable-executions/{Arn}/checkpoint            CheckpointDurableExecution
    GET    /2025-12-01/durable-executions/{Arn}/state                 GetDurableExecutionState
    GET    /2025-12-01/durable-executions/{Arn}/history               GetDurableExecutionHistory
    POST   /2025-12-01/durable-executions/{Arn}/stop                  StopDurableExecution
    GET    /2025-12-01/functions/{FunctionName}/durable-executions    ListDurableExecutionsByFunction
    POST   /2025-12-01/durable-execution-callbacks/{CallbackId}/succeed|fail|heartbeat

Path labels are percent-decoded segment by segment, so an ARN or a callback id whose ``/`` the client encoded
(``%2F``, as every SDK does) or did not (curl) is read the same.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final
from urllib.parse import parse_qs, unquote

from pyrie_core.function_names import InvalidFunctionName, function_arn, parse_function_ref, resolves_to
from pyrie_durable.codec import parse_client_token, parse_error_object, parse_updates, validation_error
from pyrie_durable.durable_errors import DurableServiceError, ErrorCode
from pyrie_durable.engine import DurableEngine
from pyrie_durable.model import DurableFunction, Json
from pyrie_durable.states import ExecutionStatus
from pyrie_durable.views import execution_view, history_page, list_page

__all__ = ["PREFIX", "DurableApi", "RestRequest", "RestResponse"]

log = logging.getLogger("pyrie.durable")

PREFIX: Final = "/2025-12-01/"
_EXECUTION_ACTIONS: Final = frozenset({"checkpoint", "state", "history", "stop", "pause", "resume"})
_CALLBACK_ACTIONS: Final = frozenset({"succeed", "fail", "heartbeat"})
_MAX_CALLBACK_RESULT: Final = 1048576  # BinaryOperationPayload


@dataclass(frozen=True)
class RestRequest:
    method: str
    path: str  # as received: percent-encoded, without the query
    query: str = ""  # as received, without the "?"
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RestResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _query(raw: str) -> dict[str, list[str]]:
    return parse_qs(raw, keep_blank_values=True)


def _one(query: Mapping[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[-1] if values else None


def _boolean(query: Mapping[str, list[str]], key: str, default: bool) -> bool:
    value = _one(query, key)
    if value is None:
        return default
    if value.lower() not in ("true", "false"):
        raise validation_error(key[0].lower() + key[1:], value, "Member must be a boolean")
    return value.lower() == "true"


def _integer(query: Mapping[str, list[str]], key: str, low: int, high: int) -> int | None:
    value = _one(query, key)
    if value is None:
        return None
    path = key[0].lower() + key[1:]
    try:
        number = int(value)
    except ValueError:
        raise validation_error(path, value, "Member must be an integer") from None
    if not low <= number <= high:
        raise validation_error(path, value, f"Member must have value between {low} and {high}")
    return number


def _timestamp(query: Mapping[str, list[str]], key: str) -> float | None:
    """A query timestamp: ISO 8601 (what botocore and the JS SDK send) or epoch seconds."""
    value = _one(query, key)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise validation_error(key[0].lower() + key[1:], value, "Member must be a timestamp") from None


def _json_body(body: bytes) -> object:
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise DurableServiceError(ErrorCode.INVALID_PARAMETER, "The request body is not valid JSON.") from None


def _split(rest: str, actions: frozenset[str]) -> tuple[str, str | None]:
    """``label[/action]`` of a path tail: the label decoded (it may contain encoded or raw slashes)."""
    segments = [unquote(segment) for segment in rest.split("/")]
    if len(segments) > 1 and segments[-1] in actions:
        return "/".join(segments[:-1]), segments[-1]
    return "/".join(segments), None


class DurableApi:
    """The durable REST APIs over one ``DurableEngine``."""

    def __init__(self, engine: DurableEngine, *, request_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> None:
        self._engine = engine
        self._request_id = request_id

    @staticmethod
    def handles(path: str) -> bool:
        """Whether a request path belongs to these APIs."""
        return path.startswith(PREFIX)

    def handle(self, request: RestRequest) -> RestResponse:
        try:
            status, body = self._route(request)
        except DurableServiceError as refused:
            return self._respond(refused.status, refused.body(), error=refused.code)
        except Exception:  # a fault of the service must reach the caller as one, never take its host down
            log.exception("durable API request %s %s failed", request.method, request.path)
            failure = DurableServiceError(ErrorCode.SERVICE, "The durable execution service failed.")
            return self._respond(failure.status, failure.body(), error=failure.code)
        return self._respond(status, body)

    def _respond(self, status: int, body: Json | None, *, error: str | None = None) -> RestResponse:
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = [("X-Amzn-RequestId", self._request_id())]
        if body is not None:
            headers.insert(0, ("Content-Type", "application/json"))
        headers.append(("Content-Length", str(len(payload))))
        if error is not None:
            headers.append(("X-Amzn-ErrorType", error))
        return RestResponse(status, headers, payload)

    def _unknown(self, request: RestRequest) -> DurableServiceError:
        return DurableServiceError(
            ErrorCode.UNKNOWN_OPERATION, f"No operation for {request.method} {request.path.split('?')[0]}"
        )

    def _route(self, request: RestRequest) -> tuple[int, Json | None]:
        method = request.method.upper()
        tail = request.path[len(PREFIX) :] if request.path.startswith(PREFIX) else ""
        collection, _, rest = tail.partition("/")
        query = _query(request.query)
        if collection == "durable-executions" and rest:
            arn, action = _split(rest, _EXECUTION_ACTIONS)
            match method, action:
                case "GET", None:
                    include = _boolean(query, "IncludeExecutionData", True)
                    return 200, execution_view(self._engine.execution(arn), include_data=include)
                case "DELETE", None:
                    return 202, {"DeletionRequestTimestamp": round(self._engine.delete(arn), 3)}
                case "POST", "checkpoint":
                    return 200, self._checkpoint(arn, request.body)
                case "GET", "state":
                    token = _one(query, "CheckpointToken")
                    if not token:
                        raise validation_error("checkpointToken", None, "Member must not be null")
                    max_items = _integer(query, "MaxItems", 0, 1000)
                    return 200, self._engine.state(arn, token, _one(query, "Marker"), max_items)
                case "GET", "history":
                    return 200, history_page(
                        self._engine.execution(arn),
                        include_data=_boolean(query, "IncludeExecutionData", True),
                        reverse=_boolean(query, "ReverseOrder", False),
                        marker=_one(query, "Marker"),
                        max_items=_integer(query, "MaxItems", 0, 1000),
                    )
                case "POST", "stop":
                    error = parse_error_object(_json_body(request.body), "error")
                    return 200, {"StopTimestamp": round(self._engine.stop(arn, error), 3)}
                case "POST", "pause" | "resume":
                    raise DurableServiceError(
                        ErrorCode.INVALID_PARAMETER,
                        f"{action.capitalize()}DurableExecution is not supported by pyrie.",
                    )
        elif collection == "functions" and rest:
            name, _, tail_rest = rest.partition("/")
            if method == "GET" and tail_rest == "durable-executions":
                return 200, self._list(unquote(name), query)
        elif collection == "durable-execution-callbacks" and rest:
            callback_id, action = _split(rest, _CALLBACK_ACTIONS)
            if method == "POST" and action is not None:
                return self._callback(callback_id, action, request.body)
        raise self._unknown(request)

    def _checkpoint(self, arn: str, body: bytes) -> Json:
        fields = _json_body(body)
        if not isinstance(fields, dict):
            raise validation_error("checkpointToken", None, "Member must not be null")
        token = fields.get("CheckpointToken")
        if not isinstance(token, str) or not token:
            raise validation_error("checkpointToken", token, "Member must not be null")
        updates = parse_updates(fields.get("Updates"))
        client_token = parse_client_token(fields.get("ClientToken"))
        return self._engine.checkpoint(arn, token, updates, client_token)

    def _list(self, function_name: str, query: Mapping[str, list[str]]) -> Json:
        function = self._function(function_name, _one(query, "Qualifier"))
        statuses = None
        if "Statuses" in query:
            allowed = [status.value for status in ExecutionStatus]
            wanted = query["Statuses"]
            for status in wanted:
                if status not in allowed:
                    raise validation_error(
                        "statuses", status, f"Member must satisfy enum value set: [{', '.join(allowed)}]"
                    )
            statuses = frozenset(ExecutionStatus(status) for status in wanted)
        return list_page(
            self._engine.executions_of(function.name),
            name=_one(query, "DurableExecutionName"),
            statuses=statuses,
            started_after=_timestamp(query, "StartedAfter"),
            started_before=_timestamp(query, "StartedBefore"),
            oldest_first=_boolean(query, "ReverseOrder", False),
            marker=_one(query, "Marker"),
            max_items=_integer(query, "MaxItems", 0, 1000),
        )

    def _callback(self, callback_id: str, action: str, body: bytes) -> tuple[int, Json | None]:
        if not callback_id:
            raise validation_error("callbackId", callback_id, "Member must have length greater than or equal to 1")
        match action:
            case "succeed":
                if len(body) > _MAX_CALLBACK_RESULT:
                    raise validation_error(
                        "result", "...", f"Member must have length less than or equal to {_MAX_CALLBACK_RESULT}"
                    )
                self._engine.callback_succeeded(callback_id, body)
            case "fail":
                self._engine.callback_failed(callback_id, parse_error_object(_json_body(body), "error"))
            case _:
                self._engine.callback_heartbeat(callback_id)
        return 200, None

    def _function(self, reference: str, qualifier: str | None) -> DurableFunction:
        """The function ``reference`` names, as Invoke reads a function name: ``function`` (the Go emulator's fixed
        name), its name, or its partial or full ARN, with no qualifier, ``$LATEST`` or its version (in the name or as
        ``Qualifier``). A malformed name or qualifier is refused as Invoke refuses it (400), another function or
        version is not found (404)."""
        try:
            ref = parse_function_ref(reference, qualifier)
        except InvalidFunctionName as invalid:
            raise DurableServiceError(ErrorCode.INVALID_PARAMETER, str(invalid)) from None
        for function in self._engine.functions.values():
            if resolves_to(ref, function.name, function.version):
                return function
        qualified = f"{function_arn(ref.name)}:{ref.qualifier or '$LATEST'}"
        raise DurableServiceError(ErrorCode.NOT_FOUND, f"Function not found: {qualified}")
