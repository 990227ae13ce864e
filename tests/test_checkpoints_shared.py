"""``store.checkpoints()`` in shared mode: a process lists the checkpoints of live workers in
other processes sharing the data dir, with lags that count every process's appends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path

import eventpak as ep
import pytest
from shared_helpers import Children, children_fixture, open_shared

A = ep.Region.entity("a")
BATCH = 4


@pytest.fixture
def spawn() -> Iterator[Children]:
    yield from children_fixture()


def child_worker(conn: Connection, path: str) -> None:
    """Appends 10 events of ``a``, runs a durable worker "child" on them, and holds its second
    batch in the handler (so its checkpoint is the first batch) until told to close."""
    store = open_shared(path)
    seqs = [r.global_sequence for r in store.append_batch([((f"a:{i}", "eu"), "k", i) for i in range(10)])]
    release, started = threading.Event(), threading.Event()
    batches = 0

    def handler(batch: list[ep.Event], _s: ep.Store, _w: object) -> None:
        nonlocal batches
        batches += 1
        if batches == 2:
            started.wait()  # the handle below is assigned
            conn.send(("holding", (seqs, handle.lag)))
            release.wait()

    handle = store.cursor_worker(A, handler, ep.CursorWorkerConfig(batch_size=BATCH, checkpoint_id="child"))
    started.set()
    assert conn.recv() == "close"
    release.set()
    handle.stop_and_join(timeout=60)
    store.close()
    conn.send(("closed", None))


def test_checkpoints_of_another_process_are_listed_with_a_current_lag(
    spawn: Children, tmp_path: Path
) -> None:
    path = str(tmp_path / "data")
    store = open_shared(path)
    try:
        mine = store.append(("a", "eu"), "k", "parent's").global_sequence
        cursor = store.cursor(A)
        assert [e.global_sequence for e in cursor.poll_batch(1)] == [mine]
        cursor.commit("parent")

        child = spawn(child_worker, path)
        seqs, child_lag = child.recv("holding")
        # the child's worker committed its first batch (the parent's event and three of its own)
        assert child_lag == 11 - BATCH
        by_id = {info.checkpoint_id: info for info in store.checkpoints()}
        assert set(by_id) == {"child", "parent"}
        assert (by_id["child"].position, by_id["child"].lag_events) == (seqs[BATCH - 2], 11 - BATCH)
        assert (by_id["parent"].position, by_id["parent"].lag_events) == (mine, 10)

        store.append_batch([(("a", "eu"), "k", "more"), (("b", "eu"), "k", "outside")])
        by_id = {info.checkpoint_id: info for info in store.checkpoints()}
        assert (by_id["child"].lag_events, by_id["parent"].lag_events) == (12 - BATCH, 11)
        assert store.metrics()["checkpoints"]["child"]["lag_events"] == 12 - BATCH

        child.send("close")
        child.recv("closed")
        child.join()
        # a stopped worker's checkpoint stays listed
        assert "child" in {info.checkpoint_id for info in store.checkpoints()}
    finally:
        store.close()
