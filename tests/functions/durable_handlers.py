"""Durable functions written with the real Durable Execution SDK, run by the durable service's tests.

Every step records itself in the file named by ``DURABLE_SIDE_EFFECTS`` (one line per run of its body), so a test
can tell a step that ran from a step that was replayed from its checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution
from aws_durable_execution_sdk_python.config import (
    Duration,
    JitterStrategy,
    StepConfig,
    WaitForCallbackConfig,
)
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy
from aws_durable_execution_sdk_python.types import WaitForCallbackContext


def _record(name: str) -> int:
    """Note that the body of step ``name`` ran; how many times it has run so far."""
    path = Path(os.environ["DURABLE_SIDE_EFFECTS"])
    with path.open("a") as file:
        file.write(name + "\n")
    return path.read_text().splitlines().count(name)


@durable_execution
def steps_and_wait(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    one = context.step(lambda _: _record("one") and event["x"] + 1, name="one")
    context.wait(Duration.from_seconds(event.get("wait", 2)), name="pause")
    two = context.step(lambda _: _record("two") and one * 2, name="two")
    return {"one": one, "two": two}


@durable_execution
def approval(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    def submit(callback_id: str, _: WaitForCallbackContext) -> None:
        _record("submit")
        Path(event["callback_file"]).write_text(callback_id)

    config = WaitForCallbackConfig(timeout=Duration.from_seconds(event.get("timeout", 60)))
    answer = context.wait_for_callback(submit, name="approval", config=config)
    after = context.step(lambda _: _record("after") and "done", name="after")
    return {"answer": answer, "after": after}


@durable_execution
def flaky(event: dict[str, Any], context: DurableContext) -> int:
    def attempt(step: StepContext) -> int:
        count = _record("flaky")
        if count < event["succeed_on"]:
            raise RuntimeError(f"attempt {count} failed")
        return count

    retries = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=event.get("max_attempts", 5),
            initial_delay=Duration.from_seconds(1),
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    return context.step(attempt, name="flaky", config=StepConfig(retry_strategy=retries))


@durable_execution
def failing(event: dict[str, Any], context: DurableContext) -> None:
    context.step(lambda _: _record("fine") and 1, name="fine")
    raise ValueError("the order cannot be shipped")


@durable_execution
def long_wait(event: dict[str, Any], context: DurableContext) -> str:
    context.step(lambda _: _record("before") and 1, name="before")
    context.wait(Duration.from_seconds(event["wait"]), name="long")
    return "woke"


def not_durable(event: dict[str, Any], context: object) -> dict[str, Any]:
    return {"plain": True}


@durable_execution
def fan_out(event: dict[str, Any], context: DurableContext) -> list[int]:
    def item(child: DurableContext, value: int, index: int, _: Any) -> int:
        doubled = child.step(lambda _: _record(f"item-{value}") and value * 2, name=f"double-{value}")
        child.wait(Duration.from_seconds(value), name=f"rest-{value}")
        return doubled

    return context.map(event["items"], item, name="items").get_results()


@durable_execution
def runtime_environment(event: dict[str, Any], context: DurableContext) -> dict[str, str | None]:
    """What pyrie gave the runtime of a durable function to reach the service (read once, in a step)."""
    names = ("AWS_ENDPOINT_URL_LAMBDA", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN")
    return context.step(lambda _: {name: os.environ.get(name) for name in names}, name="environment")


def plain_environment(event: dict[str, Any], context: object) -> dict[str, Any]:
    """A function that is not durable: its event as given, and whether the runtime was pointed at a service."""
    return {"event": event, "endpoint": os.environ.get("AWS_ENDPOINT_URL_LAMBDA")}


@durable_execution
def tenant_replays(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """Notes, at every invocation (replays included), the tenant the runtime was given and the process it ran in."""
    lambda_context = context.lambda_context
    _record(f"{getattr(lambda_context, 'tenant_id', None)}:{os.getpid()}")
    context.wait(Duration.from_seconds(event.get("wait", 1)), name="pause")
    return {"tenant": getattr(lambda_context, "tenant_id", None)}
