"""Cursors: ordered, at-least-once pull delivery of the visible events of a region; started
semantics (sequence 0 is reachable), wake-up on commit, interrupt, region filters and hidden
(cancelled fence) ranges stepped over without stalling."""

from __future__ import annotations

import queue
import random
import threading

import eventpak as ep
import pytest

R = ep.Region


def _seqs(events):
    return [e.global_sequence for e in events]


def _pull_in_thread(cursor, max_events=10, timeout=60.0):
    """Runs ``cursor.pull_batch(max_events, timeout)`` in a thread; returns (thread, started,
    results) where ``results`` receives the batch (or the exception)."""
    started = threading.Event()
    results: queue.Queue = queue.Queue()

    def run() -> None:
        started.set()
        try:
            results.put(cursor.pull_batch(max_events, timeout))
        except BaseException as exc:
            results.put(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, started, results


# --- started semantics and basic delivery --------------------------------------------------------


def test_fresh_cursor_is_not_started_at_position_zero(store):
    cursor = store.cursor(R.all())
    assert cursor.position == 0
    assert cursor.started is False
    assert cursor.poll() is None
    assert cursor.poll_batch(10) == []
    assert (cursor.position, cursor.started) == (0, False)


def test_sequence_zero_is_delivered(store, coord):
    receipt = store.append(coord("a"), "k", "first")
    assert receipt.global_sequence == 0
    cursor = store.cursor(R.all())
    event = cursor.poll()
    assert event is not None
    assert event.global_sequence == 0
    assert event.event_id == receipt.event_id
    assert event.payload == "first"
    assert (cursor.position, cursor.started) == (0, True)
    # delivered once: position 0 + started means "after 0"
    assert cursor.poll() is None
    assert (cursor.position, cursor.started) == (0, True)


def test_seek_started_false_redelivers_sequence_zero(store, coord):
    for i in range(3):
        store.append(coord("a"), "k", i)
    cursor = store.cursor(R.all())
    assert _seqs(cursor.poll_batch(10)) == [0, 1, 2]
    cursor.seek(0, False)
    assert _seqs(cursor.poll_batch(10)) == [0, 1, 2]
    cursor.seek(0, True)
    assert _seqs(cursor.poll_batch(10)) == [1, 2]
    cursor.seek(1, True)
    assert _seqs(cursor.poll_batch(10)) == [2]
    assert (cursor.position, cursor.started) == (2, True)


def test_cursor_delivers_events_appended_after_it_was_made(store, coord):
    cursor = store.cursor(R.all())
    assert cursor.poll() is None
    receipts = [store.append(coord("a"), "k", i) for i in range(3)]
    events = cursor.poll_batch(10)
    assert _seqs(events) == [r.global_sequence for r in receipts] == [0, 1, 2]
    assert [e.payload for e in events] == [0, 1, 2]
    assert cursor.poll() is None
    store.append(coord("b"), "k", 3)
    event = cursor.poll()
    assert event is not None and event.global_sequence == 3 and event.payload == 3


def test_poll_batch_respects_max_and_keeps_order(store, coord):
    for i in range(5):
        store.append(coord("a"), "k", i)
    cursor = store.cursor(R.all())
    assert _seqs(cursor.poll_batch(2)) == [0, 1]
    assert cursor.position == 1
    assert _seqs(cursor.poll_batch(2)) == [2, 3]
    assert _seqs(cursor.poll_batch(2)) == [4]
    assert cursor.poll_batch(2) == []
    assert cursor.position == 4


def test_cursor_delivers_full_events(store, coord, event_key):
    store.append(coord("acct:1", "eu"), "opened", {"owner": "ann"})
    store.append(coord("acct:1", "eu"), "deposited", {"amount": 5})
    cursor = store.cursor(R.all())
    delivered = cursor.poll_batch(10)
    assert [event_key(e) for e in delivered] == [event_key(e) for e in store.query(R.all())]


def test_cursor_guaranteed_is_an_alias_of_cursor(store, coord):
    for i in range(4):
        store.append(coord("a" if i % 2 else "b"), "k", i)
    plain = store.cursor(R.entity("a"))
    guaranteed = store.cursor_guaranteed(R.entity("a"))
    assert _seqs(plain.poll_batch(10)) == _seqs(guaranteed.poll_batch(10)) == [1, 3]
    assert guaranteed.region == R.entity("a")


def test_cursor_region_property(store):
    region = R.entity("acct").with_scope("eu").with_kind("deposited")
    cursor = store.cursor(region)
    assert cursor.region == region
    assert cursor.region.checkpoint_identity == region.checkpoint_identity


def test_two_cursors_are_independent(store, coord):
    for i in range(4):
        store.append(coord("a"), "k", i)
    first = store.cursor(R.all())
    second = store.cursor(R.all())
    assert _seqs(first.poll_batch(3)) == [0, 1, 2]
    assert _seqs(second.poll_batch(1)) == [0]
    assert _seqs(first.poll_batch(10)) == [3]
    assert _seqs(second.poll_batch(10)) == [1, 2, 3]


def test_pull_batch_returns_available_events_without_waiting(store, coord):
    for i in range(3):
        store.append(coord("a"), "k", i)
    cursor = store.cursor(R.all())
    thread, _, results = _pull_in_thread(cursor, 10, 60.0)
    thread.join(timeout=10)
    assert not thread.is_alive(), "pull_batch waited although events were available"
    assert _seqs(results.get_nowait()) == [0, 1, 2]


def test_pull_batch_times_out_empty(store, coord):
    store.append(coord("a"), "k", 0)
    cursor = store.cursor(R.entity("nobody"))
    assert cursor.pull_batch(10, 0.05) == []
    assert (cursor.position, cursor.started) == (0, False)
    assert cursor.pull_batch(10, 0) == []


# --- wake-up on commit and interrupt -------------------------------------------------------------


def test_blocked_pull_batch_wakes_on_commit(store, coord):
    cursor = store.cursor(R.all())
    # several rounds, so that most of them find the reader really blocked in the wait
    for round_no in range(5):
        thread, started, results = _pull_in_thread(cursor, 10, 60.0)
        assert started.wait(10)
        receipt = store.append(coord("a"), "k", round_no)
        thread.join(timeout=10)
        assert not thread.is_alive(), "a commit did not wake pull_batch (it would wait 60 s)"
        batch = results.get_nowait()
        assert not isinstance(batch, BaseException), batch
        assert _seqs(batch) == [receipt.global_sequence] == [round_no]
        assert batch[0].payload == round_no


def test_blocked_pull_batch_wakes_on_a_matching_commit_only(store, coord):
    cursor = store.cursor(R.entity("wanted"))
    thread, started, results = _pull_in_thread(cursor, 10, 60.0)
    assert started.wait(10)
    for i in range(5):
        store.append(coord("other"), "k", i)  # wakes the waiter, which must wait on
    receipt = store.append(coord("wanted"), "k", "hit")
    thread.join(timeout=10)
    assert not thread.is_alive()
    batch = results.get_nowait()
    assert _seqs(batch) == [receipt.global_sequence] == [5]


def test_blocked_pull_batch_wakes_on_batch_commit(store, coord):
    cursor = store.cursor(R.all())
    thread, started, results = _pull_in_thread(cursor, 10, 60.0)
    assert started.wait(10)
    store.append_batch([(coord("a"), "k", i) for i in range(3)])
    thread.join(timeout=10)
    assert not thread.is_alive()
    batch = results.get_nowait()
    # the batch commits atomically: a waiter woken by it sees all of it
    assert _seqs(batch) == [0, 1, 2]


def test_interrupt_wakes_a_blocked_pull_batch(store):
    cursor = store.cursor(R.all())
    thread, started, results = _pull_in_thread(cursor, 10, 60.0)
    assert started.wait(10)
    cursor.interrupt()
    thread.join(timeout=10)
    assert not thread.is_alive(), "interrupt() did not wake pull_batch"
    assert results.get_nowait() == []
    assert (cursor.position, cursor.started) == (0, False)


@pytest.mark.parametrize("shared", [False, True], ids=["exclusive", "shared"])
def test_close_wakes_a_blocked_pull_batch_with_store_closed(open_store, shared):
    store = open_store(shared=shared)
    cursor = store.cursor(R.all())
    thread, started, results = _pull_in_thread(cursor, 10, 60.0)
    assert started.wait(10)
    store.close()
    thread.join(timeout=10)
    assert not thread.is_alive(), "close() did not wake pull_batch (it would wait 60 s)"
    assert isinstance(results.get_nowait(), ep.StoreClosed)


def test_interrupted_cursor_still_delivers_afterwards(store, coord):
    cursor = store.cursor(R.all())
    thread, started, results = _pull_in_thread(cursor, 10, 60.0)
    assert started.wait(10)
    cursor.interrupt()
    thread.join(timeout=10)
    assert results.get_nowait() == []
    store.append(coord("a"), "k", 1)
    assert _seqs(cursor.pull_batch(10, 10)) == [0]


# --- ordering, regions, at-least-once ------------------------------------------------------------


def test_region_filters_deliver_exactly_the_matching_events_in_order(store, coord):
    rng = random.Random(7)
    entities = ["alice", "alice:x", "alice2", "bob"]
    scopes = ["eu", "us"]
    kinds = ["opened", "deposited", "withdrawn"]
    for i in range(300):
        store.append(coord(rng.choice(entities), rng.choice(scopes)), rng.choice(kinds), i)
    regions = [
        R.all(),
        R.entity("alice"),
        R.entity("alice").with_scope("eu"),
        R.scope("us"),
        R.all().with_kind("deposited"),
        R.all().with_kinds(["opened", "withdrawn"]),
        R.entity("bob").with_kind_prefix("dep"),
        R.entity("alice2").with_clock_range(3, 9),
    ]
    everything = store.query(R.all())
    for region in regions:
        expected = [
            e.global_sequence for e in everything if region.matches(e.coordinate, e.kind, e.entity_sequence)
        ]
        cursor = store.cursor(region)
        delivered = []
        while batch := cursor.poll_batch(rng.randint(1, 17)):
            delivered.extend(batch)
        assert _seqs(delivered) == expected, region.checkpoint_identity
        assert _seqs(delivered) == _seqs(store.query(region))
    # namespace-aware prefix: alice matches alice and alice:x, never alice2
    alice = {e.entity for e in store.query(R.entity("alice"))}
    assert alice == {"alice", "alice:x"}
    clocked = store.query(R.entity("alice2").with_clock_range(3, 9))
    assert [e.entity_sequence for e in clocked] == list(range(3, 10))


def test_cursor_keeps_up_with_concurrent_writers(store, coord):
    writers, per_writer = 3, 200
    barrier = threading.Barrier(writers + 1)
    done = threading.Event()
    errors: list[BaseException] = []
    regions = {"all": R.all(), "w0": R.entity("w0"), "odd": R.all().with_kind("odd")}
    delivered: dict[str, list[ep.Event]] = {name: [] for name in regions}

    def writer(w: int) -> None:
        try:
            barrier.wait()
            for i in range(per_writer):
                store.append(coord(f"w{w}"), "odd" if i % 2 else "even", {"w": w, "i": i})
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        try:
            cursors = {name: store.cursor(region) for name, region in regions.items()}
            barrier.wait()
            while True:
                finished = done.is_set()
                for name, cursor in cursors.items():
                    delivered[name].extend(cursor.pull_batch(50, 0.01))
                if finished:
                    for name, cursor in cursors.items():
                        while batch := cursor.poll_batch(100):
                            delivered[name].extend(batch)
                    return
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    reader_thread = threading.Thread(target=reader)
    reader_thread.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    done.set()
    reader_thread.join(timeout=60)
    assert not reader_thread.is_alive()
    assert not errors, errors
    for name, region in regions.items():
        seqs = _seqs(delivered[name])
        assert seqs == _seqs(store.query(region)), name
        assert seqs == sorted(set(seqs)), f"{name}: out of order or duplicated"
        assert all(region.matches(e.coordinate, e.kind) for e in delivered[name])
    assert len(delivered["all"]) == writers * per_writer
    assert _seqs(delivered["all"]) == list(range(writers * per_writer))
    # every writer's events arrive in the order it wrote them
    for w in range(writers):
        assert [e.payload["i"] for e in delivered["all"] if e.payload["w"] == w] == list(range(per_writer))


def test_rewinding_redelivers_the_same_events(store, coord, event_key):
    for i in range(6):
        store.append(coord("a"), "k", i)
    cursor = store.cursor(R.all())
    first = cursor.poll_batch(4)
    cursor.seek(1, True)  # at-least-once: rewinding gives the same events again
    again = cursor.poll_batch(10)
    assert _seqs(again) == [2, 3, 4, 5]
    assert [event_key(e) for e in again[:2]] == [event_key(e) for e in first[2:]]


# --- hidden ranges -------------------------------------------------------------------------------


def _cancelled(store, coord, count, entity="a"):
    with store.fence() as fence:
        receipts = [fence.append(coord(entity), "hidden", f"h{i}") for i in range(count)]
        fence.cancel()
    return [r.global_sequence for r in receipts]


def test_cursor_steps_over_hidden_ranges_one_by_one(store, coord):
    visible = []
    hidden = []
    visible.append(store.append(coord("a"), "k", "v0").global_sequence)
    hidden += _cancelled(store, coord, 3)
    visible.append(store.append(coord("a"), "k", "v1").global_sequence)
    visible.append(store.append(coord("a"), "k", "v2").global_sequence)
    hidden += _cancelled(store, coord, 1)
    visible.append(store.append(coord("a"), "k", "v3").global_sequence)
    assert visible == [0, 4, 5, 7] and hidden == [1, 2, 3, 6]
    cursor = store.cursor(R.all())
    delivered = []
    while (event := cursor.poll()) is not None:
        delivered.append(event)
    assert _seqs(delivered) == visible
    assert [e.payload for e in delivered] == ["v0", "v1", "v2", "v3"]


def test_cursor_does_not_stall_on_a_long_hidden_range(store, coord):
    store.append(coord("a"), "k", "before")
    hidden = _cancelled(store, coord, 500)
    assert hidden == list(range(1, 501))
    cursor = store.cursor(R.all())
    assert cursor.poll().global_sequence == 0
    # one poll with max=1 must reach the next visible event, not return empty at the hole
    assert cursor.poll() is None
    after = store.append(coord("a"), "k", "after")
    assert after.global_sequence == 501
    event = cursor.poll()
    assert event is not None and event.global_sequence == 501 and event.payload == "after"


def test_cursor_over_only_hidden_events_returns_nothing_and_does_not_hang(store, coord):
    _cancelled(store, coord, 5)
    cursor = store.cursor(R.all())
    assert cursor.poll() is None
    assert cursor.pull_batch(10, 0.05) == []
    assert (cursor.position, cursor.started) == (0, False)
    receipt = store.append(coord("a"), "k", "v")
    assert receipt.global_sequence == 5
    assert _seqs(cursor.pull_batch(10, 10)) == [5]


def test_query_steps_over_hidden_ranges(store, coord):
    store.append(coord("a"), "k", "v0")
    _cancelled(store, coord, 3)
    store.append(coord("a"), "k", "v4")
    store.append(coord("b"), "k", "v5")
    _cancelled(store, coord, 2, entity="b")
    store.append(coord("b"), "k", "v8")
    assert _seqs(store.query(R.all())) == [0, 4, 5, 8]
    assert _seqs(store.query(R.all(), limit=2)) == [0, 4]
    assert _seqs(store.query(R.all(), after=0, limit=1)) == [4]
    assert _seqs(store.query(R.all(), after=2)) == [4, 5, 8]  # after a hidden sequence
    assert _seqs(store.query(R.all(), after=6, limit=1)) == [8]
    assert _seqs(store.query(R.entity("b"))) == [5, 8]
    assert store.query(R.all().with_kind("hidden")) == []


def test_blocked_cursor_is_not_woken_into_a_hidden_event(store, coord):
    store.append(coord("a"), "k", "v0")
    cursor = store.cursor(R.all())
    assert _seqs(cursor.poll_batch(10)) == [0]
    thread, started, results = _pull_in_thread(cursor, 10, 60.0)
    assert started.wait(10)
    _cancelled(store, coord, 3)
    receipt = store.append(coord("a"), "k", "v4")
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert _seqs(results.get_nowait()) == [receipt.global_sequence] == [4]


def test_cursor_and_worker_on_a_closed_store_raise_store_closed(open_store):
    store = open_store()
    store.close()
    with pytest.raises(ep.StoreClosed):
        store.cursor(ep.Region.all())
    with pytest.raises(ep.StoreClosed):
        store.cursor_worker(ep.Region.all(), lambda batch, s, w: ep.CursorWorkerAction.CONTINUE)
