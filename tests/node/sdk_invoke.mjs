// Invoke a function through the real AWS SDK for JavaScript v3 (@aws-sdk/client-lambda) and print what it saw
// as JSON lines on stdout, for integration tests to read. Needs `make node` first.
//
//   node tests/node/sdk_invoke.mjs ENDPOINT [--stream] [--function NAME] [--payload JSON] [--log-type Tail]
//
//   ENDPOINT     e.g. http://127.0.0.1:8080
//   --stream     InvokeWithResponseStreamCommand: one line per event as it arrives,
//                {"event":"PayloadChunk","ms":<ms since send>,"payload":"<base64>"} ... then
//                {"event":"InvokeComplete","ms":...,"errorCode":...,"errorDetails":...,"logResult":...}
//   (default)    InvokeCommand: one line {"statusCode","functionError","executedVersion","logResult","payload"}
//
// Any SDK error prints {"error": name, "message", "httpStatusCode"} and exits 1. Credentials and region are
// fixed dummies; retries are off so a 429 or 5xx surfaces at once.

import { InvokeCommand, InvokeWithResponseStreamCommand, LambdaClient } from "@aws-sdk/client-lambda";

function parseArgs(argv) {
  const args = { endpoint: undefined, stream: false, functionName: "function", payload: "{}", logType: undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--stream") args.stream = true;
    else if (arg === "--function") args.functionName = argv[++i];
    else if (arg === "--payload") args.payload = argv[++i];
    else if (arg === "--log-type") args.logType = argv[++i];
    else if (!arg.startsWith("--") && args.endpoint === undefined) args.endpoint = arg;
    else throw new Error(`unexpected argument ${arg}`);
  }
  if (!args.endpoint) throw new Error("usage: sdk_invoke.mjs ENDPOINT [--stream] [--function NAME] [--payload JSON]");
  return args;
}

const b64 = (bytes) => (bytes ? Buffer.from(bytes).toString("base64") : null);
const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const client = new LambdaClient({
    endpoint: args.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    maxAttempts: 1,
  });
  const input = {
    FunctionName: args.functionName,
    Payload: new TextEncoder().encode(args.payload),
    LogType: args.logType,
  };
  const started = performance.now();
  const ms = () => Math.round((performance.now() - started) * 1000) / 1000;
  try {
    if (args.stream) {
      const res = await client.send(new InvokeWithResponseStreamCommand(input));
      emit({ event: "Response", ms: ms(), statusCode: res.StatusCode, contentType: res.ResponseStreamContentType });
      for await (const event of res.EventStream) {
        if (event.PayloadChunk) {
          emit({ event: "PayloadChunk", ms: ms(), payload: b64(event.PayloadChunk.Payload) });
        } else if (event.InvokeComplete) {
          const done = event.InvokeComplete;
          emit({
            event: "InvokeComplete",
            ms: ms(),
            errorCode: done.ErrorCode ?? null,
            errorDetails: done.ErrorDetails ?? null,
            logResult: done.LogResult ?? null,
          });
        }
      }
    } else {
      const res = await client.send(new InvokeCommand(input));
      emit({
        statusCode: res.StatusCode,
        functionError: res.FunctionError ?? null,
        executedVersion: res.ExecutedVersion ?? null,
        logResult: res.LogResult ?? null,
        payload: b64(res.Payload),
        ms: ms(),
      });
    }
  } catch (err) {
    emit({ error: err.name, message: err.message, httpStatusCode: err.$metadata?.httpStatusCode ?? null });
    process.exitCode = 1;
  } finally {
    client.destroy();
  }
}

main().catch((err) => {
  emit({ error: "UsageError", message: err.message });
  process.exitCode = 2;
});
