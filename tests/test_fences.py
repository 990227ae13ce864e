"""Visibility fences: events written through a fence stay invisible until the block exits
normally; cancel or an exception hides them for good (persisted, across reopen and crashes);
FenceActive / FenceClosed; cancelled events never count for their entity."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable

import eventpak as ep
import pytest

R = ep.Region
ZERO_HASH = bytes(32)


def _seqs(events):
    return [e.global_sequence for e in events]


def _payloads(store, region=None):
    return [e.payload for e in store.query(region or R.all())]


# --- visibility ----------------------------------------------------------------------------------


def test_fenced_events_are_invisible_while_the_fence_is_open(store, coord):
    store.append(coord("a"), "k", "before")
    cursor = store.cursor(R.all())
    assert _seqs(cursor.poll_batch(10)) == [0]
    with store.fence() as fence:
        assert fence.state == "open"
        receipt = fence.append(coord("a"), "k", "fenced")
        assert receipt.global_sequence == 1
        assert _payloads(store) == ["before"]
        assert store.query(R.all(), after=0) == []
        with pytest.raises(ep.EventNotFound):
            store.get(receipt.event_id)
        assert cursor.poll() is None
        assert store.cursor(R.all()).poll_batch(10)[-1].payload == "before"
    assert fence.state == "committed"


def test_committed_fence_events_become_visible_in_order(store, coord, event_key):
    store.append(coord("a"), "k", 0)
    cursor = store.cursor(R.all())
    assert _seqs(cursor.poll_batch(10)) == [0]
    with store.fence() as fence:
        r1 = fence.append(coord("a"), "k", 1)
        r2, r3 = fence.append_batch([(coord("b"), "k", 2), (coord("a"), "k", 3)])
        assert cursor.poll() is None
    assert [r.global_sequence for r in (r1, r2, r3)] == [1, 2, 3]
    assert _payloads(store) == [0, 1, 2, 3]
    # the cursor that polled while the fence was open now delivers the fence's events
    delivered = cursor.poll_batch(10)
    assert _seqs(delivered) == [1, 2, 3]
    assert store.get(r2.event_id).payload == 2
    assert [event_key(e) for e in delivered] == [event_key(e) for e in store.query(R.all(), after=0)]
    assert [e.entity_sequence for e in store.query(R.entity("a"))] == [0, 1, 2]


def test_a_fence_append_takes_every_option_of_one_event(store, coord):
    cause = store.append(coord("a"), "k", "cause", correlation_id=uuid.uuid4())
    with store.fence() as fence:
        receipt = fence.append(
            coord("b"),
            "k",
            "effect",
            caused_by=cause,
            payload_version=2,
            tags=["t1"],
            idempotency_key="once",
            expected_sequence=0,
        )
        with pytest.raises(TypeError):
            fence.append(coord("b"), "k", "x", condition=None)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="takes no condition nor tracking: a fence's events commit"):
            fence.append(  # type: ignore[call-arg]
                coord("b"), "k", "x", condition=ep.AppendCondition(R.all()), tracking=ep.Tracking("t", 1)
            )
        with pytest.raises(TypeError, match=r"Fence.append_batch\(\) takes no condition: a fence's events"):
            fence.append_batch([(coord("b"), "k", "x")], condition=ep.AppendCondition(R.all()))  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"append_batch\(\) takes no tracking"):
            fence.append_batch([(coord("b"), "k", "x")], tracking=ep.Tracking("t", 1))  # type: ignore[arg-type]
    event = store.get(receipt.event_id)
    assert event.causation_id == cause.event_id
    assert event.correlation_id == store.get(cause.event_id).correlation_id
    assert (event.stored_payload_version, event.tags) == (2, ("t1",))
    assert store.head() == 1


def test_fence_commit_wakes_a_blocked_pull_batch(store, coord):
    cursor = store.cursor(R.all())
    results: list = []
    started = threading.Event()

    def pull() -> None:
        started.set()
        results.append(cursor.pull_batch(10, 60.0))

    thread = threading.Thread(target=pull, daemon=True)
    thread.start()
    assert started.wait(10)
    with store.fence() as fence:
        fence.append(coord("a"), "k", "fenced")
    thread.join(timeout=10)
    assert not thread.is_alive(), "committing a fence did not wake the waiting cursor"
    assert [e.payload for e in results[0]] == ["fenced"]


def test_cancelled_fence_events_are_hidden_for_good(store, coord):
    store.append(coord("a"), "k", "v0")
    with store.fence() as fence:
        hidden = fence.append_batch([(coord("a"), "k", "h1"), (coord("b"), "k", "h2")])
        fence.cancel()
        assert fence.state == "cancelled"
    assert fence.state == "cancelled"
    store.append(coord("a"), "k", "v3")
    assert _payloads(store) == ["v0", "v3"]
    assert _seqs(store.query(R.all())) == [0, 3]
    for receipt in hidden:
        with pytest.raises(ep.EventNotFound):
            store.get(receipt.event_id)
    assert _seqs(store.cursor(R.all()).poll_batch(10)) == [0, 3]
    assert store.query(R.entity("b")) == []


def test_exception_inside_the_fence_cancels_it_and_propagates(store, coord):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.fence() as fence:
        receipt = fence.append(coord("a"), "k", "doomed")
        raise Boom
    assert fence.state == "cancelled"
    with pytest.raises(ep.EventNotFound):
        store.get(receipt.event_id)
    assert store.query(R.all()) == []
    # the store accepts plain appends again; the hidden sequence is never reused
    after = store.append(coord("a"), "k", "after")
    assert after.global_sequence == receipt.global_sequence + 1
    assert _payloads(store) == ["after"]


def test_fence_state_transitions(store, coord):
    fence = store.fence()
    assert fence.state == "new"
    with fence:
        assert fence.state == "open"
    assert fence.state == "committed"
    other = store.fence()
    with other:
        other.append(coord("a"), "k", 1)
        other.cancel()
    assert other.state == "cancelled"


def test_empty_fences_change_nothing(store, coord):
    with store.fence():
        pass
    with store.fence() as fence:
        fence.cancel()
    receipt = store.append(coord("a"), "k", "v")
    assert receipt.global_sequence == 0
    assert _payloads(store) == ["v"]


# --- FenceActive / FenceClosed ----------------------------------------------------------------------


def test_plain_appends_raise_fence_active_while_a_fence_is_open(store, coord):
    with store.fence() as fence:
        fence.append(coord("a"), "k", "fenced")
        with pytest.raises(ep.FenceActive):
            store.append(coord("a"), "k", "plain")
        with pytest.raises(ep.FenceActive):
            store.append_batch([(coord("b"), "k", "plain")])
    assert _payloads(store) == ["fenced"]
    store.append(coord("a"), "k", "plain")
    assert _payloads(store) == ["fenced", "plain"]


def _in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Runs ``work`` in a thread; the list gets its result or the exception it raised."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_plain_append_from_another_thread_waits_for_the_fence_to_commit(store, coord):
    with store.fence() as fence:
        fence.append(coord("a"), "k", "fenced")
        thread, outcome = _in_thread(lambda: store.append(coord("x"), "k", "plain"))
        thread.join(timeout=0.5)
        # Still waiting, and nothing of it written: no sequence was taken.
        assert thread.is_alive() and outcome == []
        assert store.stats()["events"] == 1
    thread.join(timeout=30)
    assert isinstance(outcome[0], ep.AppendReceipt) and outcome[0].global_sequence == 1
    assert _payloads(store) == ["fenced", "plain"]


def test_a_cancelled_fence_lets_the_waiting_append_through(store, coord):
    with store.fence() as fence:
        fence.append(coord("a"), "k", "fenced")
        thread, outcome = _in_thread(lambda: store.append(coord("a"), "k", "plain"))
        thread.join(timeout=0.2)
        fence.cancel()
    thread.join(timeout=30)
    receipt = outcome[0]
    assert isinstance(receipt, ep.AppendReceipt)
    assert receipt.entity_sequence == 0  # the cancelled event never counted for the entity
    assert _payloads(store) == ["plain"]


def test_a_waiting_append_gives_up_after_fence_wait_ms(open_store, coord):
    store = open_store(fence_wait_ms=50)
    with store.fence() as fence:
        fence.append(coord("a"), "k", "fenced")
        thread, outcome = _in_thread(lambda: store.append(coord("x"), "k", "plain"))
        thread.join(timeout=30)
        assert len(outcome) == 1 and isinstance(outcome[0], ep.FenceActive)
        assert store.stats()["events"] == 1  # it wrote nothing
    assert _payloads(store) == ["fenced"]


def test_a_fence_from_another_thread_waits_for_the_open_one(store, coord):
    def second_fence() -> str:
        with store.fence() as fence:
            fence.append(coord("b"), "k", "second")
        return fence.state

    with store.fence() as fence:
        fence.append(coord("a"), "k", "first")
        thread, outcome = _in_thread(second_fence)
        thread.join(timeout=0.2)
        assert thread.is_alive()
    thread.join(timeout=30)
    assert outcome == ["committed"]
    assert _payloads(store) == ["first", "second"]


def test_closing_the_store_releases_appends_waiting_for_a_fence(store, coord):
    fence = store.fence()
    fence.__enter__()
    fence.append(coord("a"), "k", "fenced")
    thread, outcome = _in_thread(lambda: store.append(coord("x"), "k", "plain"))
    thread.join(timeout=0.2)
    store.close()  # cancels the open fence (its own thread's: first of all)
    thread.join(timeout=30)
    assert not thread.is_alive()
    # Released either way: ahead of the close once the fence is cancelled (then it was
    # acknowledged and is kept), or refused by the closed store (then nothing was written).
    (result,) = outcome
    assert isinstance(result, ep.AppendReceipt | ep.StoreClosed), result
    with ep.Store.open(store.path) as reopened:
        expected = ["plain"] if isinstance(result, ep.AppendReceipt) else []
        assert _payloads(reopened) == expected


def test_second_fence_raises_fence_active(store, coord):
    with store.fence() as fence:
        fence.append(coord("a"), "k", 1)
        second = store.fence()
        with pytest.raises(ep.FenceActive), second:
            pass
        fence.append(coord("a"), "k", 2)  # the first fence is unharmed
    assert fence.state == "committed"
    assert _payloads(store) == [1, 2]


def test_appending_through_a_finished_fence_raises_fence_closed(store, coord):
    with store.fence() as committed:
        committed.append(coord("a"), "k", 1)
    with pytest.raises(ep.FenceClosed):
        committed.append(coord("a"), "k", "late")
    with pytest.raises(ep.FenceClosed):
        committed.append_batch([(coord("a"), "k", "late")])
    with store.fence() as cancelled:
        cancelled.cancel()
        with pytest.raises(ep.FenceClosed):
            cancelled.append(coord("a"), "k", "late")
    with pytest.raises(ep.FenceClosed):
        cancelled.append(coord("a"), "k", "late")
    with pytest.raises(ep.FenceClosed):
        store.fence().append(coord("a"), "k", "never entered")
    assert _payloads(store) == [1]


def test_finished_fence_cannot_be_reentered_or_cancelled(store, coord):
    with store.fence() as fence:
        fence.append(coord("a"), "k", 1)
    with pytest.raises(ep.FenceClosed):
        fence.cancel()
    with pytest.raises(ep.FenceClosed), fence:
        pass
    assert _payloads(store) == [1]


# --- entity clock and chain ----------------------------------------------------------------------


def test_cancelled_events_do_not_count_for_their_entity(store, coord):
    first = store.append(coord("acct"), "k", 0)
    with store.fence() as fence:
        fenced = fence.append(coord("acct"), "k", "hidden")
        assert fenced.entity_sequence == 1
        fence.cancel()
    with pytest.raises(ep.ConcurrencyConflict) as info:
        store.append(coord("acct"), "k", "x", expected_sequence=2)
    assert info.value.actual == 1
    nxt = store.append(coord("acct"), "k", 1, expected_sequence=1)
    assert nxt.entity_sequence == 1
    events = store.query(R.entity("acct"))
    assert [e.entity_sequence for e in events] == [0, 1]
    assert events[0].prev_hash == ZERO_HASH
    assert events[1].prev_hash == first.hash
    assert [e.event_id for e in store.walk_ancestors(nxt.event_id)] == [nxt.event_id, first.event_id]


def test_cancelled_first_events_leave_a_new_entity_empty(store, coord):
    with store.fence() as fence:
        fence.append(coord("fresh"), "k", "hidden")
        fence.cancel()
    receipt = store.append(coord("fresh"), "k", "real", expected_sequence=0)
    assert receipt.entity_sequence == 0
    (event,) = store.query(R.entity("fresh"))
    assert event.prev_hash == ZERO_HASH


def test_committed_fence_events_count_for_their_entity(store, coord):
    first = store.append(coord("acct"), "k", 0)
    with store.fence() as fence:
        fenced = fence.append(coord("acct"), "k", 1, expected_sequence=1)
    nxt = store.append(coord("acct"), "k", 2, expected_sequence=2)
    events = store.query(R.entity("acct"))
    assert [e.entity_sequence for e in events] == [0, 1, 2]
    assert events[1].prev_hash == first.hash and events[2].prev_hash == fenced.hash
    assert nxt.entity_sequence == 2


# --- persistence ---------------------------------------------------------------------------------


def _build_fenced_log(store, coord):
    store.append(coord("a"), "k", "v0")
    with store.fence() as fence:
        hidden = fence.append_batch([(coord("a"), "k", "h1"), (coord("b"), "k", "h2")])
        fence.cancel()
    store.append(coord("a"), "k", "v3")
    with store.fence() as fence:
        fence.append(coord("b"), "k", "c4")
    with pytest.raises(RuntimeError), store.fence() as fence:
        hidden.append(fence.append(coord("a"), "k", "h5"))
        raise RuntimeError("abort")
    last = store.append(coord("a"), "k", "v6")
    return hidden, last


@pytest.mark.parametrize("index_checkpoint", [True, False], ids=["index-ckpt", "no-index-ckpt"])
def test_hidden_ranges_survive_reopen(open_store, data_dir, coord, index_checkpoint):
    store = open_store()
    hidden, last = _build_fenced_log(store, coord)
    before = [(e.global_sequence, e.payload, e.entity_sequence, e.hash) for e in store.query(R.all())]
    assert [b[:2] for b in before] == [(0, "v0"), (3, "v3"), (4, "c4"), (6, "v6")]
    store.close()
    assert (data_dir / "hidden.ranges").is_file()

    reopened = open_store(enable_index_checkpoint=index_checkpoint)
    after = [(e.global_sequence, e.payload, e.entity_sequence, e.hash) for e in reopened.query(R.all())]
    assert after == before
    for receipt in hidden:
        with pytest.raises(ep.EventNotFound):
            reopened.get(receipt.event_id)
    assert _seqs(reopened.cursor(R.all()).poll_batch(100)) == [0, 3, 4, 6]
    gaps_cursor = reopened.cursor(R.all()).with_gap_config(ep.CursorGapConfig.enabled(8))
    gaps_cursor.poll_batch(100)
    assert [
        (g.expected_sequence, g.delivered_sequence, g.cancelled_ranges) for g in gaps_cursor.take_gaps()
    ] == [
        (1, 3, [(1, 3)]),
        (5, 6, [(5, 6)]),
    ]
    # the entity clock continues from the last visible event after reopen too
    nxt = reopened.append(coord("a"), "k", "v7", expected_sequence=3)
    assert nxt.global_sequence == 7
    assert nxt.entity_sequence == 3
    assert reopened.query(R.entity("a"))[-1].prev_hash == last.hash


def test_hidden_ranges_survive_reopen_without_and_then_with_index_checkpoint(open_store, coord):
    store = open_store(enable_index_checkpoint=False)
    _build_fenced_log(store, coord)
    store.close()
    again = open_store(enable_index_checkpoint=False)
    assert _payloads(again) == ["v0", "v3", "c4", "v6"]
    again.close()
    third = open_store()
    assert _payloads(third) == ["v0", "v3", "c4", "v6"]


_CRASH_INSIDE_FENCE = textwrap.dedent(
    """
    import os, signal, sys
    import eventpak as ep
    store = ep.Store.open(sys.argv[1], sync="always")
    store.append(("a", "s"), "k", "v0")
    store.append(("b", "s"), "k", "v1")
    with store.fence() as fence:
        fence.append(("a", "s"), "k", "fenced-a")
        fence.append_batch([(("b", "s"), "k", "fenced-b"), (("c", "s"), "k", "fenced-c")])
        store.sync()
        sys.stdout.write("inside\\n")
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.parametrize("index_checkpoint", [True, False], ids=["index-ckpt", "no-index-ckpt"])
def test_fence_left_open_by_a_crash_is_hidden_at_reopen(open_store, data_dir, coord, index_checkpoint):
    proc = subprocess.run(
        [sys.executable, "-c", _CRASH_INSIDE_FENCE, str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout == "inside\n", proc.stderr
    assert proc.returncode == -9, proc.stderr
    store = open_store(enable_index_checkpoint=index_checkpoint)
    assert _payloads(store) == ["v0", "v1"]
    assert store.query(R.entity("c")) == []
    assert _seqs(store.cursor(R.all()).poll_batch(10)) == [0, 1]
    receipt = store.append(coord("a", "s"), "k", "v-after", expected_sequence=1)
    assert receipt.entity_sequence == 1
    assert receipt.global_sequence >= 2
    assert _payloads(store) == ["v0", "v1", "v-after"]
    assert store.query(R.entity("a"))[-1].prev_hash == store.query(R.entity("a"))[0].hash
    # no fence is left open: fences and plain appends work
    with store.fence() as fence:
        fence.append(coord("c", "s"), "k", "c-visible")
    assert [e.payload for e in store.query(R.entity("c"))] == ["c-visible"]
    store.close()
    # and the crash-hidden events stay hidden after one more reopen
    again = open_store(enable_index_checkpoint=index_checkpoint)
    assert _payloads(again) == ["v0", "v1", "v-after", "c-visible"]


_CRASH_AFTER_FENCES = textwrap.dedent(
    """
    import os, signal, sys
    import eventpak as ep
    data_dir = sys.argv[1]
    with ep.Store.open(data_dir) as store:  # a clean close leaves an index checkpoint behind
        store.append(("a", "s"), "k", "v0")
    store = ep.Store.open(data_dir, sync="always")
    with store.fence() as fence:
        fence.append(("a", "s"), "k", "cancelled")
        fence.cancel()
    with store.fence() as fence:
        fence.append_batch([(("a", "s"), "k", "committed-a"), (("b", "s"), "k", "committed-b")])
    store.append(("a", "s"), "k", "v-last")
    sys.stdout.write("decided\\n")
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.parametrize("index_checkpoint", [True, False], ids=["index-ckpt", "no-index-ckpt"])
def test_fence_decisions_survive_a_crash(open_store, data_dir, index_checkpoint):
    proc = subprocess.run(
        [sys.executable, "-c", _CRASH_AFTER_FENCES, str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout == "decided\n", proc.stderr
    assert proc.returncode == -9, proc.stderr
    store = open_store(enable_index_checkpoint=index_checkpoint)
    events = store.query(R.all())
    assert [e.payload for e in events] == ["v0", "committed-a", "committed-b", "v-last"]
    assert [e.global_sequence for e in events] == [0, 2, 3, 4]
    assert [e.entity_sequence for e in store.query(R.entity("a"))] == [0, 1, 2]
    assert _seqs(store.cursor(R.all()).poll_batch(10)) == [0, 2, 3, 4]


# --- idempotency keys and fences -----------------------------------------------------------------


def test_idempotent_retry_inside_an_open_fence_writes_once(store, coord):
    with store.fence() as fence:
        first = fence.append(coord("a"), "k", "pay", idempotency_key="pay-1")
        retry = fence.append(coord("a"), "k", "pay", idempotency_key="pay-1")
        assert retry == first, "a retry with the same key and content returns the original receipt"
    assert _payloads(store) == ["pay"]
    assert store.append(coord("a"), "k", "pay", idempotency_key="pay-1") == first


def test_conflicting_idempotency_key_inside_an_open_fence_raises(store, coord):
    with store.fence() as fence:
        fence.append(coord("a"), "k", "pay", idempotency_key="pay-1")
        with pytest.raises(ep.IdempotencyConflict):
            fence.append(coord("a"), "k", "different", idempotency_key="pay-1")
    assert _payloads(store) == ["pay"]


def test_idempotency_key_of_a_committed_fence_is_honoured_afterwards(store, coord):
    with store.fence() as fence:
        first = fence.append(coord("a"), "k", "pay", idempotency_key="pay-1")
    assert store.append(coord("a"), "k", "pay", idempotency_key="pay-1") == first
    with pytest.raises(ep.IdempotencyConflict):
        store.append(coord("a"), "k", "other", idempotency_key="pay-1")
    assert _payloads(store) == ["pay"]


def test_idempotency_key_of_a_cancelled_fence_is_not_consumed(store, coord):
    with store.fence() as fence:
        hidden = fence.append(coord("a"), "k", "pay", idempotency_key="pay-1")
        fence.cancel()
    receipt = store.append(coord("a"), "k", "pay", idempotency_key="pay-1")
    assert receipt.event_id != hidden.event_id
    assert store.get(receipt.event_id).payload == "pay"
    assert _payloads(store) == ["pay"]


def test_committed_fence_after_a_cancelled_one_continues_the_entity_chain(store, coord):
    first = store.append(coord("a"), "k", 0)
    with store.fence() as fence:
        fence.append(coord("a"), "k", "hidden")
        fence.cancel()
    with store.fence() as fence:
        r1 = fence.append(coord("a"), "k", 1)
        r2 = fence.append(coord("a"), "k", 2)
    assert (r1.entity_sequence, r2.entity_sequence) == (1, 2)
    events = store.query(R.entity("a"))
    assert [e.payload for e in events] == [0, 1, 2]
    assert events[1].prev_hash == first.hash
    assert events[2].prev_hash == r1.hash


def test_a_fence_the_store_closed_under_says_cancelled_and_the_blocks_own_error_goes_on(
    data_dir, coord
) -> None:
    store = ep.Store.open(data_dir)
    with pytest.raises(ValueError, match="the block's own"), store.fence() as fence:
        fence.append(coord("a"), "Inside", 1)
        store.close()  # e.g. from a signal handler or another thread
        assert fence.state == "cancelled"
        raise ValueError("the block's own error")
    assert fence.state == "cancelled"
    store = ep.Store.open(data_dir)
    # A block that ends normally learns that it did not commit.
    with pytest.raises(ep.StoreClosed), store.fence() as fence:
        fence.append(coord("a"), "Inside", 2)
        store.close()
    assert fence.state == "cancelled"
    with ep.Store.open(data_dir) as reopened:
        assert reopened.query(ep.Region.all()) == []


def test_closing_inside_its_own_fence_block_does_not_wait_for_a_worker_blocked_on_that_fence(
    data_dir, coord
) -> None:
    # The worker's handler appends, so it waits for the fence; the close joins the worker.
    # Without the fence cancelled first, the two would wait on each other for fence_wait_ms.
    store = ep.Store.open(data_dir, fence_wait_ms=600_000)
    store.append(coord("in"), "Trigger", 0)
    handling = threading.Event()

    def handler(batch, store, witness):
        handling.set()
        store.append(coord("out"), "Handled", len(batch))

    store.cursor_worker(R.entity("in"), handler, ep.CursorWorkerConfig(batch_size=1, idle_sleep=0.001))
    outcome: list[object] = []

    def close_inside_the_fence() -> None:
        try:
            with store.fence() as fence:
                fence.append(coord("fenced"), "Inside", 1)
                assert handling.wait(timeout=30)
                store.close()
        except BaseException as e:  # the outcome is what the test checks
            outcome.append(e)
        outcome.append(fence.state)

    closer = threading.Thread(target=close_inside_the_fence, daemon=True)
    closer.start()
    closer.join(timeout=120)
    assert not closer.is_alive(), "close() waited for a worker blocked on the closer's own fence"
    assert isinstance(outcome[0], ep.StoreClosed)  # the block learns its fence did not commit
    assert outcome[1] == "cancelled"
    with ep.Store.open(data_dir) as reopened:
        assert [e.kind for e in reopened.query(R.all())] == ["Trigger", "Handled"]
