"""runtime_client.http_response_stream: the HTTP prelude a Function URL turns into status and headers."""

from __future__ import annotations

import json

import pytest

from pyrie_runtime_client import StreamingResponse, http_response_stream
from pyrie_runtime_client.streaming import HTTP_INTEGRATION_CONTENT_TYPE, iterate_body


def test_the_prelude_is_what_node_sends() -> None:
    response = http_response_stream(
        iter(["data: 1\n\n"]), status_code=201, headers={"Content-Type": "text/event-stream"}, cookies=["a=1"]
    )
    assert isinstance(response, StreamingResponse)
    assert response.content_type == HTTP_INTEGRATION_CONTENT_TYPE
    prelude, end = response.prelude
    assert json.loads(prelude) == {
        "statusCode": 201,
        "headers": {"Content-Type": "text/event-stream"},
        "cookies": ["a=1"],
    }
    assert end == b"\0" * 8
    assert list(iterate_body(response.body)) == ["data: 1\n\n"]


def test_defaults() -> None:
    (prelude, _) = http_response_stream("body").prelude
    assert json.loads(prelude) == {"statusCode": 200}


@pytest.mark.parametrize("status", [99, 600, True, "200"])
def test_bad_status(status: object) -> None:
    with pytest.raises(ValueError, match="status_code"):
        http_response_stream("", status_code=status)  # type: ignore[arg-type]


def test_bad_headers() -> None:
    with pytest.raises(TypeError, match="str"):
        http_response_stream("", headers={"X": 1})  # type: ignore[dict-item]
