// Server-sent events from a Node.js streaming Lambda handler (awslambda.streamifyResponse).
//
// Run it with pyrie and the real Node runtime interface client (built by `make node` in the checkout root):
//
//   cd examples/node-sse
//   LAMBDA_TASK_ROOT=$PWD pyrie /path/to/pyrie/tests/node/node_modules/.bin/aws-lambda-ric index.handler
//
// aws-lambda-ric 4.x ignores its argv: it reads the handler from `_HANDLER` and requires `LAMBDA_TASK_ROOT`.
// pyrie, like the Go emulator, turns the last word of the command line (`index.handler`) into `_HANDLER`;
// `LAMBDA_TASK_ROOT` must be set by you. Use `index.plain` or `index.boom` instead of `index.handler` to pick
// one of the other handlers below. Then, from another shell:
//
//   curl -N -X POST http://127.0.0.1:8080/2015-03-31/functions/function/invocations -d '{"count": 5}'
//
// pyrie relays every write as soon as the runtime makes it, so the events show up 200 ms apart (the Go
// emulator buffers the whole stream and prints everything at the end). Through a Function URL
// (`pyrie --function-url-address 127.0.0.1:8081 ...`) `handler`'s HTTP prelude becomes the status and headers,
// so a browser `new EventSource("http://127.0.0.1:8081/")` receives the ticks one by one.
//
// The event may set `count` (default 10) and `interval_ms` (default 200); on a Function URL the same names are
// read from the query string (`/?count=3&interval_ms=50`).
//
// Handlers:
//   handler  HttpResponseStream.from(...) with status 200 and text/event-stream headers, then the events.
//   plain    setContentType("text/event-stream") and the same events, no HTTP prelude (plain invoke, curl).
//   boom     one event, then throws: the runtime reports the error in the HTTP trailers
//            Lambda-Runtime-Function-Error-Type / Lambda-Runtime-Function-Error-Body after the bytes already sent.

/* global awslambda */

const DEFAULT_COUNT = 10;
const DEFAULT_INTERVAL_MS = 200;
const MAX_COUNT = 10_000;
const MAX_INTERVAL_MS = 60_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Reads a non-negative integer option from the event, or from a Function URL event's query string.
function option(event, name, fallback, max) {
  const raw = event?.[name] ?? event?.queryStringParameters?.[name];
  const value = Number(raw);
  if (raw === undefined || raw === null || raw === "" || !Number.isFinite(value) || value < 0) {
    return fallback;
  }
  return Math.min(Math.floor(value), max);
}

function sseEvent(n, requestId) {
  return `id: ${n}\nevent: tick\ndata: ${JSON.stringify({ n, requestId })}\n\n`;
}

async function writeTicks(stream, event, context) {
  const count = option(event, "count", DEFAULT_COUNT, MAX_COUNT);
  const intervalMs = option(event, "interval_ms", DEFAULT_INTERVAL_MS, MAX_INTERVAL_MS);
  for (let n = 1; n <= count; n++) {
    if (n > 1) {
      await sleep(intervalMs);
    }
    stream.write(sseEvent(n, context.awsRequestId));
  }
}

export const handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  const httpStream = awslambda.HttpResponseStream.from(responseStream, {
    statusCode: 200,
    headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" },
  });
  await writeTicks(httpStream, event, context);
  httpStream.end();
});

export const plain = awslambda.streamifyResponse(async (event, responseStream, context) => {
  responseStream.setContentType("text/event-stream");
  await writeTicks(responseStream, event, context);
  responseStream.end();
});

export const boom = awslambda.streamifyResponse(async (event, responseStream, context) => {
  responseStream.setContentType("text/event-stream");
  responseStream.write(sseEvent(1, context.awsRequestId));
  await sleep(option(event, "interval_ms", DEFAULT_INTERVAL_MS, MAX_INTERVAL_MS));
  throw new Error("boom: exploded after the first event");
});
