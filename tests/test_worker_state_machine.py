"""The durable worker state machine: CONTINUE commits, STOP commits and stops,
STOP_WITH_ROLLBACK rewinds without persisting, a handler exception restarts from the last
committed position while the restart policy (once / never / bounded window) allows it."""

from __future__ import annotations

import threading
import time
from collections import Counter

import eventpak as ep
import pytest

R = ep.Region
A = ep.CursorWorkerAction


class Failure(Exception):
    """A deliberate handler failure."""


def _config(**overrides):
    options = {"batch_size": 1, "idle_sleep": 0.001, "restart": ep.RestartPolicy.once()}
    options.update(overrides)
    return ep.CursorWorkerConfig(**options)


def _checkpoint(data_dir, checkpoint_id):
    saved = ep.Cursor.load_checkpoint(data_dir, checkpoint_id)
    return None if saved is None else (saved.position, saved.started)


def _wait_past(deadline: float) -> None:
    """Lets the monotonic clock pass ``deadline`` (a restart window elapsing is the behaviour
    under test here; nothing else waits on it)."""
    pause = threading.Event()
    while (remaining := deadline - time.monotonic()) > 0:
        pause.wait(remaining)


def test_durable_worker_state_machine_preserves_last_committed_checkpoint(open_store, data_dir, coord):
    checkpoint_id = "batpak-test-cursor-state-machine"
    region = R.entity("entity:cursor-state-machine")
    store = open_store(enable_index_checkpoint=False)
    for i in range(5):
        store.append(coord("entity:cursor-state-machine", "scope:test"), "k", {"i": i})
    counts: Counter[int] = Counter()
    unexpected: list[int] = []

    def phase_one(batch, _store, _witness):
        seq = batch[0].global_sequence
        counts[seq] += 1
        if seq == 0:
            return A.CONTINUE
        if seq == 1:
            return A.STOP_WITH_ROLLBACK
        unexpected.append(seq)
        return A.STOP_WITH_ROLLBACK

    store.cursor_worker(region, phase_one, _config(checkpoint_id=checkpoint_id)).join(timeout=10)
    assert unexpected == [], "phase one must only reach sequences 0 and 1"
    assert _checkpoint(data_dir, checkpoint_id) == (0, True)

    raised_once = threading.Event()

    def phase_two(batch, _store, _witness):
        seq = batch[0].global_sequence
        counts[seq] += 1
        if seq in (1, 2):
            return A.CONTINUE
        if seq == 3:
            if not raised_once.is_set():
                raised_once.set()
                raise Failure("intentional failure after checkpointed progress")
            return A.CONTINUE
        if seq == 4:
            return A.STOP
        unexpected.append(seq)
        return A.STOP_WITH_ROLLBACK

    store.cursor_worker(region, phase_two, _config(checkpoint_id=checkpoint_id)).join(timeout=10)
    assert unexpected == [], "phase two must only reach the rolled-back tail 1..4"
    assert _checkpoint(data_dir, checkpoint_id) == (4, True)
    assert dict(counts) == {0: 1, 1: 2, 2: 1, 3: 2, 4: 1}, (
        "only the rolled-back or failed batches may come again, never a committed one"
    )


def test_stop_with_rollback_keeps_the_last_continue(open_store, data_dir, coord):
    store = open_store()
    for i in range(6):
        store.append(coord("a"), "k", i)
    batches = []

    def handler(batch, _store, _witness):
        batches.append([e.global_sequence for e in batch])
        return A.CONTINUE if len(batches) == 1 else A.STOP_WITH_ROLLBACK

    store.cursor_worker(R.all(), handler, _config(batch_size=3, checkpoint_id="rb")).join(timeout=10)
    assert batches == [[0, 1, 2], [3, 4, 5]]
    assert _checkpoint(data_dir, "rb") == (2, True)
    again = []

    def resume(batch, _store, _witness):
        again.append([e.global_sequence for e in batch])
        return A.STOP

    store.cursor_worker(R.all(), resume, _config(batch_size=3, checkpoint_id="rb")).join(timeout=10)
    assert again == [[3, 4, 5]]


def test_exception_restart_redelivers_the_failed_batch(store, coord):
    for i in range(6):
        store.append(coord("a"), "k", i)
    batches = []

    def handler(batch, _store, _witness):
        seqs = [e.global_sequence for e in batch]
        batches.append(seqs)
        if seqs == [2, 3] and batches.count(seqs) == 1:
            raise Failure("first delivery of [2, 3] fails")
        return A.STOP if seqs[-1] == 5 else A.CONTINUE

    store.cursor_worker(R.all(), handler, _config(batch_size=2)).join(timeout=10)
    assert batches == [[0, 1], [2, 3], [2, 3], [4, 5]]


def test_exception_restart_of_a_durable_worker_rewinds_to_its_checkpoint(open_store, data_dir, coord):
    store = open_store()
    for i in range(4):
        store.append(coord("a"), "k", i)
    seen = []
    checkpoints = []

    def handler(batch, _store, _witness):
        seq = batch[0].global_sequence
        seen.append(seq)
        checkpoints.append(_checkpoint(data_dir, "restarting"))
        if seq == 2 and seen.count(2) == 1:
            raise Failure("once")
        return A.STOP if seq == 3 else A.CONTINUE

    store.cursor_worker(R.all(), handler, _config(checkpoint_id="restarting")).join(timeout=10)
    assert seen == [0, 1, 2, 2, 3]
    # the failed delivery of 2 committed nothing: its re-delivery sees the same checkpoint
    assert checkpoints == [None, (0, True), (1, True), (1, True), (2, True)]
    assert _checkpoint(data_dir, "restarting") == (3, True)


def test_handler_failure_beyond_once_raises_restart_budget_exhausted(open_store, data_dir, coord):
    store = open_store()
    for i in range(6):
        store.append(coord("a"), "k", i)
    seen = []
    raised = []

    def handler(batch, _store, _witness):
        seq = batch[0].global_sequence
        seen.append(seq)
        # failures far apart: once() is one restart in the worker's whole life
        if (seq == 0 and seen.count(0) == 1) or seq == 4:
            raised.append(Failure(f"failure at {seq}"))
            raise raised[-1]
        return A.CONTINUE

    handle = store.cursor_worker(R.all(), handler, _config(checkpoint_id="once"))
    with pytest.raises(ep.RestartBudgetExhausted) as info:
        handle.join(timeout=10)
    assert seen == [0, 0, 1, 2, 3, 4]
    assert info.value.__cause__ is raised[-1]
    assert len(raised) == 2
    assert isinstance(info.value, ep.EventpakError)
    assert not handle.is_alive()
    assert _checkpoint(data_dir, "once") == (3, True)


def test_never_policy_stops_at_the_first_failure(open_store, data_dir, coord):
    store = open_store()
    for i in range(3):
        store.append(coord("a"), "k", i)
    seen = []
    raised = []

    def handler(batch, _store, _witness):
        seq = batch[0].global_sequence
        seen.append(seq)
        if seq == 1:
            raised.append(Failure("no second chance"))
            raise raised[-1]
        return A.CONTINUE

    handle = store.cursor_worker(
        R.all(), handler, _config(restart=ep.RestartPolicy.never(), checkpoint_id="never")
    )
    with pytest.raises(ep.RestartBudgetExhausted) as info:
        handle.join(timeout=10)
    assert seen == [0, 1], "never() must not re-deliver"
    assert info.value.__cause__ is raised[0]
    assert _checkpoint(data_dir, "never") == (0, True)
    with pytest.raises(ep.RestartBudgetExhausted):
        handle.stop_and_join(timeout=10)


def test_bounded_policy_allows_n_restarts_within_its_window(store, coord):
    store.append(coord("a"), "k", 0)
    raised = []

    def handler(batch, _store, _witness):
        raised.append(Failure(f"failure {len(raised) + 1}"))
        raise raised[-1]

    handle = store.cursor_worker(R.all(), handler, _config(restart=ep.RestartPolicy.bounded(2, 600_000)))
    with pytest.raises(ep.RestartBudgetExhausted) as info:
        handle.join(timeout=10)
    assert len(raised) == 3, "bounded(2, ...) = 2 restarts, so 3 deliveries"
    assert info.value.__cause__ is raised[2]
    assert str(info.value.__cause__) == "failure 3"


def test_bounded_policy_budget_is_renewed_when_the_window_elapses(store, coord):
    store.append(coord("a"), "k", 0)
    within_ms = 1
    calls = []
    last_failure = [time.monotonic()]

    def handler(batch, _store, _witness):
        calls.append(batch[0].global_sequence)
        if len(calls) <= 3:
            # each failure comes after the previous window has elapsed
            _wait_past(last_failure[0] + 2 * within_ms / 1000)
            last_failure[0] = time.monotonic()
            raise Failure(f"failure {len(calls)}")
        return A.STOP

    handle = store.cursor_worker(R.all(), handler, _config(restart=ep.RestartPolicy.bounded(1, within_ms)))
    handle.join(timeout=10)  # three failures, each with a fresh budget of one restart
    assert calls == [0, 0, 0, 0]


def test_bounded_policy_counts_failures_of_different_events_inside_one_window(store, coord):
    for i in range(4):
        store.append(coord("a"), "k", i)
    seen = []

    def handler(batch, _store, _witness):
        seq = batch[0].global_sequence
        seen.append(seq)
        if (seq == 0 and seen.count(0) == 1) or seq == 3:
            raise Failure(f"failure at {seq}")
        return A.CONTINUE

    handle = store.cursor_worker(R.all(), handler, _config(restart=ep.RestartPolicy.bounded(1, 600_000)))
    with pytest.raises(ep.RestartBudgetExhausted) as info:
        handle.join(timeout=10)
    assert seen == [0, 0, 1, 2, 3]
    assert str(info.value.__cause__) == "failure at 3"


def test_restart_policy_constructors():
    assert ep.RestartPolicy.once() == ep.RestartPolicy.once()
    assert ep.RestartPolicy.never() != ep.RestartPolicy.once()
    assert ep.RestartPolicy.bounded(3, 100) == ep.RestartPolicy.bounded(3, 100)
    assert ep.CursorWorkerConfig().restart == ep.RestartPolicy.bounded(5, 60_000)
    default = ep.CursorWorkerConfig()
    assert (default.batch_size, default.idle_sleep, default.checkpoint_id) == (64, 0.01, None)
    assert default.gap_observation == ep.CursorGapConfig.disabled()


def test_handler_exception_stops_a_non_durable_worker_too(store, coord):
    store.append(coord("a"), "k", 0)
    raised = []

    def handler(batch, _store, _witness):
        raised.append(ValueError("bad event"))
        raise raised[-1]

    handle = store.cursor_worker(R.all(), handler, _config())  # once(): one restart
    with pytest.raises(ep.RestartBudgetExhausted) as info:
        handle.join(timeout=10)
    assert len(raised) == 2
    assert info.value.__cause__ is raised[1]
