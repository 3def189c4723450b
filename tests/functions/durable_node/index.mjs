// Durable functions written with the real Durable Execution SDK for JavaScript, run by tests/test_durable_node.py.
// Every step notes each run of its body in the file named by DURABLE_SIDE_EFFECTS, one line per run, so a test can
// tell a step that ran from one replayed from its checkpoint.
import { appendFileSync, readFileSync } from "node:fs";
import { withDurableExecution } from "@aws/durable-execution-sdk-js";

function record(name) {
  const path = process.env.DURABLE_SIDE_EFFECTS;
  appendFileSync(path, `${name}\n`);
  return readFileSync(path, "utf8").split("\n").filter((line) => line === name).length;
}

export const stepsAndWait = withDurableExecution(async (event, context) => {
  const one = await context.step("one", async () => record("one") && event.x + 1);
  await context.wait("pause", { seconds: event.wait ?? 2 });
  const two = await context.step("two", async () => record("two") && one * 2);
  return { one, two };
});

export const approval = withDurableExecution(async (event, context) => {
  const answer = await context.waitForCallback(
    "approval",
    async () => {
      record("submit");
    },
    { timeout: { seconds: event.timeout ?? 60 } },
  );
  const after = await context.step("after", async () => record("after") && "done");
  return { answer, after };
});

export const flaky = withDurableExecution(async (event, context) =>
  context.step(
    "flaky",
    async () => {
      const count = record("flaky");
      if (count < event.succeed_on) {
        throw new Error(`attempt ${count} failed`);
      }
      return count;
    },
    { retryStrategy: (_error, attempt) => ({ shouldRetry: attempt < 5, delay: { seconds: 1 } }) },
  ),
);

export const failing = withDurableExecution(async (_event, context) => {
  await context.step("fine", async () => record("fine") && 1);
  throw new TypeError("the order cannot be shipped");
});
