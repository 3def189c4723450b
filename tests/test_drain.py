"""After a runtime exits, what it sent last is read before its exit is judged: the environment waits for its Runtime
API server's ``quiet`` event (every open connection parked: waiting for pyrie, not pyrie for it), never polling.

A real environment (no process) with its real server on loopback, and raw HTTP from gevent sockets in this process.
"""

from __future__ import annotations

import socket

import gevent
import gevent.socket
import pytest

from tests.test_states import environment

NEXT = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n"
# A request whose body has not all come: its connection is busy until the rest comes or the peer goes.
HALF_SENT = b"POST /2018-06-01/nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345"


def test_the_drain_waits_for_a_busy_connection_not_for_a_parked_one_and_ends_on_the_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A drain that ended by its deadline would take a minute: this one can only end on the event.
    monkeypatch.setattr("supervisor.environment.execution_environment.DRAIN_S", 60.0)
    env = environment(bound=True)
    assert env.address is not None
    where = (env.address.host, env.address.port)
    parked = gevent.socket.create_connection(where)
    parked.sendall(NEXT)  # the runtime waits in /next: nothing of it is left to read
    busy = gevent.socket.create_connection(where)
    busy.sendall(HALF_SENT)
    gevent.sleep(0.2)
    draining = gevent.spawn(env._drain)
    gevent.sleep(0.2)
    assert not draining.dead  # the half-sent request holds it
    busy.close()  # its peer is gone: the connection ends
    draining.join(10)
    assert draining.dead
    alone = gevent.spawn(env._drain)
    alone.join(10)
    assert alone.dead  # the parked /next never held it
    env.reset("test over")
    env.gone.wait(10)
    parked.close()


def test_the_drain_waits_for_a_connection_the_runtime_opened_just_before_it_exited(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The runtime connected and sent half a request, and the server has not accepted it yet when the drain begins
    (a streamed response begun just before its exit): the drain waits for it all the same."""
    monkeypatch.setattr("supervisor.environment.execution_environment.DRAIN_S", 60.0)
    env = environment(bound=True)
    assert env.address is not None
    late = socket.create_connection((env.address.host, env.address.port))  # not gevent's: the loop does not run
    late.sendall(HALF_SENT)
    closed: list[bool] = []

    def close_later() -> None:
        gevent.sleep(0.2)
        closed.append(True)
        late.close()

    gevent.spawn(close_later)
    env._drain()  # begins before the loop has seen the connection
    assert closed == [True]
    env.reset("test over")
    env.gone.wait(10)
