"""Where executions are kept between pyrie's runs.

``MemoryStore`` keeps nothing (the engine holds every execution in memory; a restarted pyrie starts empty).
``SqliteStore`` keeps them in one SQLite file (``--durable-store PATH``): a restarted pyrie given the same file finds
every execution as it was last saved and resumes the running ones, their waits, retries and callbacks included.

SQLite rather than a hand-made journal: it is in the standard library, its commits are atomic and survive a crash,
and each save writes only what changed (the execution's record, which carries no input payload, the operations that
changed, the new history events), a few small local writes in WAL mode, so the supervisor's event loop is never
held for long. The file is locked while a store has it open, so it never waits for a lock either.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Final, Protocol

from pyrie_durable.codec import execution_from_record, execution_record, operation_from_record, operation_record
from pyrie_durable.model import Execution

__all__ = ["MemoryStore", "SqliteStore", "Store", "StoreInUse"]


class Store(Protocol):
    def load(self) -> list[Execution]:
        """Every execution saved, operations and history included."""
        ...

    def save(self, execution: Execution) -> None:
        """Write what changed in ``execution`` since it was last saved (or loaded)."""
        ...

    def delete(self, arn: str) -> None: ...

    def close(self) -> None: ...


class MemoryStore:
    """Nothing outlives the process."""

    def load(self) -> list[Execution]:
        return []

    def save(self, execution: Execution) -> None:
        execution.dirty_operations.clear()
        execution.saved_events = len(execution.events)

    def delete(self, arn: str) -> None:
        pass

    def close(self) -> None:
        pass


_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS executions (
    arn TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS operations (
    arn TEXT NOT NULL,
    id TEXT NOT NULL,
    position INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (arn, id)
);
CREATE TABLE IF NOT EXISTS events (
    arn TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (arn, event_id)
);
"""


def _dump(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


class StoreInUse(Exception):
    """Another store (another pyrie) has the file open."""


class SqliteStore:
    """One SQLite file; created with its tables if missing. While it is open the file is locked for it alone: two
    pyries given one file would both resume its executions, and a lock held by one would stop the other's loop for as
    long as it waited; a second store is refused at once (``StoreInUse``) instead."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA locking_mode=EXCLUSIVE")  # a lock once taken is kept until close
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.execute("BEGIN IMMEDIATE")  # the write lock, taken now whatever the journal mode allows
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as error:
            self._db.close()
            if error.sqlite_errorcode == sqlite3.SQLITE_BUSY:
                raise StoreInUse(
                    f"{self.path} is in use by another pyrie; give each pyrie a store of its own"
                ) from None
            raise

    def load(self) -> list[Execution]:
        executions = []
        for arn, record in self._db.execute("SELECT arn, record FROM executions").fetchall():
            operations = [
                operation_from_record(json.loads(row[0]))
                for row in self._db.execute(
                    "SELECT record FROM operations WHERE arn = ? ORDER BY position", (arn,)
                ).fetchall()
            ]
            events = [
                json.loads(row[0])
                for row in self._db.execute(
                    "SELECT record FROM events WHERE arn = ? ORDER BY event_id", (arn,)
                ).fetchall()
            ]
            executions.append(execution_from_record(json.loads(record), operations, events))
        return executions

    def save(self, execution: Execution) -> None:
        new_events = execution.events[execution.saved_events :]
        positions = {operation_id: index for index, operation_id in enumerate(execution.operations)}
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO executions (arn, record) VALUES (?, ?)",
                (execution.arn, _dump(execution_record(execution))),
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO operations (arn, id, position, record) VALUES (?, ?, ?, ?)",
                [
                    (execution.arn, operation_id, positions[operation_id], _dump(operation_record(operation)))
                    for operation_id in execution.dirty_operations
                    if (operation := execution.operations.get(operation_id)) is not None
                ],
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO events (arn, event_id, record) VALUES (?, ?, ?)",
                [(execution.arn, event["EventId"], _dump(event)) for event in new_events],
            )
        execution.dirty_operations.clear()
        execution.saved_events = len(execution.events)

    def delete(self, arn: str) -> None:
        with self._transaction():
            for table in ("executions", "operations", "events"):
                self._db.execute(f"DELETE FROM {table} WHERE arn = ?", (arn,))  # fixed table names

    def close(self) -> None:
        self._db.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN")

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
