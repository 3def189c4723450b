#!/bin/sh
# A custom runtime written as AWS's tutorial writes one: a shell loop over curl. Its answer is RESPONSE_BYTES bytes
# of "x", posted with --data-binary from a file: for a body over 1 MiB curl sends "Expect: 100-continue" and waits
# (up to 1 s) for the server's "100 Continue". curl's verbose log goes to CURL_LOG.
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
while true; do
    curl -sS -D "$WORK/headers" -o "$WORK/event" "$API/invocation/next"
    REQUEST_ID=$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$WORK/headers" | tr -d '\r' | cut -d' ' -f2)
    head -c "$RESPONSE_BYTES" /dev/zero | tr '\0' 'x' > "$WORK/response"
    curl -sS -v -o /dev/null --data-binary "@$WORK/response" "$API/invocation/$REQUEST_ID/response" 2>> "$CURL_LOG"
done
