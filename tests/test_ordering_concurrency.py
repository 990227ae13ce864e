"""Concurrent appends: dense commit order, per-entity clocks, and the GIL released while waiting."""

from __future__ import annotations

import threading

import eventpak as ep

THREADS = 4
PER_THREAD = 500
ZERO_HASH = bytes(32)


def _run_appenders(store, coord):
    barrier = threading.Barrier(THREADS)
    receipts: dict[int, list[ep.AppendReceipt]] = {}
    errors: list[BaseException] = []

    def appender(tid: int) -> None:
        try:
            mine = []
            barrier.wait()
            for i in range(PER_THREAD):
                # alternate between a private entity and one shared by every thread
                entity = "shared" if i % 2 else f"own:{tid}"
                mine.append(store.append(coord(entity), "k", {"t": tid, "i": i}))
            receipts[tid] = mine
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=appender, args=(tid,)) for tid in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return receipts


def test_concurrent_appends_get_dense_unique_global_sequences(open_store, coord):
    store = open_store(sync="never")
    receipts = _run_appenders(store, coord)
    sequences = sorted(r.global_sequence for rs in receipts.values() for r in rs)
    assert sequences == list(range(THREADS * PER_THREAD))
    assert store.stats()["events"] == THREADS * PER_THREAD


def test_concurrent_appends_keep_each_threads_order(open_store, coord):
    store = open_store(sync="never")
    receipts = _run_appenders(store, coord)
    for rs in receipts.values():
        seqs = [r.global_sequence for r in rs]
        assert seqs == sorted(seqs)


def test_concurrent_appends_query_returns_commit_order(open_store, coord):
    store = open_store(sync="never")
    receipts = _run_appenders(store, coord)
    events = store.query(ep.Region.all())
    assert [e.global_sequence for e in events] == list(range(THREADS * PER_THREAD))
    by_seq = {r.global_sequence: r for rs in receipts.values() for r in rs}
    for event in events:
        assert event.event_id == by_seq[event.global_sequence].event_id
        assert event.hash == by_seq[event.global_sequence].hash
    ids = [e.event_id for e in events]
    assert ids == sorted(ids)
    # each thread's own payloads appear in the order it appended them
    for tid in range(THREADS):
        mine = [e.payload["i"] for e in events if e.payload["t"] == tid]
        assert mine == list(range(PER_THREAD))


def test_concurrent_appends_keep_entity_sequences_dense_and_chained(open_store, coord):
    store = open_store(sync="never")
    _run_appenders(store, coord)
    events = store.query(ep.Region.all())
    next_seq: dict[str, int] = {}
    last_hash: dict[str, bytes] = {}
    for event in events:
        assert event.entity_sequence == next_seq.get(event.entity, 0)
        assert event.prev_hash == last_hash.get(event.entity, ZERO_HASH)
        next_seq[event.entity] = event.entity_sequence + 1
        last_hash[event.entity] = event.hash
    assert next_seq["shared"] == THREADS * PER_THREAD // 2
    for tid in range(THREADS):
        assert next_seq[f"own:{tid}"] == PER_THREAD // 2


def test_concurrent_appends_survive_reopen(open_store, coord, event_key):
    store = open_store(sync="never")
    _run_appenders(store, coord)
    before = [event_key(e) for e in store.query(ep.Region.all())]
    store.close()
    assert [event_key(e) for e in open_store().query(ep.Region.all())] == before


def _start_append(store, coord_value, payload, results, key):
    def run():
        try:
            results[key] = store.append(coord_value, "k", payload)
        except BaseException as exc:
            results[key] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_query_runs_while_an_appender_waits_for_fsync(open_store, coord, wait_until):
    store = open_store(sync="always")
    results: dict[str, object] = {}
    store._native.pause_syncs(True)
    try:
        appender = _start_append(store, coord("a"), "first", results, "a")
        # the event is written (visible) before its fsync; the appender is still blocked in fsync
        wait_until(lambda: store.stats()["events"] == 1, what="the append to be written")
        events = store.query(ep.Region.all())
        assert [e.payload for e in events] == ["first"]
        assert store.get(events[0].event_id).payload == "first"
        assert appender.is_alive()
        assert "a" not in results
        assert store.stats()["durable_events"] == 0
    finally:
        store._native.pause_syncs(False)
    appender.join(timeout=30)
    assert not appender.is_alive()
    receipt = results["a"]
    assert isinstance(receipt, ep.AppendReceipt), receipt
    assert receipt.durable is True
    assert receipt.global_sequence == 0
    assert store.stats()["durable_events"] == 1


def test_two_appenders_progress_while_fsync_is_pending(open_store, coord, wait_until):
    store = open_store(sync="always")
    results: dict[str, object] = {}
    store._native.pause_syncs(True)
    try:
        first = _start_append(store, coord("a"), "one", results, "a")
        wait_until(lambda: store.stats()["events"] == 1, what="the first append to be written")
        second = _start_append(store, coord("b"), "two", results, "b")
        wait_until(lambda: store.stats()["events"] == 2, what="the second append to be written")
        # both events are written while the first appender still waits for its fsync
        assert first.is_alive()
        assert second.is_alive()
        assert "a" not in results
        assert "b" not in results
        events = store.query(ep.Region.all())
        assert [(e.entity, e.payload) for e in events] == [("a", "one"), ("b", "two")]
        assert store.stats()["durable_events"] == 0
    finally:
        store._native.pause_syncs(False)
    first.join(timeout=30)
    second.join(timeout=30)
    assert not first.is_alive()
    assert not second.is_alive()
    receipt_a, receipt_b = results["a"], results["b"]
    assert isinstance(receipt_a, ep.AppendReceipt), receipt_a
    assert isinstance(receipt_b, ep.AppendReceipt), receipt_b
    assert receipt_a.durable is True
    assert receipt_b.durable is True
    assert (receipt_a.global_sequence, receipt_b.global_sequence) == (0, 1)
    assert store.stats()["durable_events"] == 2


def test_concurrent_appends_with_sync_always_are_all_durable(open_store, coord):
    store = open_store(sync="always")
    barrier = threading.Barrier(THREADS)
    receipts: list[ep.AppendReceipt] = []
    lock = threading.Lock()

    def appender(tid: int) -> None:
        barrier.wait()
        for i in range(25):
            receipt = store.append(coord(f"own:{tid}"), "k", i)
            with lock:
                receipts.append(receipt)

    threads = [threading.Thread(target=appender, args=(tid,)) for tid in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.global_sequence for r in receipts) == list(range(THREADS * 25))
    assert all(r.durable for r in receipts)
    assert store.stats()["durable_events"] == THREADS * 25


def test_appenders_waiting_together_share_one_fsync(open_store, coord, wait_until):
    store = open_store(sync="always")
    results: dict[str, object] = {}
    store._native.pause_syncs(True)
    try:
        threads = [_start_append(store, coord(name), name, results, name) for name in "abcd"]
        wait_until(lambda: store.stats()["events"] == 4, what="all four appends to be written")
        before = store.stats()["fsyncs"]
    finally:
        store._native.pause_syncs(False)
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()
    assert all(isinstance(results[name], ep.AppendReceipt) and results[name].durable for name in "abcd")
    # group commit: the one fsync held back by the pause covered all four appenders
    assert store.stats()["fsyncs"] == before + 1
    assert store.stats()["durable_events"] == 4
