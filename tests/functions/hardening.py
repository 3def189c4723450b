"""The hardening tests' function (slow peers, pipe faults, chaos): one handler, behaviours chosen by the event's
``kind``, run by pyrie's own runtime client.

A behaviour that the tests watch tells them about itself on stdout in one ``KIND {json}`` line (its pid, its request
id, its deadline in epoch milliseconds), or, for progress that would flood stdout, in a file the event names.

With ``HARDENING_SIGNALS`` set to a directory, the runtime notes when it is sent SIGTERM there (``<pid>.term``: epoch
seconds, then the seconds its main thread has waited for a CPU in its life) and exits at once: a test then knows when
pyrie acted, whatever the machine's load does to the time the interpreter takes to wind down. Announcements carry
that wait too (``run_delay``): the difference is what the runtime waited for a CPU in between (``tests.cpu_wait``).
"""

import json
import os
import signal
import threading
import time

CHUNK = b"x" * 65536


def _run_delay():
    """Seconds this process's main thread has waited on the kernel's run queue (0.0 where the kernel does not say)."""
    try:
        with open("/proc/self/schedstat", "rb") as stat:
            return int(stat.read().split()[1]) / 1e9
    except OSError:
        return 0.0


def _note_sigterm(signum, frame):
    path = os.path.join(os.environ["HARDENING_SIGNALS"], f"{os.getpid()}.term")
    now = time.time()
    with open(path + ".tmp", "w") as file:
        file.write(f"{now!r} {_run_delay()!r}")
    os.replace(path + ".tmp", path)
    os._exit(0)


if os.environ.get("HARDENING_SIGNALS"):
    signal.signal(signal.SIGTERM, _note_sigterm)


def handler(event, context):
    return KINDS[event["kind"]](event, context)


def _announce(key, context, **extra):
    deadline_ms = int(time.time() * 1000) + context.get_remaining_time_in_millis()
    fields = {"pid": os.getpid(), "id": context.aws_request_id, "deadline_ms": deadline_ms, "run_delay": _run_delay()}
    fields.update(extra)
    print(f"{key} {json.dumps(fields)}", flush=True)


def forever(event, context):
    """A generator: 64 KiB chunks for ever (until its deadline). With ``progress``, the number of bytes yielded so
    far is written to that file after each chunk. With ``allocate_mb``, a thread makes that much memory resident
    ``allocate_after`` seconds in (while the generator may be blocked in its send)."""
    _announce("FOREVER", context)
    if event.get("allocate_mb"):
        threading.Thread(target=_allocate, args=(event["allocate_mb"], event.get("allocate_after", 1.0))).start()
    return _chunks(event.get("progress"))


def _chunks(progress):
    produced = 0
    while True:
        yield CHUNK
        produced += len(CHUNK)
        if progress:
            _write_progress(progress, produced)


_held = []


def _allocate(mb, after):
    time.sleep(after)
    print(f"ALLOCATING {json.dumps({'pid': os.getpid(), 'at_ms': int(time.time() * 1000)})}", flush=True)
    _held.append(b"\x01" * (mb * 1024 * 1024))  # written: resident at once, not just reserved
    print(f"ALLOCATED {json.dumps({'pid': os.getpid(), 'at_ms': int(time.time() * 1000)})}", flush=True)


def sized(event, context):
    """A generator of ``mb`` MiB in 64 KiB chunks, then its end."""
    _announce("SIZED", context)
    return (CHUNK for _ in range(event["mb"] * 16))


def sleep(event, context):
    _announce("SLEEP", context, n=event.get("n"))
    time.sleep(event["seconds"])
    return {"slept": event["seconds"]}


def stream(event, context):
    """``parts`` (3) parts ``n:part``, ``interval`` seconds apart."""
    n, interval = event.get("n"), event.get("interval", 0)
    for part in range(event.get("parts", 3)):
        if part and interval:
            time.sleep(interval)
        yield f"{n}:{part}\n".encode()


def error(event, context):
    raise ValueError(f"chaos error {event.get('n')}")


def timeout(event, context):
    _announce("TIMEOUT", context, n=event.get("n"))
    time.sleep(event.get("seconds", 60))
    return "too late"


def crash(event, context):
    os._exit(3)


def hello(event, context):
    return {"hello": event.get("n"), "pid": os.getpid()}


def chatty(event, context):
    """Print ``lines`` numbered lines (``tag n padding``), then answer how long the printing took. With ``progress``,
    the number of lines printed so far is written to that file every 1,000 lines."""
    began = time.monotonic()
    tag = event.get("tag", "line")
    pad = "p" * event.get("width", 100)
    progress = event.get("progress")
    for n in range(event["lines"]):
        print(f"{tag} {n} {pad}")
        if progress and n % 1000 == 999:
            _write_progress(progress, n + 1)
    return {"printed": event["lines"], "seconds": time.monotonic() - began, "pid": os.getpid()}


def _write_progress(path, value):
    with open(path + ".tmp", "w") as file:
        file.write(str(value))
    os.replace(path + ".tmp", path)


KINDS = {
    "forever": forever,
    "sized": sized,
    "sleep": sleep,
    "stream": stream,
    "error": error,
    "timeout": timeout,
    "crash": crash,
    "hello": hello,
    "chatty": chatty,
}
