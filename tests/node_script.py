"""Running the Node.js scripts in tests/node that print what they saw as JSON lines."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).parent / "node"


def run_node_script(script: str, *args: str, timeout: float = 60) -> list[dict[str, Any]]:
    """Run ``tests/node/<script>`` with ``args``; its JSON lines, after checking that it exited 0."""
    result = subprocess.run(
        ["node", str(NODE_DIR / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]
