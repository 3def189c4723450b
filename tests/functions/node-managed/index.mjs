// Handlers for Lambda Managed Instances under aws-lambda-ric's multi-concurrent mode (AWS_LAMBDA_MAX_CONCURRENCY).

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const work = async (event, context) => {
  const started = Date.now() / 1000;
  await sleep(event.seconds === undefined ? 500 : event.seconds * 1000);
  return { requestId: context.awsRequestId, n: event.n ?? null, pid: process.pid, started, ended: Date.now() / 1000 };
};

export const stream = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.setContentType("text/plain");
  for (let i = 0; i < (event.count ?? 5); i++) {
    responseStream.write(`chunk ${i}\n`);
    await sleep(event.interval_ms ?? 100);
  }
  responseStream.end();
});
