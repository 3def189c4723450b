"""The supervisor's end of the pipe in one process, over real sockets under gevent: a stream's relay shares the loop,
what one stream holds is bounded, and a stalled peer is cut."""

from __future__ import annotations

import gevent

from pyrie_core.pipe.messages import Invoke
from supervisor.invocation import DiscardingSink, Invocation


def test_a_stream_that_never_waits_still_lets_the_loop_run() -> None:
    """A relay whose sink always has room (a fast client, or a client gone and its output dropped) reads its
    runtime's socket without ever blocking; each piece must still let the loop's other work (a timer, a kill) run."""
    invocation = Invocation(Invoke(function="function", payload=b"{}"), DiscardingSink(), "$LATEST")
    ran: list[int] = []
    for n in range(3):
        gevent.spawn(ran.append, n)
        invocation.write(b"piece")
        assert ran == list(range(n + 1))
    invocation.succeed()
    gevent.spawn(ran.append, 3)
    invocation.write(b"after the end")  # dropped, and still a chance for the others
    assert ran == [0, 1, 2, 3]
