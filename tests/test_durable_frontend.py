"""The front end's part of the durable APIs: the path it forwards is the one the client sent, still encoded."""

from __future__ import annotations

import pytest

from invoke_api.durable_api import raw_path

ARN = "arn%3Aaws%3Alambda%3Aus-east-1%3A012345678912%3Afunction%3Af%3A%24LATEST%2Fdurable-execution%2Fn%2Fi"


@pytest.mark.parametrize(
    ("environ", "path"),
    [
        (
            {"RAW_URI": f"/2025-12-01/durable-executions/{ARN}/history?MaxItems=5"},
            f"/2025-12-01/durable-executions/{ARN}/history",
        ),
        (
            {"RAW_URI": f"http://127.0.0.1:8080/2025-12-01/durable-executions/{ARN}"},
            f"/2025-12-01/durable-executions/{ARN}",
        ),
        # Without gunicorn's RAW_URI, pywsgi's decoded PATH_INFO is encoded again: "/" stays a separator.
        (
            {"PATH_INFO": "/2025-12-01/durable-execution-callbacks/a b/succeed"},
            "/2025-12-01/durable-execution-callbacks/a%20b/succeed",
        ),
    ],
    ids=["raw-uri", "absolute-form", "path-info"],
)
def test_the_forwarded_path_is_the_raw_one(environ: dict[str, str], path: str) -> None:
    assert raw_path(environ) == path
