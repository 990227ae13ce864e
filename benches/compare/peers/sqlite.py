"""The sqlite3 peer: WAL mode, one ``events`` table, payloads msgpack-encoded in the measured loop.

The table is ``events(seq INTEGER PRIMARY KEY, entity TEXT, kind TEXT, payload BLOB)`` with no
secondary index, except in the projection store of (j), which adds one on ``entity``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benches._workload import KIND, POOL_MASK
from benches.compare.harness import BULK_CHUNK, ENTITIES, PAYLOADS, packb, perf, unpackb

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events ("
    "seq INTEGER PRIMARY KEY, entity TEXT NOT NULL, kind TEXT NOT NULL, payload BLOB NOT NULL)"
)
INSERT = "INSERT INTO events (entity, kind, payload) VALUES (?, ?, ?)"
SELECT = "SELECT seq, entity, kind, payload FROM events ORDER BY seq"

VERSION = sqlite3.sqlite_version


def open_db(path: Path, synchronous: str) -> sqlite3.Connection:
    """An autocommit connection in WAL mode with ``PRAGMA synchronous=<synchronous>``."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=120.0)
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise RuntimeError(f"sqlite3 refused WAL mode (got {mode!r})")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute(SCHEMA)
    return conn


def connect(path: Path) -> sqlite3.Connection:
    """A plain connection to an existing database (the reads of (e) and (j))."""
    return sqlite3.connect(str(path), check_same_thread=False)


# ------------------------------------------------------------------------------------------ writes


def insert_step(conn: sqlite3.Connection) -> Callable[[int], None]:
    """(a), (b): one INSERT per call; in autocommit mode each is its own committed transaction."""
    execute = conn.execute

    def step(n: int) -> None:
        execute(INSERT, (ENTITIES[n & POOL_MASK], KIND, packb(PAYLOADS[n & POOL_MASK])))

    return step


def batch_step(conn: sqlite3.Connection, idx: list[int]) -> Callable[[int], None]:
    """(c): one ``executemany`` of ``len(idx)`` rows in one transaction per call."""
    execute, executemany = conn.execute, conn.executemany

    def step(n: int) -> None:
        execute("BEGIN")
        executemany(INSERT, [(ENTITIES[j], KIND, packb(PAYLOADS[j])) for j in idx])
        execute("COMMIT")

    return step


def insert_loop(conn: sqlite3.Connection, n: int) -> float:
    """(d): n timed INSERTs, one per call, COMMIT every 1000; returns the seconds."""
    execute = conn.execute
    t0 = perf()
    execute("BEGIN")
    for i in range(n):
        execute(INSERT, (ENTITIES[i & POOL_MASK], KIND, packb(PAYLOADS[i & POOL_MASK])))
        if i % 1000 == 999:
            execute("COMMIT")
            execute("BEGIN")
    execute("COMMIT")
    return perf() - t0


def bulk_load(conn: sqlite3.Connection, n: int) -> None:
    """(load): n rows in ``executemany`` chunks of BULK_CHUNK, then a WAL checkpoint."""
    for start in range(0, n, BULK_CHUNK):
        conn.execute("BEGIN")
        conn.executemany(
            INSERT,
            [
                (ENTITIES[i & POOL_MASK], KIND, packb(PAYLOADS[i & POOL_MASK]))
                for i in range(start, min(n, start + BULK_CHUNK))
            ],
        )
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def load_entity(conn: sqlite3.Connection, n: int, entity: str, kind_of: Callable[[int], str]) -> None:
    """(j): an index on ``entity``, then the n events of one entity in chunks, then a WAL checkpoint."""
    conn.execute("CREATE INDEX IF NOT EXISTS events_entity ON events (entity)")
    for start in range(0, n, BULK_CHUNK):
        conn.execute("BEGIN")
        conn.executemany(
            INSERT,
            [
                (entity, kind_of(i), packb(PAYLOADS[i & POOL_MASK]))
                for i in range(start, min(n, start + BULK_CHUNK))
            ],
        )
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


# ------------------------------------------------------------------------------------------- reads


def read_payloads(conn: sqlite3.Connection) -> Callable[[], list[Any]]:
    """(e): every row in ``seq`` order, payloads decoded with ``msgpack.unpackb``."""
    return lambda: [unpackb(row[3]) for row in conn.execute(SELECT)]


def fold_select(kind: str) -> str:
    """(j): the rows of one entity and one kind, in commit order."""
    return f"SELECT kind, payload FROM events WHERE entity=? AND kind='{kind}' ORDER BY seq"


def fold_amounts(conn: sqlite3.Connection, entity: str, kind: str) -> Callable[[], int]:
    """(j): the sum of ``payload["amount"]`` over the entity's ``kind`` rows, as an inline loop."""
    select = fold_select(kind)

    def fold() -> int:
        state = 0
        for _kind, payload in conn.execute(select, (entity,)):
            state = state + unpackb(payload)["amount"]
        return state

    return fold


def query_plan(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> str:
    return " ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
