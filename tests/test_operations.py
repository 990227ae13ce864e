"""What an operator sees: ``store.checkpoints()`` with each checkpoint's lag, ``handle.lag`` of
a live worker, and ``store.metrics()`` under stable names, each checked against a workload
whose figures are known."""

from __future__ import annotations

import os
import threading
import time
import typing
from pathlib import Path

import eventpak as ep
import pytest
from conftest import wait_until

A = ep.Region.entity("a")


def _workload(store: ep.Store, inside: int, outside: int) -> list[ep.Event]:
    """``inside`` events of entity namespace ``a`` interleaved with ``outside`` of ``b``;
    returns the region's events."""
    items = [((f"a:{i % 3}", "eu"), "k", i) for i in range(inside)]
    items += [(("b", "eu"), "k", i) for i in range(outside)]
    items.sort(key=lambda item: item[2])  # interleave by payload
    store.append_batch(items)
    return store.query(A)


def _commit_after(store: ep.Store, region: ep.Region, checkpoint_id: str, k: int) -> ep.Cursor:
    cursor = store.cursor(region)
    assert len(cursor.poll_batch(k)) == k
    cursor.commit(checkpoint_id)
    return cursor


def test_lag_counts_the_region_s_events_after_the_position(store: ep.Store, data_dir: Path) -> None:
    n, m, k = 10, 7, 4
    events = _workload(store, n, m)
    _commit_after(store, A, "cp", k)
    before_us = time.time_ns() // 1000
    [info] = store.checkpoints()
    after_us = time.time_ns() // 1000
    assert info.checkpoint_id == "cp" and info.region_identity == A.checkpoint_identity
    assert info.position == events[k - 1].global_sequence
    assert info.lag_events == n - k
    oldest = events[k].timestamp_us  # the first event of the region not yet committed
    assert info.lag_seconds is not None
    assert (before_us - oldest) / 1e6 <= info.lag_seconds <= (after_us - oldest) / 1e6
    # saved_at_us is the checkpoint file's modification time
    assert info.saved_at_us == os.stat(data_dir / "cursors" / "cp.ckpt").st_mtime_ns // 1000

    store.append(("b", "eu"), "k", "outside")  # not in the region: the lag does not move
    assert store.checkpoints()[0].lag_events == n - k
    store.append(("a", "eu"), "k", "inside")
    assert store.checkpoints()[0].lag_events == n - k + 1


@pytest.mark.parametrize("region", [ep.Region.all(), A, ep.Region.any_of([A, ep.Region.entity("b")])])
def test_a_backlog_longer_than_one_counting_chunk_is_counted_whole(
    store: ep.Store, region: ep.Region
) -> None:
    # The backlog is counted a chunk of 16,384 events at a time, the index lock released
    # in between so that appends need not wait for the whole count.
    for start in range(0, 50_000, 4_000):
        store.append_batch(
            [((f"a:{i % 3}" if i % 5 else "b", "eu"), "k", i) for i in range(start, start + 4_000)]
        )
    matching = store.query(region)
    assert len(matching) > 2 * 16_384
    _commit_after(store, region, "far-behind", 3)
    [info] = store.checkpoints()
    assert info.lag_events == len(matching) - 3
    assert info.lag_seconds is not None and info.lag_seconds >= 0
    assert store.metrics()["checkpoints"]["far-behind"]["lag_events"] == len(matching) - 3


def test_caught_up_and_never_started_checkpoints(store: ep.Store) -> None:
    events = _workload(store, 5, 5)
    _commit_after(store, A, "done", 5)
    store.cursor(A).commit("fresh")  # saved before any delivery
    done, fresh = store.checkpoints()
    assert (done.checkpoint_id, done.position, done.lag_events, done.lag_seconds) == (
        "done",
        events[-1].global_sequence,
        0,
        0.0,
    )
    assert (fresh.checkpoint_id, fresh.position, fresh.lag_events) == ("fresh", None, 5)


@pytest.mark.parametrize(
    "region",
    [
        ep.Region.all(),
        ep.Region.entity("a:1", exact=True),
        ep.Region.scope("us"),
        ep.Region.all().with_kinds(["x", "y"]),
        ep.Region.all().with_kind_prefix("x"),
        ep.Region.entity("a").with_clock_range(1, 3),
    ],
    ids=["all", "exact", "scope", "kinds", "prefix", "clock"],
)
def test_every_kind_of_region_is_read_back_from_its_identity(store: ep.Store, region: ep.Region) -> None:
    store.append_batch(
        [((f"a:{i % 3}", "eu" if i % 2 else "us"), "xyz"[i % 3], i) for i in range(30)]
        + [(("a", "us"), "x", i) for i in range(5)]
    )
    matching = store.query(region)
    assert len(matching) >= 3
    _commit_after(store, region, "r", 2)
    [info] = store.checkpoints()
    assert info.region_identity == region.checkpoint_identity
    assert info.lag_events == len(store.query(region, after=matching[1].global_sequence)) == len(matching) - 2


def test_checkpoints_without_a_readable_region_have_no_lag(store: ep.Store, data_dir: Path) -> None:
    store.append(("a", "eu"), "k", 1)
    ep.Cursor.save_checkpoint(data_dir, "bare", ep.CursorCheckpoint(0, True))
    future = ep.CursorCheckpoint(0, True, region_identity="entity=*|scope=*|kind=*|clock=*|colour=x")
    ep.Cursor.save_checkpoint(data_dir, "future", future)
    bare, fut = store.checkpoints()
    assert (bare.checkpoint_id, bare.region_identity, bare.position, bare.lag_events, bare.lag_seconds) == (
        "bare",
        None,
        0,
        None,
        None,
    )
    assert (fut.region_identity, fut.lag_events, fut.lag_seconds) == (future.region_identity, None, None)


def test_a_corrupt_checkpoint_is_reported_not_skipped(store: ep.Store, data_dir: Path) -> None:
    store.cursor(A).commit("good")
    (data_dir / "cursors" / "bad.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ep.CursorCheckpointCorrupt, match=r"bad\.ckpt"):
        store.checkpoints()


def test_metrics_report_a_corrupt_checkpoint_beside_the_others(store: ep.Store, data_dir: Path) -> None:
    """One damaged checkpoint file must not take the figures of every other checkpoint (and a
    metrics scrape) down with it: it is reported as corrupt, the others as usual."""
    events = _workload(store, 6, 2)
    _commit_after(store, A, "a-good", 2)
    _commit_after(store, A, "c-good", 5)
    bad = data_dir / "cursors" / "b-bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    before = bad.read_bytes()
    checkpoints = store.metrics()["checkpoints"]
    assert list(checkpoints) == ["a-good", "b-bad", "c-good"]
    assert checkpoints["b-bad"] == {
        "position": None,
        "lag_events": None,
        "lag_seconds": None,
        "dead_letters": 0,
        "corrupt": True,
    }
    for checkpoint_id, read in (("a-good", 2), ("c-good", 5)):
        figures = checkpoints[checkpoint_id]
        assert (figures["position"], figures["lag_events"], figures["corrupt"]) == (
            events[read - 1].global_sequence,
            len(events) - read,
            False,
        )
    assert bad.read_bytes() == before  # reported, never repaired or removed


def test_stopped_workers_are_listed_and_a_read_only_store_lists_them(open_store, data_dir: Path) -> None:
    store = open_store()
    events = _workload(store, 6, 2)
    done = threading.Event()

    def handler(batch: list[ep.Event], _s: ep.Store, _w: object) -> None:
        if batch[-1].global_sequence == events[-1].global_sequence:
            done.set()

    handle = store.cursor_worker(A, handler, ep.CursorWorkerConfig(batch_size=2, checkpoint_id="w"))
    assert done.wait(30)
    handle.stop_and_join(timeout=30)
    assert [(i.checkpoint_id, i.position, i.lag_events) for i in store.checkpoints()] == [
        ("w", events[-1].global_sequence, 0)
    ]
    store.append(("a", "eu"), "k", "after the stop")
    store.close()
    reader = open_store(read_only=True)
    [info] = reader.checkpoints()
    assert (info.checkpoint_id, info.position, info.lag_events) == ("w", events[-1].global_sequence, 1)
    assert open_store(data_dir.parent / "elsewhere").checkpoints() == []


def test_handle_lag_of_a_worker_blocked_in_its_handler(store: ep.Store) -> None:
    events = _workload(store, 10, 5)
    entered, release = threading.Semaphore(0), threading.Semaphore(0)

    def handler(_batch: list[ep.Event], _s: ep.Store, _w: object) -> None:
        entered.release()
        assert release.acquire(timeout=30)

    for checkpoint_id in (None, "lagging"):
        handle = store.cursor_worker(
            A, handler, ep.CursorWorkerConfig(batch_size=4, checkpoint_id=checkpoint_id)
        )
        assert entered.acquire(timeout=30)  # in its handler with events 0-3, nothing committed
        assert handle.lag == 10
        release.release()
        assert entered.acquire(timeout=30)  # 0-3 committed, in its handler with 4-7
        assert handle.lag == 6 and handle.position == events[3].global_sequence
        store.append(("b", "eu"), "k", "outside")
        assert handle.lag == 6
        release.release()
        assert entered.acquire(timeout=30)  # with 8-9
        release.release()
        wait_until(lambda h=handle: h.lag == 0, 30, "the worker to catch up")
        handle.stop_and_join(timeout=30)
    assert [(i.checkpoint_id, i.lag_events) for i in store.checkpoints()] == [("lagging", 0)]


def test_a_standby_s_lag_counts_from_its_checkpoint(store: ep.Store) -> None:
    events = _workload(store, 6, 0)
    _commit_after(store, A, "jobs", 2)
    holder = store._native.take_worker_lease("jobs")  # stands for the active worker
    assert holder is not None
    try:
        config = ep.CursorWorkerConfig(checkpoint_id="jobs", standby=True)
        standby = store.cursor_worker(A, lambda *_: None, config)
        assert not standby.is_active
        assert standby.lag == len(events) - 2
        standby.stop_and_join(timeout=30)
    finally:
        holder.release()


def test_metrics_names_are_stable(store: ep.Store) -> None:
    store.cursor(A).commit("cp")
    metrics = store.metrics()
    assert (
        set(metrics)
        == set(typing.get_type_hints(ep.StoreMetrics))
        == {
            "appends",
            "appended_events",
            "fsyncs",
            "events",
            "visible_events",
            "durable_events",
            "bytes",
            "segments",
            "entities",
            "checkpoints",
        }
    )
    assert (
        set(metrics["checkpoints"]["cp"])
        == set(typing.get_type_hints(ep.CheckpointMetrics))
        == {
            "position",
            "lag_events",
            "lag_seconds",
            "dead_letters",
            "corrupt",
        }
    )


def test_metrics_values_follow_a_known_workload(open_store, data_dir: Path) -> None:
    store = open_store(sync="always")
    for i in range(3):
        store.append(("a:1", "eu"), "k", i)
    store.append_batch([((f"b:{i}", "eu"), "k", i) for i in range(5)])
    store.append(("c", "eu"), "k", 0, idempotency_key="once")
    store.append(("c", "eu"), "k", 0, idempotency_key="once")  # answered from the key: writes nothing
    # one fsync per append under sync="always" (one thread: no group to share it with)
    assert {k: store.metrics()[k] for k in ("appends", "appended_events", "fsyncs")} == {
        "appends": 5,
        "appended_events": 9,
        "fsyncs": 5,
    }
    with store.fence() as fence:
        fence.append(("a:1", "eu"), "k", "hidden")
        fence.cancel()
    _commit_after(store, A, "cp", 1)
    metrics = store.metrics()
    stats = store.stats()
    assert (metrics["appends"], metrics["appended_events"]) == (6, 10)
    assert metrics["fsyncs"] == stats["fsyncs"]
    assert (metrics["events"], metrics["visible_events"], metrics["durable_events"]) == (10, 9, 10)
    assert (metrics["bytes"], metrics["segments"], metrics["entities"]) == (stats["bytes"], 1, 7)
    assert metrics["checkpoints"] == {
        "cp": {
            "position": 0,
            "lag_events": 2,
            "lag_seconds": metrics["checkpoints"]["cp"]["lag_seconds"],
            "dead_letters": 0,
            "corrupt": False,
        }
    }
    assert metrics["checkpoints"]["cp"]["lag_seconds"] > 0
    store.close()
    store = open_store()  # counters are this store's since it opened
    assert (store.metrics()["appends"], store.metrics()["events"]) == (0, 10)


def test_metrics_count_dead_letters_per_checkpoint(store: ep.Store) -> None:
    store.append_batch([(("a", "eu"), "k", i) for i in range(5)])

    def odd_fails(batch: list[ep.Event], _s: ep.Store, _w: object) -> None:
        if any(e.payload % 2 for e in batch):
            raise ValueError("odd")

    handle = store.cursor_worker(A, odd_fails, ep.CursorWorkerConfig(checkpoint_id="dl", dead_letter_after=1))
    wait_until(lambda: handle.lag == 0, 30, "the worker to park the odd events")
    handle.stop_and_join(timeout=30)
    assert store.metrics()["checkpoints"]["dl"]["dead_letters"] == 2
    assert [d.event.payload for d in store.dead_letters("dl")] == [1, 3]
