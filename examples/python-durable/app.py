"""A durable function (the Durable Execution SDK for Python): an order that is reserved, waits, asks for approval.

Each step runs once and is checkpointed; ``context.wait`` suspends the function and pyrie invokes it again when the
wait is over (the SDK replays the finished steps from their checkpoints); ``wait_for_callback`` suspends it until
someone answers the callback (``aws lambda send-durable-execution-callback-success`` or boto3). Run it with:

    AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT=600 pyrie python -m awslambdaric app.handler

(``pip install aws-durable-execution-sdk-python awslambdaric`` first; see the README's "Durable functions".)
"""

from __future__ import annotations

from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration, WaitForCallbackConfig
from aws_durable_execution_sdk_python.types import WaitForCallbackContext


def reserve(order: dict[str, Any]) -> dict[str, Any]:
    print(f"reserving {order['items']} for order {order['id']}")  # printed once, however often the function replays
    return {"order": order["id"], "reserved": len(order["items"])}


@durable_execution
def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    order = {"id": event.get("id", "order-1"), "items": event.get("items", ["book"])}
    reservation = context.step(lambda _: reserve(order), name="reserve")
    context.wait(Duration.from_seconds(event.get("wait_seconds", 2)), name="cool-off")
    if not event.get("approval"):
        return {"status": "shipped", **reservation}

    def ask(callback_id: str, _: WaitForCallbackContext) -> None:
        print(f"approval needed: answer callback {callback_id}")

    config = WaitForCallbackConfig(timeout=Duration.from_seconds(event.get("approval_timeout", 300)))
    decision = context.wait_for_callback(ask, name="approval", config=config)
    return {"status": "approved", "decision": decision, **reservation}
