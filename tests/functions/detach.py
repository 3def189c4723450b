"""Handlers that leave processes running, the ways real functions do (run by pyrie's own runtime client).

``leave_behind`` starts ``sleep`` processes that get away from the runtime: ``setsid`` (a child in a session of its
own), ``double-fork`` (a grandchild in a session of its own whose parent exits, so it is orphaned and handed to the
nearest child subreaper: pyrie), and ``wiped`` (a double fork that also execs with an empty environment). It writes
their pids to ``event["pid_file"]`` (JSON) before it sleeps ``event["sleep"]`` seconds, and returns them.
"""

import json
import os
import subprocess
import time


def _double_fork(env):
    """A grandchild running ``sleep`` in its own session, its parent gone: returns its pid."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        os.setsid()
        grandchild = os.fork()
        if grandchild == 0:
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.execvpe("sleep", ["sleep", "600"], env)
        os.write(write_end, str(grandchild).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        grandchild = int(reader.read())
    os.waitpid(child, 0)
    return grandchild


def _start(kind):
    if kind == "setsid":
        return subprocess.Popen(
            ["sleep", "600"],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ).pid
    if kind == "double-fork":
        return _double_fork(dict(os.environ))
    if kind == "wiped":
        return _double_fork({"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    raise ValueError(kind)


def leave_behind(event, context):
    pids = {kind: _start(kind) for kind in event.get("kinds", [])}
    pids["runtime"] = os.getpid()
    pid_file = event.get("pid_file")
    if pid_file:
        with open(pid_file + ".tmp", "w") as out:
            json.dump(pids, out)
        os.rename(pid_file + ".tmp", pid_file)
    time.sleep(event.get("sleep", 0))
    return pids
