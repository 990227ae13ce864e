"""Worker leases across processes: at most one live worker per checkpoint id, and standbys.

What is promised: without ``standby``, a second live worker on a checkpoint id (in this or any
other process sharing the data dir) is refused by ``store.cursor_worker`` with
``ep.CheckpointInUse``; with ``ep.CursorWorkerConfig(checkpoint_id=..., standby=True)`` the
handle waits (``handle.is_active`` is False, its handler is never called) and takes over from
the last checkpoint within one second of the active worker stopping or its process dying.
Delivery stays at-least-once: no event is lost, and only events after the last checkpoint may
be delivered twice.

The one-second bound is measured from the moment the death (``waitpid`` returned) or the stop
(``stop_and_join`` returned) was observed to the moment the standby's handler was entered with
its first batch (``time.monotonic`` is the system-wide monotonic clock on Linux).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest
from shared_helpers import SAFETY_NET_S, Child, Children, R, children_fixture, open_shared, wait_until

CHECKPOINT = "jobs"
BATCH = 10
TAKEOVER_S = 1.0  # the contract's bound


@pytest.fixture
def spawn() -> Iterator[Children]:
    yield from children_fixture()


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "data")


def append_jobs(store: ep.Store, start: int, count: int) -> None:
    store.append_batch([((f"job:{i % 3}", "main"), "job", i) for i in range(start, start + count)])


def child_worker(conn: Connection, path: str, checkpoint_id: str, standby: bool, hold_at: int) -> None:
    """Runs a durable worker on ``checkpoint_id``. Its handler reports each batch (the sequences
    and the monotonic time it was entered) and, on batch number ``hold_at``, reports
    ``holding`` and blocks until the worker is stopped. Orders: ``"active?"``, ``"stop"``
    (stop_and_join; reports when it returned and the position), ``"close"``."""
    store = open_shared(path)
    send_lock = threading.Lock()

    def send(tag: str, value: Any) -> None:
        with send_lock:
            conn.send((tag, value))

    release = threading.Event()
    batches = 0

    def handler(batch: list[ep.Event], _store: ep.Store, witness: ep.AtLeastOnce | None) -> None:
        nonlocal batches
        entered = time.monotonic()
        assert witness is not None and witness.checkpoint_id == checkpoint_id
        batches += 1
        send("batch", ([e.global_sequence for e in batch], entered))
        if batches == hold_at:
            send("holding", None)
            release.wait()

    config = ep.CursorWorkerConfig(batch_size=BATCH, checkpoint_id=checkpoint_id, standby=standby)
    try:
        handle = store.cursor_worker(R.all(), handler, config)
    except ep.CheckpointInUse as exc:
        send("in-use", (exc.checkpoint_id, exc.path, str(exc)))
        store.close()
        return
    send("started", handle.is_active)
    while (order := conn.recv()) != "close":
        if order == "active?":
            send("active", handle.is_active)
        elif order == "stop":
            handle.stop()
            release.set()
            handle.join(SAFETY_NET_S)
            send("stopped", (time.monotonic(), handle.position, handle.is_active))
    store.close()
    send("closed", None)


def batches_until(
    child: Child, last: int, got: list[tuple[list[int], float]] | None = None
) -> list[tuple[list[int], float]]:
    """The child's batches (after those in ``got``) until one ends at sequence ``last``."""
    got = list(got or [child.take("batch")])
    while got[-1][0][-1] < last:
        got.append(child.take("batch"))
    assert got[-1][0][-1] == last, f"delivered beyond {last}: {got[-1][0]}"
    return got


def close(child: Child) -> None:
    child.send("close")
    child.take("closed")
    child.join()


# --- refusals ----------------------------------------------------------------------------------


def test_a_second_worker_on_a_checkpoint_is_refused_in_the_same_process(path: str) -> None:
    store = open_shared(path)
    first = store.cursor_worker(R.all(), lambda *_: None, ep.CursorWorkerConfig(checkpoint_id=CHECKPOINT))
    with pytest.raises(ep.CheckpointInUse) as info:
        store.cursor_worker(R.all(), lambda *_: None, ep.CursorWorkerConfig(checkpoint_id=CHECKPOINT))
    assert (info.value.checkpoint_id, info.value.path) == (CHECKPOINT, path)
    other = store.cursor_worker(R.all(), lambda *_: None, ep.CursorWorkerConfig(checkpoint_id="other"))
    first.stop_and_join(SAFETY_NET_S)
    again = store.cursor_worker(R.all(), lambda *_: None, ep.CursorWorkerConfig(checkpoint_id=CHECKPOINT))
    for handle in (other, again):
        handle.stop_and_join(SAFETY_NET_S)
    store.close()


def test_a_second_worker_on_a_checkpoint_is_refused_across_processes(spawn: Children, path: str) -> None:
    store = open_shared(path)
    append_jobs(store, 0, 5)
    active = spawn(child_worker, path, CHECKPOINT, False, 0, name="active")
    active.take("started")  # (is_active may lag the worker thread's start)
    active.take("batch")
    active.send("active?")
    assert active.take("active") is True
    # refused here and in a third process; another checkpoint id is free
    with pytest.raises(ep.CheckpointInUse) as info:
        store.cursor_worker(R.all(), lambda *_: None, ep.CursorWorkerConfig(checkpoint_id=CHECKPOINT))
    assert (info.value.checkpoint_id, info.value.path) == (CHECKPOINT, path)
    assert "in use by a live worker" in str(info.value)
    refused = spawn(child_worker, path, CHECKPOINT, False, 0, name="refused")
    assert refused.take("in-use")[:2] == (CHECKPOINT, path)
    refused.join()
    other = store.cursor_worker(R.all(), lambda *_: None, ep.CursorWorkerConfig(checkpoint_id="other"))
    other.stop_and_join(SAFETY_NET_S)
    # once the active worker stopped, its checkpoint id is free
    active.send("stop")
    active.take("stopped")
    mine = store.cursor_worker(R.all(), lambda *_: None, ep.CursorWorkerConfig(checkpoint_id=CHECKPOINT))
    # ... and the other process is refused now
    second = spawn(child_worker, path, CHECKPOINT, False, 0, name="refused-again")
    second.take("in-use")
    second.join()
    mine.stop_and_join(SAFETY_NET_S)
    close(active)
    store.close()


def test_a_killed_worker_s_checkpoint_id_is_free_at_once(spawn: Children, path: str) -> None:
    store = open_shared(path)
    append_jobs(store, 0, 5)
    active = spawn(child_worker, path, CHECKPOINT, False, 1, name="active")
    active.take("holding")
    active.kill()
    got: list[int] = []
    done = threading.Event()

    def handler(batch: list[ep.Event], _store: ep.Store, _witness: Any) -> None:
        got.extend(e.global_sequence for e in batch)
        if got[-1] == 4:
            done.set()

    # not a standby: the dead holder's lease is gone as soon as its death was observed
    handle = store.cursor_worker(R.all(), handler, ep.CursorWorkerConfig(checkpoint_id=CHECKPOINT))
    assert done.wait(SAFETY_NET_S)
    handle.stop_and_join(SAFETY_NET_S)
    assert got == [0, 1, 2, 3, 4], "the held batch was not delivered again from the checkpoint"
    store.close()


# --- standbys ----------------------------------------------------------------------------------


def test_a_standby_in_the_same_process_takes_over_when_the_active_worker_stops(path: str) -> None:
    store = open_shared(path)
    append_jobs(store, 0, 30)
    seen: dict[str, list[int]] = {"a": [], "b": []}
    entered: list[float] = []

    def handler_for(name: str) -> Any:
        def handler(batch: list[ep.Event], _store: ep.Store, _witness: Any) -> None:
            if name == "b" and not seen["b"]:
                entered.append(time.monotonic())
            seen[name].extend(e.global_sequence for e in batch)

        return handler

    config = ep.CursorWorkerConfig(batch_size=BATCH, checkpoint_id=CHECKPOINT)
    a = store.cursor_worker(R.all(), handler_for("a"), config)
    wait_until(lambda: seen["a"][-1:] == [29], "the active worker to handle the backlog")
    b = store.cursor_worker(
        R.all(),
        handler_for("b"),
        ep.CursorWorkerConfig(batch_size=BATCH, checkpoint_id=CHECKPOINT, standby=True),
    )
    assert a.is_active and not b.is_active
    a.stop_and_join(SAFETY_NET_S)
    stopped = time.monotonic()
    assert not a.is_active
    append_jobs(store, 30, 5)
    wait_until(lambda: seen["b"][-1:] == [34], "the standby to handle new events")
    assert b.is_active
    assert entered[0] - stopped < TAKEOVER_S, (
        f"the standby took over {entered[0] - stopped:.3f} s after the stop"
    )
    assert seen["a"] == list(range(30)) and seen["b"] == list(range(30, 35))
    b.stop_and_join(SAFETY_NET_S)
    store.close()


def test_a_standby_takes_over_within_a_second_of_the_active_process_s_death(
    spawn: Children, path: str
) -> None:
    store = open_shared(path)
    append_jobs(store, 0, 100)
    active = spawn(child_worker, path, CHECKPOINT, False, 3, name="active")
    active.take("holding")  # batches 1 and 2 are checkpointed; batch 3 is in its handler
    standby = spawn(child_worker, path, CHECKPOINT, True, 0, name="standby")
    assert standby.take("started") is False
    standby.send("active?")
    assert standby.take("active") is False
    assert standby.drain("batch") == [], "the standby handled events while the active worker lived"
    saved = ep.Cursor.load_checkpoint(path, CHECKPOINT)
    assert saved is not None
    checkpoint = saved.position
    death = active.kill()
    first_seqs, entered = standby.take("batch")
    assert entered - death < TAKEOVER_S, f"the standby took over {entered - death:.3f} s after the death"
    assert first_seqs[0] == checkpoint + 1, "the standby did not resume right after the last checkpoint"
    taken = batches_until(standby, 99, [(first_seqs, entered)])
    append_jobs(store, 100, 15)  # new events wake the new active worker
    taken += batches_until(standby, 114)
    standby.send("active?")
    assert standby.take("active") is True
    standby.send("stop")
    _, position, is_active = standby.take("stopped")
    assert position == 114 and not is_active
    close(standby)

    by_active = [s for seqs, _ in active.drain("batch") for s in seqs]
    by_standby = [s for seqs, _ in taken for s in seqs]
    assert by_active == list(range(len(by_active))), "the active worker skipped events"
    assert by_standby == list(range(checkpoint + 1, 115)), "the standby skipped or repeated events"
    twice = set(by_active) & set(by_standby)
    assert all(s > checkpoint for s in twice), "an event before the last checkpoint was delivered again"
    assert set(by_active) | set(by_standby) == set(range(115)), "events were lost in the takeover"
    saved = ep.Cursor.load_checkpoint(path, CHECKPOINT)
    assert saved is not None and saved.position == 114
    store.close()


def test_a_standby_takes_over_within_a_second_of_the_active_worker_s_stop(spawn: Children, path: str) -> None:
    store = open_shared(path)
    append_jobs(store, 0, 50)
    active = spawn(child_worker, path, CHECKPOINT, False, 2, name="active")
    active.take("holding")
    standby = spawn(child_worker, path, CHECKPOINT, True, 0, name="standby")
    assert standby.take("started") is False
    active.send("stop")  # batch 2 finishes and is checkpointed, then the worker stops
    stopped, position, is_active = active.take("stopped")
    assert position == 2 * BATCH - 1 and not is_active
    first_seqs, entered = standby.take("batch")
    assert entered - stopped < TAKEOVER_S, f"the standby took over {entered - stopped:.3f} s after the stop"
    assert first_seqs[0] == position + 1
    taken = batches_until(standby, 49, [(first_seqs, entered)])
    assert [s for seqs, _ in taken for s in seqs] == list(range(position + 1, 50))
    assert [s for seqs, _ in active.drain("batch") for s in seqs] == list(range(position + 1))
    for child in (active, standby):
        close(child)
    store.close()


def test_one_of_two_standbys_takes_over_and_the_other_waits_its_turn(spawn: Children, path: str) -> None:
    store = open_shared(path)
    append_jobs(store, 0, 40)
    active = spawn(child_worker, path, CHECKPOINT, False, 2, name="active")
    active.take("holding")
    standbys = [spawn(child_worker, path, CHECKPOINT, True, 0, name=f"standby-{i}") for i in range(2)]
    for s in standbys:
        assert s.take("started") is False
    death = active.kill()
    # whichever standby delivers first is the new active worker
    ready = wait([s.conn for s in standbys], SAFETY_NET_S)
    assert ready, "no standby took over"
    first = next(s for s in standbys if s.conn in ready)
    second = standbys[1 - standbys.index(first)]
    first_seqs, entered = first.take("batch")
    assert entered - death < TAKEOVER_S, f"a standby took over {entered - death:.3f} s after the death"
    assert first_seqs[0] == BATCH, "the takeover did not resume after the last checkpoint"
    batches_until(first, 39, [(first_seqs, entered)])
    second.send("active?")
    assert second.take("active") is False
    assert second.drain("batch") == [], "both standbys handled events"
    # the new active worker stops: the other standby takes over in turn
    first.send("stop")
    stopped, position, _ = first.take("stopped")
    assert position == 39
    append_jobs(store, 40, 5)
    seqs, entered = second.take("batch")
    assert seqs[0] == 40
    assert entered - stopped < TAKEOVER_S, f"the second standby took over {entered - stopped:.3f} s late"
    batches_until(second, 44, [(seqs, entered)])
    for child in (first, second):
        close(child)
    store.close()


def test_a_standby_stopped_while_waiting_never_handles_anything(spawn: Children, path: str) -> None:
    store = open_shared(path)
    append_jobs(store, 0, 20)
    active = spawn(child_worker, path, CHECKPOINT, False, 1, name="active")
    active.take("holding")
    standby = spawn(child_worker, path, CHECKPOINT, True, 0, name="standby")
    assert standby.take("started") is False
    standby.send("stop")
    _, position, is_active = standby.take("stopped")
    assert position is None and not is_active
    assert standby.drain("batch") == []
    close(standby)
    active.kill()
    store.close()
