"""The SQLite store keeps everything an execution is, and writes only what changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyrie_durable import MemoryStore, SqliteStore, StoreInUse, checkpoint
from pyrie_durable.codec import execution_record, parse_updates
from pyrie_durable.model import ErrorObject, Execution
from pyrie_durable.states import ExecutionStatus
from tests.cpu_wait import Stopwatch, assert_on_time
from tests.test_durable_checkpoint import FUNCTION, T0


def _snapshot(execution: Execution) -> tuple[object, ...]:
    return (execution_record(execution), list(execution.operations.values()), execution.events)


def _busy_execution() -> Execution:
    execution = checkpoint.new_execution(FUNCTION, name="kept", execution_id="e-9", input_payload="{}", now=T0)
    token = checkpoint.begin_invocation(execution, "inv")["CheckpointToken"]
    updates = [
        {"Id": "ctx", "Type": "CONTEXT", "Action": "START", "Name": "group"},
        {"Id": "s1", "Type": "STEP", "Action": "START", "ParentId": "ctx"},
        {
            "Id": "s1",
            "Type": "STEP",
            "Action": "RETRY",
            "ParentId": "ctx",
            "Error": {"ErrorMessage": "x", "StackTrace": ["a", "b"]},
            "StepOptions": {"NextAttemptDelaySeconds": 3},
        },
        {"Id": "w", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": 9}},
        {"Id": "cb", "Type": "CALLBACK", "Action": "START", "CallbackOptions": {"HeartbeatTimeoutSeconds": 4}},
    ]
    checkpoint.apply_checkpoint(execution, token, parse_updates(updates), "client", T0 + 1)
    return execution


def test_an_execution_survives_the_round_trip(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite")
    execution = _busy_execution()
    store.save(execution)
    assert not execution.dirty_operations and execution.saved_events == len(execution.events)
    (loaded,) = store.load()
    assert _snapshot(loaded) == _snapshot(execution)
    assert loaded.callbacks == execution.callbacks and loaded.last_checkpoint == execution.last_checkpoint

    # Later changes are written incrementally and read back the same.
    checkpoint.complete_due(execution, T0 + 5)
    checkpoint.close(execution, ExecutionStatus.FAILED, T0 + 6, error=ErrorObject(message="m", type="T"))
    assert execution.dirty_operations == {"s1", "cb", "e-9"}
    store.save(execution)
    (loaded,) = store.load()
    assert _snapshot(loaded) == _snapshot(execution)
    assert loaded.status is ExecutionStatus.FAILED and not loaded.running

    store.delete(execution.arn)
    store.close()
    assert SqliteStore(tmp_path / "s.sqlite").load() == []


def test_a_save_writes_what_changed_and_not_the_input_payload_again(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite")
    payload = json.dumps({"blob": "x" * 500_000})
    execution = checkpoint.new_execution(FUNCTION, name="big", execution_id="e-big", input_payload=payload, now=T0)
    token = checkpoint.begin_invocation(execution, "inv")["CheckpointToken"]
    store.save(execution)
    wal = tmp_path / "s.sqlite-wal"  # every commit appends the pages it writes
    written = wal.stat().st_size
    wait = {"Id": "w", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": 5}}
    checkpoint.apply_checkpoint(execution, token, parse_updates([wait]), None, T0 + 1)
    store.save(execution)
    assert wal.stat().st_size - written < 50_000
    store.close()
    (loaded,) = SqliteStore(tmp_path / "s.sqlite").load()
    assert loaded.input_payload == payload and _snapshot(loaded) == _snapshot(execution)


def test_one_file_is_kept_by_one_store_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    first = SqliteStore(path)
    first.save(_busy_execution())
    with Stopwatch() as refusal, pytest.raises(StoreInUse, match="in use by another pyrie") as refused:
        SqliteStore(path)
    assert_on_time("the refusal", refusal.took, 1.0, refusal.waited)  # at once, not after waiting for the lock
    assert "\n" not in str(refused.value)
    assert len(first.load()) == 1  # the first store goes on as before
    first.close()

    second = SqliteStore(path)  # free once the first is closed, and an existing file is locked as a new one
    assert len(second.load()) == 1
    with pytest.raises(StoreInUse):
        SqliteStore(path)
    second.close()


def test_an_execution_holds_its_status_once(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite")
    execution = _busy_execution()
    checkpoint.close(execution, ExecutionStatus.STOPPED, T0 + 2, error=ErrorObject(message="m"))
    store.save(execution)
    (loaded,) = store.load()
    for closed in (execution, loaded):
        assert closed.status is ExecutionStatus.STOPPED
        # Nothing else on it still says how it was built (RUNNING, or the status it was loaded in).
        assert not hasattr(closed, "initial_status") and "RUNNING" not in repr(closed)
    store.close()


def test_the_memory_store_keeps_nothing() -> None:
    store = MemoryStore()
    execution = _busy_execution()
    store.save(execution)
    assert store.load() == [] and not execution.dirty_operations
