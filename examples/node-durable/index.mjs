// A durable function (the Durable Execution SDK for JavaScript): an order that is reserved, waits, asks for approval.
//
// Each step runs once and is checkpointed; context.wait suspends the function and pyrie invokes it again when the
// wait is over (the SDK replays the finished steps from their checkpoints); waitForCallback suspends it until
// someone answers the callback (aws lambda send-durable-execution-callback-success, or boto3). Run it with:
//
//   AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT=600 LAMBDA_TASK_ROOT=$PWD pyrie ../../tests/node/node_modules/.bin/aws-lambda-ric index.handler
//
// after `make node` and `ln -sfn ../../tests/node/node_modules node_modules` (see the README's "Durable functions").
import { withDurableExecution } from "@aws/durable-execution-sdk-js";

async function reserve(order) {
  console.log(`reserving ${order.items} for order ${order.id}`); // printed once, however often the function replays
  return { order: order.id, reserved: order.items.length };
}

export const handler = withDurableExecution(async (event, context) => {
  const order = { id: event.id ?? "order-1", items: event.items ?? ["book"] };
  const reservation = await context.step("reserve", async () => reserve(order));
  await context.wait("cool-off", { seconds: event.wait_seconds ?? 2 });
  if (!event.approval) {
    return { status: "shipped", ...reservation };
  }
  const decision = await context.waitForCallback(
    "approval",
    async (callbackId) => {
      console.log(`approval needed: answer callback ${callbackId}`);
    },
    { timeout: { seconds: event.approval_timeout ?? 300 } },
  );
  return { status: "approved", decision, ...reservation };
});
