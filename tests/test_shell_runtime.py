"""A custom runtime written in shell over curl, as AWS's custom-runtime tutorial writes one."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import StartPyrie

CURL_BOOTSTRAP = str(Path(__file__).parent / "runtimes" / "curl_bootstrap.sh")


def test_curl_posting_a_large_response_is_told_to_continue(start_pyrie: StartPyrie, tmp_path: Path) -> None:
    """curl sends ``Expect: 100-continue`` with a body over 1 MiB and holds the body back until it hears
    "100 Continue" (or a second passes): the Runtime API says it, as the Go emulator's net/http does."""
    log = tmp_path / "curl.log"
    size = 2 * 1024 * 1024
    pyrie = start_pyrie(CURL_BOOTSTRAP, extra_env={"RESPONSE_BYTES": str(size), "CURL_LOG": str(log)})
    for _ in range(2):
        response = pyrie.invoke(b"{}")
        assert response.status_code == 200 and response.content == b"x" * size
    sent = log.read_text()
    assert sent.count("> Expect: 100-continue") == 2
    assert sent.count("< HTTP/1.1 100 Continue") == 2
