#!/usr/bin/env python3
"""A deliberately misbehaving custom runtime for tests: it plays the scenario named by RAW_SCENARIO against the
Runtime API and prints what it observed as ``OBSERVED {json}`` lines (pyrie relays them to its stdout)."""

import http.client
import json
import os
import signal
import socket
import sys
import time

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
HOST, PORT = API.rsplit(":", 1)
SCENARIO = os.environ.get("RAW_SCENARIO", "echo")
BASE = "/2018-06-01/runtime"


def observe(call, response_or_status, body=b""):
    if isinstance(response_or_status, int):
        status, text = response_or_status, body
    else:
        status, text = response_or_status.status, response_or_status.read()
    print("OBSERVED " + json.dumps({"call": call, "status": status, "body": text.decode(errors="replace")}), flush=True)
    return status


conn = http.client.HTTPConnection(HOST, int(PORT))


def call(method, path, body=None, headers=None):
    conn.request(method, BASE + path if not path.startswith("/20") else path, body=body, headers=headers or {})
    return conn.getresponse()


def next_event():
    response = call("GET", "/invocation/next")
    body = response.read()
    return response.getheader("Lambda-Runtime-Aws-Request-Id"), body, response


def respond(request_id, body, headers=None):
    return call("POST", f"/invocation/{request_id}/response", body, headers)


def stream(request_id, chunks, trailers=None, *, content_type="text/plain", exit_after=None, cut_after=None):
    """A streamed response written by hand: chunked body, optional trailers, optional exit mid-stream or (living on)
    its connection closed mid-stream."""
    sock = socket.create_connection((HOST, int(PORT)))
    head = (
        f"POST {BASE}/invocation/{request_id}/response HTTP/1.1\r\nHost: {API}\r\n"
        "Lambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\n"
        "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n"
        f"Content-Type: {content_type}\r\n\r\n"
    )
    sock.sendall(head.encode())
    for index, (delay, chunk) in enumerate(chunks):
        time.sleep(delay)
        sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        if exit_after is not None and index + 1 == exit_after:
            os._exit(7)
        if cut_after is not None and index + 1 == cut_after:
            sock.close()
            return
    tail = b"0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in (trailers or {}).items()) + b"\r\n"
    sock.sendall(tail)
    reply = sock.recv(65536)
    observe("stream", int(reply.split()[1]), reply.partition(b"\r\n\r\n")[2])
    sock.close()


def allocate(mb):
    """Hold ``mb`` MiB, every page touched (resident, not just reserved), for a minute."""
    block = bytearray(mb << 20)
    for offset in range(0, len(block), 4096):
        block[offset] = 1
    time.sleep(60)


def note_sigterm(signum, frame):
    """RAW_TERM_NOTE: note "<pid> <epoch seconds>" when SIGTERM comes, and go on (only SIGKILL ends this runtime)."""
    with open(os.environ["RAW_TERM_NOTE"] + ".tmp", "w") as note:
        note.write(f"{os.getpid()} {time.time()!r}")
    os.replace(os.environ["RAW_TERM_NOTE"] + ".tmp", os.environ["RAW_TERM_NOTE"])


def main():
    if os.environ.get("RAW_TERM_NOTE"):
        signal.signal(signal.SIGTERM, note_sigterm)
    if SCENARIO == "allocate_in_init":
        allocate(int(os.environ["RAW_MB"]))
    if SCENARIO == "exit_during_init":
        print("exiting before /next", flush=True)
        sys.exit(2)
    if SCENARIO == "init_error":
        # pyrie resets the environment as soon as it has answered: the SIGTERM must not beat the line below.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        response = call(
            "POST",
            "/init/error",
            b'{"errorMessage":"cannot start","errorType":"Custom.InitFailure"}',
            {"Lambda-Runtime-Function-Error-Type": "Runtime.CustomInitFailure"},
        )
        observe("init_error", response)
        sys.exit(1)
    time.sleep(float(os.environ.get("RAW_INIT_S", "0")))  # an init that takes this long before the first /next
    init_gate = os.environ.get("RAW_INIT_GATE")
    if init_gate:  # the init of the first runtime to start (RAW_INIT_GATED=first) or of every later one waits for it
        try:
            os.close(os.open(init_gate + ".first", os.O_CREAT | os.O_EXCL))
            first = True
        except FileExistsError:
            first = False
        if first == (os.environ.get("RAW_INIT_GATED", "first") == "first"):
            print("init waits for its gate", flush=True)
            while not os.path.exists(init_gate):
                time.sleep(0.01)
    if SCENARIO == "hang_in_init":
        time.sleep(60)
    if SCENARIO == "restore_states":  # with --enable-init-caching: restore calls in the wrong states, then right
        after_restore = {"Lambda-Runtime-Function-Error-Type": "Runtime.AfterRestoreError"}
        observe("restore_error_in_init", call("POST", "/restore/error", b"{}", after_restore))
        observe("restore_next", call("GET", "/restore/next"))  # waits until the environment is restored
        observe("restore_next_again", call("GET", "/restore/next"))
    while True:
        request_id, body, _ = next_event()
        if SCENARIO == "echo":
            observe("response", respond(request_id, body))
        elif SCENARIO == "wrong_request_id":
            observe("wrong_id", respond("not-the-request-id", b"nope"))
            observe("response", respond(request_id, body))
        elif SCENARIO == "double_response":
            observe("response", respond(request_id, body))
            observe("second_response", respond(request_id, b"again"))
        elif SCENARIO == "response_after_error":
            observe("error", call("POST", f"/invocation/{request_id}/error", b'{"errorMessage":"x","errorType":"Y"}'))
            observe("response", respond(request_id, body))
        elif SCENARIO == "bad_response_mode":
            observe("response", respond(request_id, body, {"Lambda-Runtime-Function-Response-Mode": "bogus"}))
        elif SCENARIO == "exit_mid_invoke":
            print("exiting during the invoke", flush=True)
            os._exit(3)
        elif SCENARIO == "killed_mid_invoke":
            os.kill(os.getpid(), 9)
        elif SCENARIO == "exit_after_response":
            observe("response", respond(request_id, body))
            sys.exit(0)
        elif SCENARIO == "next_twice":
            again_id, again_body, _ = next_event()
            observe("next_again", 200, json.dumps({"same": again_id == request_id and again_body == body}).encode())
            observe("response", respond(request_id, body))
        elif SCENARIO == "init_error_during_invoke":
            observe("init_error", call("POST", "/init/error", b"{}"))
            observe("response", respond(request_id, body))
        elif SCENARIO == "oversize":
            size = json.loads(body)["size"]
            observe("response", respond(request_id, b"x" * size))
        elif SCENARIO == "stream_error_trailers":
            stream(
                request_id,
                [(0, b"part one\n")],
                {
                    "Lambda-Runtime-Function-Error-Type": "Function.Boom",
                    "Lambda-Runtime-Function-Error-Body": "eyJlcnJvclR5cGUiOiJGdW5jdGlvbi5Cb29tIn0=",
                },
            )
        elif SCENARIO == "stream_then_exit":
            stream(request_id, [(0, b"part one\n"), (0.1, b"part two\n")], exit_after=1)
        elif SCENARIO == "stream_cut":  # the response stream is cut short; the runtime lives on, back to /next
            stream(request_id, [(0, b"part one\n"), (0, b"part two\n")], cut_after=1)
        elif SCENARIO == "stream":
            stream(request_id, [(0, b"a\n"), (0.2, b"b\n"), (0.2, b"c\n")])
        elif SCENARIO == "print":
            for line in json.loads(body).get("lines", []):
                print(line, flush=True)
            respond(request_id, body).read()
        elif SCENARIO == "slow_next":  # answers, then stays away from /next until RAW_GATE exists
            observe("response", respond(request_id, json.dumps({"pid": os.getpid()}).encode()))
            while not os.path.exists(os.environ["RAW_GATE"]):
                time.sleep(0.01)
        elif SCENARIO == "endless_buffered":  # a buffered (not streamed) response whose body never ends
            sock = socket.create_connection((HOST, int(PORT)))
            head = f"POST {BASE}/invocation/{request_id}/response HTTP/1.1\r\nHost: {API}\r\n"
            sock.sendall((head + "Transfer-Encoding: chunked\r\n\r\n").encode())
            piece = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
            try:
                while True:
                    sock.sendall(piece)
            except OSError:
                time.sleep(60)
        elif SCENARIO == "allocate_after_response":  # answers, then outgrows its memory before its next /next
            observe("response", respond(request_id, json.dumps({"pid": os.getpid()}).encode()))
            asked = json.loads(body)
            if asked.get("mb"):
                time.sleep(asked.get("delay", 0))
                allocate(asked["mb"])
        elif SCENARIO == "hang_in_invoke":
            print("hanging", flush=True)
            time.sleep(60)
        elif SCENARIO == "routes":
            observe("ping", call("GET", "/2018-06-01/ping"))
            observe("unknown", call("GET", "/2018-06-01/nope"))
            observe("wrong_method", call("DELETE", "/invocation/next"))
            observe("restore_next", call("GET", "/restore/next"))
            observe("credentials", call("GET", "/2021-04-23/credentials"))
            observe("response", respond(request_id, body))
        elif SCENARIO == "restore_states":
            observe("restore_next_running", call("GET", "/restore/next"))
            observe("restore_error_running", call("POST", "/restore/error", b"{}", after_restore))
            observe("response", respond(request_id, body))
        else:
            raise SystemExit(f"unknown scenario {SCENARIO}")


if __name__ == "__main__":
    main()
