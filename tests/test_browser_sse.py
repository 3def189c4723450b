"""A real browser on a Function URL: headless Chromium loads examples/python-sse-page from pyrie and its
EventSource receives the server-sent events one by one, at the handler's pace (tests/node/browser_sse.mjs reads
back the arrival times the page recorded)."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest

from tests.conftest import StartPyrie
from tests.harness import free_port
from tests.node_script import run_node_script

ROOT = Path(__file__).parent.parent
PLAYWRIGHT = ROOT / "tests" / "node" / "node_modules" / "playwright-core"
CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.node


def test_chromium_receives_the_examples_events_one_by_one(start_pyrie: StartPyrie) -> None:
    assert PLAYWRIGHT.exists(), "playwright-core is missing: run `make node` (make test does)"
    assert shutil.which(CHROMIUM), "Chromium is missing: apt-get install chromium (.ci/run does)"
    url_port = free_port()
    start_pyrie(
        "--function-url-address", f"127.0.0.1:{url_port}", "app.handler", cwd=ROOT / "examples" / "python-sse-page"
    )
    count, interval_ms = 6, 300
    url = f"http://127.0.0.1:{url_port}/?count={count}&interval_ms={interval_ms}"
    page = run_node_script("browser_sse.mjs", url, timeout=120)[-1]
    assert page["title"].startswith("pyrie")
    assert page["status"] == f"done: {count} events"
    events = page["events"]
    assert [event["n"] for event in events] == list(range(1, count + 1))
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(events)]
    # each event arrives about one interval after the one before, not all together at the end
    assert all(interval_ms * 0.6 < gap < interval_ms * 1.6 for gap in gaps), gaps
