"""SnapStart as far as a process can have it (``--enable-init-caching``): the Runtime API's restore routes and
container credentials endpoint, and the real Python runtime interface client (awslambdaric) running real
``snapshot_restore_py`` hooks under pyrie."""

from __future__ import annotations

import calendar
import json
import time
from types import SimpleNamespace
from typing import Any

import pytest

from pyrie_core.address import Address
from runtime_api.credentials_routes import render_credentials
from runtime_api.host import ContainerCredentials
from runtime_api.http_connection import Request
from runtime_api.router import dispatch
from runtime_api.runtime_states import runtime_machine
from supervisor.cli import DUMMY_CREDENTIALS, parse
from supervisor.config import Config, ConfigError

# --- the Runtime API's routes ----------------------------------------------------------------------------------


class RecordingConnection:
    def __init__(self) -> None:
        self.responses: list[tuple[int, list[tuple[str, str]], bytes]] = []
        self.peer = ("127.0.0.1", 40000)

    def respond(self, status: int, headers: Any = (), body: bytes = b"") -> None:
        self.responses.append((status, list(headers), body))


class FixedCredentials:
    """A SnapStart side whose only token is ``good``."""

    def __init__(self) -> None:
        self.waited = 0

    def restore_next(self) -> None:
        self.waited += 1

    def restore_failed(self, error_type: str) -> None:
        raise AssertionError("not expected here")

    def credentials(self, token: str) -> ContainerCredentials | None:
        if token != "good":
            return None
        return ContainerCredentials("AKID", "secret/+key", "session", calendar.timegm((2031, 1, 2, 3, 4, 5)))


def answer(host: Any, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    conn = RecordingConnection()
    dispatch(host, Request(method, path, headers or {}, chunked=False), conn)
    [(status, head, body)] = conn.responses
    return status, dict(head), body


SNAPSTART_PATHS = [
    ("GET", "/2018-06-01/runtime/restore/next"),
    ("POST", "/2018-06-01/runtime/restore/error"),
    ("GET", "/2021-04-23/credentials"),
]


@pytest.mark.parametrize(("method", "path"), SNAPSTART_PATHS)
def test_without_init_caching_the_snapstart_routes_are_not_there(method: str, path: str) -> None:
    host = SimpleNamespace(snapstart=None, runtime=runtime_machine())
    assert answer(host, method, path) == (404, {"Content-Type": "text/plain; charset=utf-8"}, b"404 page not found\n")


@pytest.mark.parametrize(("method", "path"), SNAPSTART_PATHS)
def test_with_init_caching_a_wrong_method_is_405(method: str, path: str) -> None:
    host = SimpleNamespace(snapstart=FixedCredentials(), runtime=runtime_machine())
    wrong = "POST" if method == "GET" else "GET"
    status, head, _ = answer(host, wrong, path)
    assert (status, head["Allow"]) == (405, method)


def test_credentials_for_the_right_token_as_the_go_emulator_renders_them() -> None:
    host = SimpleNamespace(snapstart=FixedCredentials(), runtime=runtime_machine())
    status, head, body = answer(host, "GET", "/2021-04-23/credentials", {"authorization": "good"})
    assert status == 200
    assert head["Content-Type"] == "text/plain; charset=utf-8"  # what Go's DetectContentType makes of the JSON
    assert body == (
        b'{"AccessKeyId":"AKID","SecretAccessKey":"secret/+key","Token":"session","Expiration":"2031-01-02T03:04:05Z"}'
    )


@pytest.mark.parametrize("headers", [{"authorization": "bad"}, {}, {"authorization": "Bearer good"}])
def test_credentials_for_any_other_token_are_404_with_the_go_emulators_text(headers: dict[str, str]) -> None:
    host = SimpleNamespace(snapstart=FixedCredentials(), runtime=runtime_machine())
    status, head, body = answer(host, "GET", "/2021-04-23/credentials", headers)
    assert (status, body) == (404, b"cannot get credentials for the provided token\n")
    assert head == {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"}


def test_restore_next_is_routed_to_the_snapstart_side() -> None:
    snapstart = FixedCredentials()
    host = SimpleNamespace(snapstart=snapstart, runtime=runtime_machine())
    assert answer(host, "GET", "/2018-06-01/runtime/restore/next") == (200, {}, b"")
    assert snapstart.waited == 1


def test_expiration_is_rendered_in_utc() -> None:
    moment = time.time() + 3600
    rendered = json.loads(render_credentials(ContainerCredentials("a", "b", "c", moment)))["Expiration"]
    assert calendar.timegm(time.strptime(rendered, "%Y-%m-%dT%H:%M:%SZ")) == int(moment)


# --- the command line -------------------------------------------------------------------------------------------

KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def configure(tmp_path: Any, *flags: str, **environ: str) -> Config:
    bootstrap = tmp_path / "bootstrap"
    bootstrap.write_text("#!/bin/sh\n")
    bootstrap.chmod(0o755)
    return parse([*flags, str(bootstrap)], environ=environ, cwd=str(tmp_path))


def test_init_caching_gives_the_runtime_the_credentials_endpoint_instead_of_the_keys(tmp_path: Any) -> None:
    config = configure(
        tmp_path, "--enable-init-caching", AWS_ACCESS_KEY_ID="AKIAMINE", AWS_SECRET_ACCESS_KEY="s3cret", OTHER="kept"
    )
    snapstart = config.function.snapstart
    assert snapstart is not None
    env = config.function.runtime_env(Address("127.0.0.1", 9123))
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "snap-start"
    assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == "http://127.0.0.1:9123/2021-04-23/credentials"
    assert env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] == snapstart.token
    assert len(snapstart.token) == 36  # a UUID, as the Go emulator's
    assert not set(KEYS) & set(env)
    assert env["OTHER"] == "kept"
    # pyrie's own credentials are what the endpoint hands out; extensions get the endpoint too, as in the Go emulator
    assert (snapstart.access_key_id, snapstart.secret_access_key, snapstart.session_token) == ("AKIAMINE", "s3cret", "")
    extension_env = config.function.extension_env(Address("127.0.0.1", 9123))
    assert extension_env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] == snapstart.token
    assert "s3cret" not in repr(config)


def test_without_credentials_of_its_own_pyrie_hands_out_dummies(tmp_path: Any) -> None:
    snapstart = configure(tmp_path, "--enable-init-caching").function.snapstart
    assert snapstart is not None
    assert (snapstart.access_key_id, snapstart.secret_access_key, snapstart.session_token) == DUMMY_CREDENTIALS


def test_without_init_caching_nothing_changes(tmp_path: Any) -> None:
    function = configure(tmp_path, AWS_ACCESS_KEY_ID="AKIAMINE").function
    env = function.runtime_env(Address("127.0.0.1", 9123))
    assert function.snapstart is None
    assert env["AWS_ACCESS_KEY_ID"] == "AKIAMINE"
    assert "AWS_CONTAINER_CREDENTIALS_FULL_URI" not in env
    assert "AWS_LAMBDA_INITIALIZATION_TYPE" not in env


@pytest.mark.parametrize(
    ("environ", "expected"),
    [({"AWS_LAMBDA_FUNCTION_TIMEOUT": "3"}, 130.0), ({"AWS_LAMBDA_FUNCTION_TIMEOUT": "900"}, 900.0), ({}, 300.0)],
)
def test_init_with_its_before_snapshot_hooks_may_take_the_larger_of_130_s_and_the_timeout(
    tmp_path: Any, environ: dict[str, str], expected: float
) -> None:
    assert configure(tmp_path, "--enable-init-caching", **environ).init_timeout_s == expected
    assert configure(tmp_path, "--enable-init-caching", "--init-timeout", "5", **environ).init_timeout_s == 5.0


def test_init_caching_is_refused_with_managed_instances(tmp_path: Any) -> None:
    with pytest.raises(ConfigError) as refused:
        configure(tmp_path, "--enable-init-caching", AWS_LAMBDA_MAX_CONCURRENCY="4")
    assert str(refused.value) == (
        "--enable-init-caching (SnapStart) cannot be combined with AWS_LAMBDA_MAX_CONCURRENCY (Managed Instances): "
        "pyrie runs SnapStart's hooks in environments that take one invoke at a time"
    )
