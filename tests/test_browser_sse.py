"""A real browser on a Function URL: headless Chromium loads examples/python-sse-page from pyrie and its
EventSource receives the server-sent events one by one, at the handler's pace (tests/node/browser_sse.mjs reads
back the arrival times the page recorded)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import StartPyrie
from tests.cpu_wait import MachineWait, assert_one_by_one
from tests.harness import free_port
from tests.node_script import run_node_script

ROOT = Path(__file__).parent.parent
PLAYWRIGHT = ROOT / "tests" / "node" / "node_modules" / "playwright-core"
# Debian's Chromium; CHROMIUM names another (the Makefile and tests/node/browser_sse.mjs read it too).
CHROMIUM = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
# Set by .ci/run: there a missing browser fails the test instead of skipping it.
REQUIRE_BROWSER_ENV = "PYRIE_REQUIRE_BROWSER"
MISSING = f"Chromium is missing at {CHROMIUM}: install it with `sudo apt-get install chromium` (make test does as root)"

pytestmark = pytest.mark.node


def test_chromium_receives_the_examples_events_one_by_one(start_pyrie: StartPyrie) -> None:
    assert PLAYWRIGHT.exists(), "playwright-core is missing: run `make node` (make test does)"
    if not shutil.which(CHROMIUM):
        if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    url_port = free_port()
    start_pyrie(
        "--function-url-address", f"127.0.0.1:{url_port}", "app.handler", cwd=ROOT / "examples" / "python-sse-page"
    )
    count, interval_ms = 6, 300
    url = f"http://127.0.0.1:{url_port}/?count={count}&interval_ms={interval_ms}"
    with MachineWait() as machine:
        page = run_node_script("browser_sse.mjs", url, timeout=120)[-1]
    assert page["title"].startswith("pyrie")
    assert page["status"] == f"done: {count} events"
    events = page["events"]
    assert [event["n"] for event in events] == list(range(1, count + 1))
    # each event arrives after the one before, not all together at the end
    assert_one_by_one([event["at"] / 1000 for event in events], interval_ms / 1000, machine.waited)


@pytest.mark.parametrize(("required", "outcome"), [("", "1 skipped"), ("1", "1 failed")])
def test_without_chromium_the_browser_test_is_skipped_with_the_command_or_under_ci_fails(
    required: str, outcome: str
) -> None:
    env = {**os.environ, "CHROMIUM": "/nonexistent/chromium", REQUIRE_BROWSER_ENV: required}
    test = f"{__file__}::test_chromium_receives_the_examples_events_one_by_one"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-rsf", "-p", "no:cacheprovider", test],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    reason = "Chromium is missing at /nonexistent/chromium: install it with `sudo apt-get install chromium`"
    assert outcome in result.stdout, result.stdout
    assert reason in result.stdout, result.stdout
