"""The container credentials endpoint (2021-04-23) of init caching (SnapStart), as the Go emulator serves it
(internal/lambda/rapi/handler/credentials.go).

The runtime finds it in ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` and sends ``AWS_CONTAINER_AUTHORIZATION_TOKEN`` as its
``Authorization`` header, which is what the AWS SDKs' container credential providers do. The right token gets
``{"AccessKeyId":...,"SecretAccessKey":...,"Token":...,"Expiration":...}`` (Go's ``json.Marshal`` of its struct, no
trailing newline, the content type Go's ``http.DetectContentType`` gives it); any other token gets Go's
``http.Error`` text with 404.
"""

from __future__ import annotations

import json
import time
from typing import Final

from runtime_api.host import ContainerCredentials, RuntimeHost
from runtime_api.http_connection import HttpConnection, Request

__all__ = ["CREDENTIALS_PATH", "credentials", "render_credentials"]

CREDENTIALS_PATH: Final = "/2021-04-23/credentials"
TEXT: Final = ("Content-Type", "text/plain; charset=utf-8")
NOT_FOUND: Final = b"cannot get credentials for the provided token\n"


def credentials(host: RuntimeHost, request: Request, conn: HttpConnection, params: dict[str, str]) -> None:
    found = host.credentials(request.header("authorization") or "")
    if found is None:
        conn.respond(404, [TEXT, ("X-Content-Type-Options", "nosniff")], NOT_FOUND)
        return
    conn.respond(200, [TEXT], render_credentials(found))


def render_credentials(found: ContainerCredentials) -> bytes:
    """The Go emulator's body: ``Expiration`` as Go marshals a ``time.Time`` (RFC 3339, UTC, whole seconds here)."""
    expiration = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(found.expiration))
    body = {
        "AccessKeyId": found.access_key_id,
        "SecretAccessKey": found.secret_access_key,
        "Token": found.session_token,
        "Expiration": expiration,
    }
    return json.dumps(body, separators=(",", ":")).encode()
