"""examples/template/template.yaml: the reader accepts it, and each function's command, working directory and
environment start a real runtime (pyrie's Python client, aws-lambda-ric, a shell bootstrap) that answers through
today's single-function pyrie."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests

from supervisor.cli import RUNTIME_CLIENT
from supervisor.template import Template, TemplateFunction, read_template
from tests.conftest import StartPyrie
from tests.harness import Pyrie, free_port

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "template" / "template.yaml"
NODE_RIC_PACKAGE = ROOT / "tests" / "node" / "node_modules" / "aws-lambda-ric"


def example(*overrides: str) -> Template:
    return read_template(
        str(EXAMPLE),
        parameter_overrides=overrides,
        python_client=RUNTIME_CLIENT,
        environ={"PATH": os.environ["PATH"], "PYRIE_NODE_RIC": str(NODE_RIC_PACKAGE)},
        cwd=str(ROOT),
    )


def test_the_reader_accepts_the_example():
    template = example("Stage=prod")
    assert template.warnings == ()
    python, node, shell = template.functions
    assert (python.logical_id, python.runtime, python.handler) == ("HelloPython", "python3.12", "app.handler")
    assert python.url is not None and python.url.invoke_mode == "BUFFERED"
    assert python.reserved_concurrency == 2
    assert dict(python.environment) == {"STAGE": "prod", "GREETING": "Hello from us-east-1"}
    assert (node.logical_id, node.name, node.runtime) == ("TicksNode", "prod-ticks", "nodejs22.x")
    assert node.url is not None and node.url.invoke_mode == "RESPONSE_STREAM"
    assert node.code_dir == str(ROOT / "examples" / "node-sse")
    assert (shell.logical_id, shell.runtime) == ("EchoShell", "provided.al2023")
    assert shell.command == (str(ROOT / "examples" / "shell-echo" / "bootstrap"),)
    assert {(function.timeout_s, function.memory_mb) for function in template.functions} == {(30, 256)}


def start_function(start_pyrie: StartPyrie, function: TemplateFunction, *flags: str) -> Pyrie:
    """The function alone under today's pyrie: its command, in its code's directory, with its environment."""
    extra_env = {
        **function.environment,
        **function.runtime_env,
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(function.timeout_s),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
    }
    return start_pyrie(*flags, *function.command, cwd=function.code_dir, extra_env=extra_env)


def test_the_python_function_answers(start_pyrie: StartPyrie):
    function = example().functions[0]
    response = start_function(start_pyrie, function).invoke(json.dumps({"name": "pyrie"}))
    assert response.status_code == 200
    assert response.json() == {
        "message": "Hello from us-east-1, pyrie!",
        "stage": "dev",
        "functionName": "HelloPython",
        "memoryLimitInMB": "256",  # a string, as in Lambda's own Python runtime
    }


def test_the_shell_function_answers(start_pyrie: StartPyrie):
    function = example().functions[2]
    response = start_function(start_pyrie, function).invoke(b'{"echo": [1, 2]}')
    assert response.status_code == 200
    assert response.content == b'{"echo": [1, 2]}'


@pytest.mark.node
def test_the_node_function_streams_through_its_function_url(start_pyrie: StartPyrie):
    assert NODE_RIC_PACKAGE.is_dir(), "the Node runtime client is missing: run `make node` (make test does)"
    function = example().functions[1]
    url_port = free_port()
    start_function(start_pyrie, function, "--function-url-address", f"127.0.0.1:{url_port}")
    with requests.get(f"http://127.0.0.1:{url_port}/?count=3&interval_ms=0", stream=True, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        body = response.content.decode()
    assert body.count("event: tick") == 3
