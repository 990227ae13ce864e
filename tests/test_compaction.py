"""Retention and compaction: Store.compact(ep.Retention(...)) removes the selected events of
the sealed segments; everything else keeps every field and byte, across close and reopen."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest

SMALL = {"segment_max_bytes": 4096, "sync": "never"}


def fill(store: ep.Store, n: int = 150, *, keyed: bool = False) -> list[ep.AppendReceipt]:
    """``n`` events over entities e0..e2, kinds alternating tick (even) and keep (odd)."""
    receipts = []
    for i in range(n):
        key = f"key-{i}" if keyed else None
        kind = "tick" if i % 2 == 0 else "keep"
        receipts.append(
            store.append((f"e{i % 3}", "s"), kind, {"i": i, "pad": "x" * 20}, idempotency_key=key)
        )
    return receipts


def snapshot(store: ep.Store) -> dict[int, tuple[Any, ...]]:
    """Every visible event by sequence, with every field that must survive compaction."""
    return {
        e.global_sequence: (
            e.event_id,
            e.entity,
            e.kind,
            e.entity_sequence,
            e.timestamp_us,
            e.hash,
            e.prev_hash,
            e.payload_bytes,
        )
        for e in store.query(ep.Region.all())
    }


def active_first(store: ep.Store) -> int:
    """The first sequence of the active (newest) segment: compaction leaves it alone."""
    seg = sorted((Path(store.path) / "segments").glob("*.seg"))[-1].read_bytes()
    return int.from_bytes(seg[24:32], "little")


def test_kinds_remove_only_sealed_events_of_those_kinds_and_keep_the_rest_exactly(open_store) -> None:
    store = open_store(**SMALL)
    fill(store)
    before = snapshot(store)
    first_active = active_first(store)
    report = store.compact(ep.Retention(kinds=["tick"]))
    after = snapshot(store)
    removed = set(before) - set(after)
    assert removed == {s for s, v in before.items() if v[2] == "tick" and s < first_active}
    assert report == ep.CompactionReport(
        removed=len(removed), kept=report.kept, bytes_freed=report.bytes_freed
    )
    assert report.kept == sum(1 for s in after if s < first_active) and report.bytes_freed > 0
    assert all(after[s] == before[s] for s in after)
    assert store.verify().ok
    store.close()
    reopened = open_store(**SMALL)
    assert snapshot(reopened) == after
    assert reopened.verify().ok


def test_verify_counts_the_events_the_log_still_holds(open_store) -> None:
    store = open_store(**SMALL)
    fill(store)
    assert store.verify().events == 150 == store.stats()["events"]
    removed = store.compact(ep.Retention(kinds=["tick"])).removed
    assert removed > 0
    checked = store.verify()
    assert checked.ok and checked.events == 150 - removed == store.stats()["events"]
    store.close()
    reopened = open_store(**SMALL)
    assert reopened.verify().events == 150 - removed == reopened.stats()["events"]


def test_durable_events_counts_the_events_the_log_still_holds(open_store) -> None:
    store = open_store(**SMALL)
    fill(store)
    removed = store.compact(ep.Retention(kinds=["tick"])).removed
    store.sync()
    stats = store.stats()
    assert stats["durable_events"] == stats["events"] == 150 - removed
    store.append(("late", "s"), "tick", {})
    store.sync()
    assert store.stats()["durable_events"] == 151 - removed


def test_max_age_selects_only_older_events(open_store) -> None:
    store = open_store(**SMALL)
    fill(store, 100)
    assert store.compact(ep.Retention(max_age_s=3600)).removed == 0
    assert store.compact(ep.Retention(max_age_s=0)).removed > 0


def test_keep_last_counts_over_the_whole_store(open_store) -> None:
    store = open_store(**SMALL)
    fill(store, 150)
    report = store.compact(ep.Retention(keep_last_per_entity=4))
    assert report.removed > 0
    for entity in ("e0", "e1", "e2"):
        clocks = [e.entity_sequence for e in store.query(ep.Region.entity(entity, exact=True))]
        # The active segment's events count toward the four; all four newest are still there.
        assert clocks[-4:] == [46, 47, 48, 49]
    # Among ticks only: each entity keeps its newest 2 ticks, every keep stays.
    store2 = open_store(Path(store.path).parent / "two", **SMALL)
    fill(store2, 150)
    store2.compact(ep.Retention(kinds=["tick"], keep_last_per_entity=2))
    for entity in ("e0", "e1", "e2"):
        events = store2.query(ep.Region.entity(entity, exact=True))
        assert len([e for e in events if e.kind == "keep"]) == 25
        assert len([e for e in events if e.kind == "tick"]) >= 2


def test_a_predicate_replaces_the_rules_and_sees_events(open_store) -> None:
    store = open_store(**SMALL)
    fill(store, 120)
    seen: list[int] = []

    def odd(event: ep.Event) -> bool:
        seen.append(event.global_sequence)
        return event.payload["i"] % 2 == 1

    report = store.compact(ep.Retention(predicate=odd))
    assert seen == sorted(seen) and report.removed == len([s for s in seen if s % 2 == 1])
    assert all(e.payload["i"] % 2 == 0 for e in store.query(ep.Region.all()) if e.global_sequence in seen)


def test_reserved_kinds_may_be_removed(open_store) -> None:
    store = open_store(**SMALL)
    proposal = ep.Proposal(("e0", "s"), "order", {})
    for _ in range(60):
        store.append_denial(ep.Denial("gate", "NO", "refused"), proposal)
    fill(store, 60)
    report = store.compact(ep.Retention(kinds=["eventpak.denial"]))
    assert report.removed > 0
    assert store.verify().ok


def test_cancelled_fence_events_are_never_selected(open_store) -> None:
    store = open_store(**SMALL)
    with pytest.raises(RuntimeError), store.fence() as f:
        f.append(("e0", "s"), "tick", {"hidden": True})
        raise RuntimeError("cancel")
    fill(store, 120)
    report = store.compact(ep.Retention(predicate=lambda e: True))
    assert report.removed > 0
    assert store.verify().ok
    stats = store.stats()
    assert stats["events"] - stats["visible_events"] == 1  # the cancelled one is still held, hidden


@pytest.mark.parametrize(
    "bad",
    [
        {"max_age_s": -1},
        {"max_age_s": float("nan")},
        {"max_age_s": "1"},
        {"max_age_s": True},
        {"kinds": []},
        {"kinds": "tick"},
        {"kinds": ["eventpak/bad"]},
        {"kinds": [1]},
        {"keep_last_per_entity": -1},
        {"keep_last_per_entity": 1.5},
        {"keep_last_per_entity": 2**64},
        {"predicate": 3},
        {"predicate": lambda e: True, "kinds": ["tick"]},
        {"predicate": lambda e: True, "keep_last_per_entity": 1},
    ],
)
def test_bad_retention_is_refused_and_leaves_data_untouched(open_store, bad: dict[str, Any]) -> None:
    store = open_store(**SMALL)
    fill(store, 100)
    before = snapshot(store)
    with pytest.raises(ep.InvalidConfig):
        store.compact(ep.Retention(**bad))
    with pytest.raises(ep.InvalidConfig):
        store.compact("tick")  # type: ignore[arg-type]
    assert snapshot(store) == before


def test_a_raising_predicate_or_progress_changes_nothing(open_store) -> None:
    store = open_store(**SMALL)
    fill(store, 100)
    before = snapshot(store)
    with pytest.raises(ZeroDivisionError):
        store.compact(ep.Retention(predicate=lambda e: 1 / 0))

    def stop(done: int, total: int) -> None:
        raise KeyError("stop")

    with pytest.raises(KeyError):
        store.compact(ep.Retention(kinds=["tick"]), progress=stop)
    assert snapshot(store) == before
    assert not [p for p in os.listdir(Path(store.path) / "segments") if ".compact-" in p]
    calls: list[tuple[int, int]] = []
    store.compact(ep.Retention(kinds=["tick"]), progress=lambda d, t: calls.append((d, t)))
    assert calls and calls[-1][0] == calls[-1][1] and all(d <= t for d, t in calls)


def test_store_calls_from_inside_the_predicate_are_refused_instead_of_deadlocking(
    open_store, tmp_path: Path
) -> None:
    store = open_store(**SMALL)
    fill(store, 100)
    refused: dict[str, type[BaseException]] = {}
    calls: dict[str, Any] = {
        "verify": store.verify,
        "backup": lambda: store.backup(tmp_path / "copy"),
        "compact": lambda: store.compact(ep.Retention(kinds=["keep"])),
        "close": store.close,
    }

    def select(event: ep.Event) -> bool:
        for name, call in calls.items():
            if name not in refused:
                try:
                    call()
                except ep.InvalidConfig as e:
                    refused[name] = type(e)
        return event.kind == "tick"

    report = store.compact(ep.Retention(predicate=select))
    assert set(refused) == set(calls)
    assert report.removed > 0 and not store.closed
    assert not (tmp_path / "copy").exists()
    assert store.verify().ok


def test_idempotency_keys_of_removed_events_return_their_receipts(open_store) -> None:
    store = open_store(**SMALL)
    receipts = fill(store, 100, keyed=True)
    store.compact(ep.Retention(kinds=["tick"]))
    original = receipts[0]
    with pytest.raises(ep.EventNotFound):
        store.get(original.event_id)
    again = store.append(("e0", "s"), "tick", {"i": 0, "pad": "x" * 20}, idempotency_key="key-0")
    assert (again.event_id, again.global_sequence, again.entity_sequence, again.hash, again.timestamp_us) == (
        original.event_id,
        original.global_sequence,
        original.entity_sequence,
        original.hash,
        original.timestamp_us,
    )
    with pytest.raises(ep.IdempotencyConflict):
        store.append(("e0", "s"), "tick", {"i": 999}, idempotency_key="key-0")
    store.close()
    reopened = open_store(**SMALL)
    assert reopened.append(("e0", "s"), "tick", {"i": 0, "pad": "x" * 20}, idempotency_key="key-0") == again


def test_an_encrypted_store_keeps_no_trace_of_a_removed_keyed_payload(open_store) -> None:
    # The record that answers retries of removed events holds no digest of an encrypted
    # store's payload (one could confirm a guessed payload, even after a forget): a retry
    # is compared on its names, version and tags only, as a forgotten event's is.
    store = open_store(**SMALL, encryption_key=ep.generate_encryption_key())
    receipts = fill(store, 100, keyed=True)
    store.compact(ep.Retention(kinds=["tick"]))
    original = receipts[0]
    again = store.append(("e0", "s"), "tick", {"a different": "payload"}, idempotency_key="key-0")
    assert (again.event_id, again.global_sequence) == (original.event_id, original.global_sequence)
    with pytest.raises(ep.IdempotencyConflict):
        store.append(("e0", "s"), "other-kind", {"i": 0, "pad": "x" * 20}, idempotency_key="key-0")
    assert store.verify().ok


def test_clocks_cas_and_chains_continue_after_removed_events(open_store) -> None:
    store = open_store(**SMALL)
    fill(store, 120)
    # e1's newest events are in the active segment; remove everything sealed of e1, then
    # everything of e2 except what is active.
    store.compact(ep.Retention(predicate=lambda e: e.entity in ("e1", "e2")))
    for reopen in (False, True):
        if reopen:
            store.close()
            store = open_store(**SMALL)
        assert store.next_sequence("e1") == 40 + reopen
        receipt = store.append(("e1", "s"), "keep", {"n": reopen}, expected_sequence=40 + reopen)
        with pytest.raises(ep.ConcurrencyConflict):
            store.append(("e1", "s"), "keep", {}, expected_sequence=0)
        event = store.get(receipt.event_id)
        prev = store.query(ep.Region.entity("e1", exact=True))[-2]
        assert event.prev_hash == prev.hash
        assert store.verify().ok


def test_a_compacted_store_reopens_from_its_index_checkpoint_as_a_scan_does(
    open_store, tmp_path: Path
) -> None:
    store = open_store(**SMALL)
    fill(store, 150, keyed=True)
    store.compact(ep.Retention(predicate=lambda e: e.entity == "e2" or e.kind == "tick"))
    store.close()
    scanned = tmp_path / "scanned"
    shutil.copytree(store.path, scanned)
    loaded = open_store(**SMALL)
    scan = open_store(scanned, enable_index_checkpoint=False, **SMALL)
    assert (loaded.stats()["index_checkpoint"], loaded.stats()["scanned_events"]) == ("loaded", 0)
    assert scan.stats()["index_checkpoint"] == "disabled"
    assert snapshot(loaded) == snapshot(scan)
    for s in (loaded, scan):
        assert s.verify().ok
    for entity in ("e0", "e1", "e2"):
        assert loaded.next_sequence(entity) == scan.next_sequence(entity) == 50
    # A removed event's key answers with its receipt on both.
    same = {"i": 2, "pad": "x" * 20}
    retried = [s.append(("e2", "s"), "tick", same, idempotency_key="key-2") for s in (loaded, scan)]
    assert retried[0] == retried[1]
    gaps = []
    for s in (loaded, scan):
        cursor = s.cursor(ep.Region.all()).with_gap_config(ep.CursorGapConfig.enabled(100))
        cursor.poll_batch(1000)
        gaps.append(cursor.take_gaps())
    assert gaps[0] == gaps[1] and gaps[0]


def test_the_causal_graph_of_a_restored_backup_is_the_live_one(open_store, tmp_path: Path) -> None:
    """A backup carries no index checkpoint: its graph is rebuilt from the segments, where a
    removed event is a hole that repeats the id before it. Effects, descendants and
    correlations must come out as the live store answers them, and both must verify."""
    store = open_store(**SMALL)
    placed = store.append(("order:1", "s"), "placed", {})
    store.append(("debug", "s"), "tick", {})  # removed: its hole sits between cause and effect
    shipped = store.append(("order:1", "s"), "shipped", {}, caused_by=placed)
    receipts = [placed, shipped, *fill(store, 120)]
    for i, cause in enumerate(receipts[:60]):
        receipts.append(store.append((f"e{i % 3}", "s"), "keep", {"i": i}, caused_by=cause))
    store.compact(ep.Retention(kinds=["tick"]))
    store.compact(ep.Retention(keep_last_per_entity=30))  # removes events that earlier holes follow

    def graph(s: ep.Store) -> dict[int, tuple[list[int], list[int], list[int]]]:
        def seqs(events: list[ep.Event]) -> list[int]:
            return [e.global_sequence for e in events]

        return {
            e.global_sequence: (
                seqs(s.effects(e.event_id)),
                seqs(s.descendants(e.event_id)),
                seqs(s.correlated(e.event_id)),
            )
            for e in s.query(ep.Region.all())
        }

    live = graph(store)
    assert shipped.global_sequence in live[placed.global_sequence][0]
    assert store.verify().ok
    store.backup(tmp_path / "backup")
    restored = open_store(tmp_path / "backup", **SMALL)
    assert restored.stats()["index_checkpoint"] == "missing"
    assert graph(restored) == live
    assert restored.verify().ok


def test_walk_ancestors_stops_at_a_removed_predecessor(open_store) -> None:
    store = open_store(**SMALL)
    fill(store, 120)
    store.compact(ep.Retention(kinds=["tick"]))
    newest = store.query(ep.Region.entity("e0", exact=True))[-1]
    walk = store.walk_ancestors(newest.event_id)
    clocks = [e.entity_sequence for e in walk]
    assert clocks == list(range(newest.entity_sequence, newest.entity_sequence - len(clocks), -1))
    assert len(walk) < 40


def test_cursors_step_over_removed_ranges_and_report_them(open_store) -> None:
    store = open_store(**SMALL)
    fill(store, 150)
    # Positioned before, inside and after the range the compaction removes.
    first_active = active_first(store)
    cursors = {}
    for name, after in {"before": None, "inside": 10, "after": first_active - 1}.items():
        c = store.cursor(ep.Region.all(), after=after).with_gap_config(ep.CursorGapConfig.enabled(100))
        cursors[name] = c
    store.compact(ep.Retention(predicate=lambda e: 5 <= e.global_sequence < 40))
    expected = [s for s in range(150) if not 5 <= s < 40]
    assert [e.global_sequence for e in cursors["before"].poll_batch(1000)] == expected
    assert [e.global_sequence for e in cursors["inside"].poll_batch(1000)] == [s for s in expected if s > 10]
    assert [e.global_sequence for e in cursors["after"].poll_batch(1000)] == list(range(first_active, 150))
    gaps = cursors["before"].take_gaps()
    assert [
        (g.expected_sequence, g.delivered_sequence, g.cancelled_ranges, g.compacted_ranges) for g in gaps
    ] == [(5, 40, [], [(5, 40)])]
    assert cursors["inside"].take_gaps()[0].compacted_ranges == [(11, 40)]
    assert cursors["after"].take_gaps() == []


def test_durable_cursors_resume_past_removed_ranges_through_reopen(open_store) -> None:
    store = open_store(**SMALL)
    fill(store, 150)
    # Checkpoints before, inside and after the range the compaction removes.
    for name, count in {"before": 6, "inside": 20, "after": 80}.items():
        c = store.cursor(ep.Region.all())
        c.poll_batch(count)
        c.commit(name)
    store.compact(ep.Retention(predicate=lambda e: 10 <= e.global_sequence < 60))
    store.close()
    store = open_store(**SMALL)
    for name, position, first in (("before", 5, 6), ("inside", 19, 60), ("after", 79, 80)):
        resumed = store.cursor(ep.Region.all()).with_gap_config(ep.CursorGapConfig.enabled(10))
        assert resumed.resume(name)
        assert resumed.position == position
        delivered = [e.global_sequence for e in resumed.poll_batch(8)]
        assert delivered[0] == first and all(not 10 <= s < 60 for s in delivered)
        gaps = [g.compacted_ranges for g in resumed.take_gaps()]
        assert gaps == ([[(10, 60)]] if name == "before" else [[(20, 60)]] if name == "inside" else [])


def test_compaction_beside_concurrent_appends_and_reads(open_store) -> None:
    store = open_store(segment_max_bytes=8192, sync="never")
    fill(store, 600)
    stop = threading.Event()
    errors: list[BaseException] = []
    appended: list[ep.AppendReceipt] = []

    def appender() -> None:
        try:
            while not stop.is_set():
                appended.append(store.append(("w", "s"), "keep", {"n": len(appended)}))
        except BaseException as e:
            errors.append(e)

    def reader() -> None:
        try:
            cursor = store.cursor(ep.Region.all().with_kind("keep"))
            while not stop.is_set():
                for event in cursor.poll_batch(50):
                    assert event.kind == "keep"
                    event.payload  # noqa: B018 - reads the mapped frame
                if cursor.started:
                    cursor.seek(0, False)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=appender), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            store.compact(ep.Retention(kinds=["tick"]))
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors
    for r in appended:
        assert store.get(r.event_id).hash == r.hash
    assert store.verify().ok


def test_refused_in_shared_and_read_only_mode(data_dir: Path, open_store) -> None:
    store = open_store(**SMALL)
    fill(store, 100)
    store.close()
    ro = open_store(read_only=True)
    with pytest.raises(ep.ReadOnlyStore, match="compacting is refused"):
        ro.compact(ep.Retention(kinds=["tick"]))
    ro.close()
    shared = open_store(shared=True)
    with pytest.raises(ep.InvalidConfig):
        shared.compact(ep.Retention(kinds=["tick"]))


def test_space_is_returned_by_the_time_compact_returns(open_store) -> None:
    store = open_store(segment_max_bytes=64 * 1024, sync="never")
    for i in range(2000):
        store.append((f"e{i % 5}", "s"), "tick", {"pad": "y" * 200})
    store.append(("e0", "s"), "keep", {})
    segments = Path(store.path) / "segments"
    before = sum(os.stat(p).st_blocks for p in segments.iterdir())
    report = store.compact(ep.Retention(kinds=["tick"]))
    after = sum(os.stat(p).st_blocks for p in segments.iterdir())
    assert report.removed > 1000
    assert (before - after) * 512 >= report.bytes_freed * 0.9
    assert not [p for p in os.listdir(segments) if ".compact-" in p]


def test_the_asyncio_store_compacts_on_a_pool_thread(data_dir: Path) -> None:
    import asyncio

    async def main() -> ep.CompactionReport:
        async with ep.aio.open(data_dir, **SMALL) as store:
            for i in range(100):
                await store.append((f"e{i % 3}", "s"), "tick" if i % 2 else "keep", {"i": i})
            report = await store.compact(ep.Retention(kinds=["tick"]))
            assert (await store.verify()).ok
            return report

    assert asyncio.run(main()).removed > 0
