#!/usr/bin/env python3
"""A real extension process for tests: pyrie execs a two-line shim (tests/test_extensions.py writes it into the
extensions directory) that runs this file with the shim's own path, so the extension's name is the shim's file name.

It plays the scenario the PROBE_PLAN environment variable (JSON: name -> scenario) gives its name, and prints what
it observed as ``OBSERVED {json}`` lines, which pyrie relays to its stdout.
"""

import http.client
import json
import os
import sys
import threading
import time
import uuid

NAME = os.path.basename(sys.argv[1])
PLAN = json.loads(os.environ.get("PROBE_PLAN", "{}")).get(NAME, {})
SCENARIO = PLAN.get("scenario", "basic")
HOST, PORT = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)


def call(method, path, body=b"", headers=None):
    conn = http.client.HTTPConnection(HOST, int(PORT), timeout=60)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), data.decode(errors="replace")


def observe(call_name, status, body, headers=None, **extra):
    record = {"ext": NAME, "call": call_name, "status": status, "body": body, **extra}
    if headers is not None:
        record["headers"] = {key.lower(): value for key, value in headers.items()}
    print("OBSERVED " + json.dumps(record), flush=True)


def register(name=NAME, events=("INVOKE", "SHUTDOWN"), extra_headers=None, body=None):
    headers = {"Lambda-Extension-Name": name, **(extra_headers or {})}
    payload = body if body is not None else json.dumps({"events": list(events)}).encode()
    return call("POST", "/2020-01-01/extension/register", payload, headers)


def next_event(ident):
    return call("GET", "/2020-01-01/extension/event/next", headers={"Lambda-Extension-Identifier": ident})


def subscribe(ident, api_path, destination, types=("platform", "function", "extension"), schema="2022-12-13"):
    body = json.dumps(
        {
            "schemaVersion": schema,
            "types": list(types),
            "buffering": {"timeoutMs": 25, "maxItems": 1000, "maxBytes": 262144},
            "destination": destination,
        }
    ).encode()
    return call("PUT", api_path, body, {"Lambda-Extension-Identifier": ident})


def error_calls():
    """Every refusal of rie-behaviour.md §7 that can happen during init, before this extension registers."""
    observe("register_no_name", *_drop_headers(call("POST", "/2020-01-01/extension/register", b'{"events":[]}')))
    observe("register_bad_json", *_drop_headers(register(body=b"{nope")))
    observe("register_empty_body", *_drop_headers(register(body=b"")))
    observe("register_config_keys", *_drop_headers(register(body=b'{"events":[],"configurationKeys":["a"]}')))
    observe("register_bad_event", *_drop_headers(register(events=["INVOKE", "FOO"])))
    observe("internal_shutdown", *_drop_headers(register(name="internal-x", events=["SHUTDOWN"])))
    observe("next_no_id", *_drop_headers(call("GET", "/2020-01-01/extension/event/next")))
    bad_id = {"Lambda-Extension-Identifier": "not-a-uuid"}
    observe("next_bad_id", *_drop_headers(call("GET", "/2020-01-01/extension/event/next", headers=bad_id)))
    stranger = str(uuid.uuid4())
    observe("next_unknown", *_drop_headers(next_event(stranger)), stranger=stranger)
    unknown = {"Lambda-Extension-Identifier": stranger, "Lambda-Extension-Function-Error-Type": "Extension.X"}
    observe("init_error_unknown", *_drop_headers(call("POST", "/2020-01-01/extension/init/error", b"", unknown)))
    observe("telemetry_no_id", *_drop_headers(call("PUT", "/2022-07-01/telemetry", b"{}")))


def _drop_headers(result):
    status, _, body = result
    return status, body


def run_internal(name, events):
    """An internal extension on a thread: register, then wait in /event/next for good."""
    status, headers, body = register(name=name, events=events)
    observe(f"register_{name}", status, body)
    if status == 200:
        threading.Thread(target=next_event, args=(headers["Lambda-Extension-Identifier"],), daemon=True).start()


def main():
    observe("env", 0, json.dumps({"keys": sorted(os.environ), "cwd": os.getcwd(), "argc": len(sys.argv)}))
    if SCENARIO == "errors":
        error_calls()
    if SCENARIO == "exit_before_register":
        print("leaving before registering", flush=True)
        sys.exit(4)
    status, headers, body = register(
        events=PLAN.get("events", ["INVOKE", "SHUTDOWN"]), extra_headers=PLAN.get("headers")
    )
    observe("register", status, body, headers)
    ident = headers["Lambda-Extension-Identifier"]
    if SCENARIO == "errors":
        observe("register_again", *_drop_headers(register()))
        no_type = {"Lambda-Extension-Identifier": ident}
        observe("init_error_no_type", *_drop_headers(call("POST", "/2020-01-01/extension/init/error", b"", no_type)))
        observe("telemetry_invalid", *_drop_headers(subscribe(ident, "/2022-07-01/telemetry", {"protocol": "HTTP"})))
        run_internal("internal-one", ["INVOKE"])
        observe("internal_duplicate", *_drop_headers(register(name="internal-one", events=["INVOKE"])))
    if SCENARIO == "too_many":
        for n in range(1, 11):
            run_internal(f"internal-{n}", [])
    if SCENARIO == "init_error":
        failure = {"Lambda-Extension-Identifier": ident, "Lambda-Extension-Function-Error-Type": "Extension.Broken"}
        observe("init_error", *_drop_headers(call("POST", "/2020-01-01/extension/init/error", b"", failure)))
        sys.exit(1)
    for api_path, key in (("/2022-07-01/telemetry", "telemetry"), ("/2020-08-15/logs", "logs")):
        if key in PLAN:
            observe(
                f"subscribe_{key}",
                *_drop_headers(subscribe(ident, api_path, PLAN[key], schema=PLAN.get(f"{key}_schema", "2022-12-13"))),
            )
    print(f"{NAME} initialised", flush=True)
    while True:
        status, headers, body = next_event(ident)
        observe("event", status, body, headers, at_ms=int(time.time() * 1000))
        event = json.loads(body)
        if event["eventType"] == "SHUTDOWN":
            print(f"{NAME} shutting down", flush=True)
            return
        if SCENARIO == "errors":
            failure = {"Lambda-Extension-Identifier": ident, "Lambda-Extension-Function-Error-Type": "Extension.Late"}
            observe("init_error_late", *_drop_headers(call("POST", "/2020-01-01/extension/init/error", b"", failure)))
            observe("register_late", *_drop_headers(register(name="internal-late", events=["INVOKE"])))
            observe(
                "telemetry_late",
                *_drop_headers(
                    subscribe(
                        ident, "/2022-07-01/telemetry", {"protocol": "HTTP", "URI": "http://sandbox.localdomain:1/"}
                    )
                ),
            )
        if SCENARIO == "gate":
            gate = os.environ["PROBE_GATE"]
            while not os.path.exists(gate):
                time.sleep(0.01)
            print(f"RELEASED {event['requestId']}", flush=True)
        if SCENARIO == "exit_error":
            failure = {"Lambda-Extension-Identifier": ident, "Lambda-Extension-Function-Error-Type": "Extension.Gone"}
            observe("exit_error", *_drop_headers(call("POST", "/2020-01-01/extension/exit/error", b"", failure)))
            sys.exit(3)
        print(f"{NAME} handled {event['requestId']}", flush=True)


if __name__ == "__main__":
    main()
