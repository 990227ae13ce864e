"""A durable worker never checkpoints past what is durable."""

from __future__ import annotations

import threading

import eventpak as ep


def test_durable_checkpoint_never_points_past_durable_events(open_store, coord):
    # sync="batch" with a long interval: nothing is fsynced on its own during the test.
    store = open_store(sync="batch", sync_every_n_events=1_000_000, sync_interval_ms=3_600_000)
    for i in range(10):
        store.append(coord("a"), "k", i)
    assert store.stats()["durable_events"] == 0
    done = threading.Event()
    durable_when_handled: list[int] = []

    def handler(batch, st, witness):
        durable_when_handled.append(st.stats()["durable_events"])
        done.set()
        return ep.CursorWorkerAction.STOP

    config = ep.CursorWorkerConfig(batch_size=10, checkpoint_id="dur")
    handle = store.cursor_worker(ep.Region.all(), handler, config)
    assert done.wait(30)
    handle.join(timeout=30)
    checkpoint = ep.Cursor.load_checkpoint(store.path, "dur")
    assert checkpoint is not None and checkpoint.position == 9
    # The events were delivered before they were durable, but the checkpoint was only
    # written once everything up to its position was.
    assert durable_when_handled == [0]
    assert store.stats()["durable_events"] >= checkpoint.position + 1
