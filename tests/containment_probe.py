"""Drives ``supervisor.processes.containment`` in a process of its own, as the supervisor does: a gevent loop, the
child subreaper flag, real processes. ``python -m tests.containment_probe SCENARIO {cgroup,mark}`` prints one JSON
object (what the test checks) and exits 0; run by ``tests/test_containment.py``.

The processes a scenario starts are ``sh`` scripts that leave ``sleep`` processes behind and print their pids.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event

from pyrie_core.process_ownership import cgroup_pids
from supervisor.processes.containment import Containment, EnvironmentProcesses
from supervisor.processes.managed_process import ManagedProcess
from supervisor.processes.process_tree import ProcessTreeMemory
from supervisor.processes.subreaper import become_subreaper
from tests.cpu_wait import machine_wait

# Each prints "KIND PID" for what it left running, then "ready", then waits. It starts as a runtime's handler would,
# a while after the exec (the environment's cgroup takes a process only then, after a move that can take the kernel
# 10 ms or more).
LEAVE_BEHIND = """
sleep 0.2
setsid sleep 600 </dev/null >/dev/null 2>&1 &
echo "setsid $!"
sh -c 'setsid sleep 601 </dev/null >/dev/null 2>&1 & echo "double-fork $!"'
sh -c 'env -i setsid sleep 602 </dev/null >/dev/null 2>&1 & echo "wiped $!"'
env -i sleep 603 </dev/null >/dev/null 2>&1 &
echo "wiped-child $!"
echo ready
exec sleep 604
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


class Started:
    """A ``ManagedProcess`` running ``script``, with the pids it reported."""

    def __init__(self, script: str, members: EnvironmentProcesses | None) -> None:
        self.pids: dict[str, int] = {}
        self.ready = gevent.event.Event()
        self.process = ManagedProcess(
            name="probe",
            argv=["sh", "-c", script],
            cwd="/",
            env={"PATH": os.environ["PATH"]},
            on_output=self._line,
            on_exit=lambda code: None,
            members=members,
        )
        self.pids["runtime"] = self.process.pid

    def _line(self, line: bytes) -> None:
        words = line.decode().split()
        if words == ["ready"]:
            self.ready.set()
        elif len(words) == 2:
            self.pids[words[0]] = int(words[1])


def end_kills_what_got_away(containment: Containment) -> dict[str, Any]:
    env = containment.environment("environment-1")
    other = containment.environment("environment-2")
    started = Started(LEAVE_BEHIND, env)
    neighbour = Started("echo ready; exec sleep 605", other)
    assert started.ready.wait(10) and neighbour.ready.wait(10)
    gevent.sleep(0.2)  # the double forks' parents have exited: the orphans are the supervisor's now
    parents = {kind: _parent(pid) for kind, pid in started.pids.items()}
    members = env.pids(fresh=True)
    in_cgroup = cgroup_pids(env.cgroup) if env.cgroup is not None else []
    memory_mb = ProcessTreeMemory(started.process.pid, env).sample()
    waited_before = machine_wait()
    began = time.monotonic()
    gone = env.end(grace_s=0.2)
    took = time.monotonic() - began
    waited = machine_wait() - waited_before  # what the machine's processes waited for a CPU meanwhile
    result = {
        "pids": started.pids,
        "members": {kind: pid in members for kind, pid in started.pids.items()},
        "in_cgroup": {kind: pid in in_cgroup for kind, pid in started.pids.items()},
        "parents": parents,
        "end": gone,
        "took": took,
        "waited": waited,
        "alive": {kind: alive(pid) for kind, pid in started.pids.items()},
        "neighbour_alive": alive(neighbour.process.pid),
        "memory_mb": memory_mb,
        "cgroup_left": env.cgroup is not None and os.path.exists(env.cgroup),
    }
    other.end()
    return result


def end_around_a_spawn(containment: Containment) -> dict[str, Any]:
    """``end`` asked for while a process starts (its greenlet is scheduled first, and runs at the loop's next turn),
    then a process started after ``end``: the start never yields to the loop, so ``end`` finds the first process
    whole (exec'd, with its mark) and ends it, and the second is killed as soon as it exists."""
    env = containment.environment("environment-1")
    started: list[ManagedProcess] = []
    seen: dict[str, Any] = {}

    def start() -> ManagedProcess:
        return ManagedProcess(
            name="probe",
            argv=["sleep", "600"],
            cwd="/",
            env={"PATH": os.environ["PATH"]},
            on_output=lambda line: None,
            on_exit=lambda code: None,
            members=env,
        )

    def end() -> None:
        seen["started_before_end"] = len(started)
        seen["end"] = env.end(grace_s=0.2)

    ender = gevent.spawn(end)
    started.append(start())
    ender.join(10)
    started.append(start())
    exits = [process.wait(10) for process in started]
    return {**seen, "exit": exits, "alive": [alive(process.pid) for process in started]}


def end_all_takes_the_unmarked_orphans(containment: Containment) -> dict[str, Any]:
    started = Started(LEAVE_BEHIND, None)  # started by no environment: no mark, no cgroup
    assert started.ready.wait(10)
    gevent.sleep(0.2)
    parents = {kind: _parent(pid) for kind, pid in started.pids.items()}
    count = containment.end_all(grace_s=0.2)
    return {"count": count, "parents": parents, "alive": {kind: alive(pid) for kind, pid in started.pids.items()}}


SCENARIOS: dict[str, Callable[[Containment], dict[str, Any]]] = {
    "end": end_kills_what_got_away,
    "end-around-a-spawn": end_around_a_spawn,
    "end-all": end_all_takes_the_unmarked_orphans,
}


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return int(stat.read().rpartition(b")")[2].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def main() -> None:
    scenario, backend = sys.argv[1], sys.argv[2]
    assert become_subreaper()
    containment = Containment(secrets.token_hex(6), cgroups=backend == "cgroup")
    if backend == "cgroup" and containment.cgroup is None:
        print(json.dumps({"skip": "no usable cgroup v2 here"}))
        return
    try:
        result = SCENARIOS[scenario](containment)
    finally:
        containment.end_all()
        containment.close()
    result["supervisor"] = os.getpid()
    result["cgroup"] = containment.cgroup
    result["cgroup_removed"] = containment.cgroup is None or not os.path.exists(containment.cgroup)
    print(json.dumps(result))


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    main()
