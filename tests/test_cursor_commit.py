"""One native call per checkpoint: ``cursor.resume(id)`` and ``cursor.commit(id)``, and a
cursor whose lock is never held across a wait."""

from __future__ import annotations

import threading
from pathlib import Path

import eventpak as ep
import pytest

REGION = ep.Region.entity("acct")


def _fill(store: ep.Store, n: int) -> None:
    store.append_batch([(("acct:1", "eu"), "deposit", {"i": i}) for i in range(n)])


def test_resume_without_a_checkpoint_stays_at_the_start(store: ep.Store) -> None:
    _fill(store, 3)
    cursor = store.cursor(REGION)
    assert cursor.resume("reader") is False
    assert (cursor.position, cursor.started) == (0, False)
    assert [e.global_sequence for e in cursor.poll_batch(10)] == [0, 1, 2]


def test_commit_then_resume_continues_after_the_position(open_store, data_dir: Path) -> None:
    store = open_store()
    _fill(store, 5)
    cursor = store.cursor(REGION)
    assert len(cursor.poll_batch(3)) == 3
    cursor.commit("reader")
    saved = ep.Cursor.load_checkpoint(data_dir, "reader")
    assert saved == ep.CursorCheckpoint(2, True, None, REGION.checkpoint_identity)
    store.close()
    reopened = open_store()
    resumed = reopened.cursor(REGION)
    assert resumed.resume("reader") is True
    assert (resumed.position, resumed.started) == (2, True)
    assert [e.global_sequence for e in resumed.poll_batch(10)] == [3, 4]


def test_commit_before_any_delivery_saves_an_unstarted_checkpoint(store: ep.Store, data_dir: Path) -> None:
    cursor = store.cursor(REGION)
    cursor.commit("reader")
    assert ep.Cursor.load_checkpoint(data_dir, "reader") == ep.CursorCheckpoint(
        0, False, None, REGION.checkpoint_identity
    )
    _fill(store, 1)
    again = store.cursor(REGION)
    assert again.resume("reader") is True
    assert [e.global_sequence for e in again.poll_batch(10)] == [0]  # sequence 0 is not skipped


def test_commit_makes_the_position_durable_first(open_store) -> None:
    store = open_store(sync="never")
    _fill(store, 4)
    assert store.stats()["durable_events"] < 4
    cursor = store.cursor(REGION)
    cursor.poll_batch(10)
    cursor.commit("reader")
    # A checkpoint never points past what survives a power loss.
    assert store.stats()["durable_events"] >= 4


def test_resume_refuses_a_checkpoint_of_another_region(store: ep.Store, data_dir: Path) -> None:
    _fill(store, 2)
    writer = store.cursor(REGION)
    writer.poll_batch(10)
    writer.commit("reader")
    other = store.cursor(ep.Region.all())
    with pytest.raises(ep.CursorCheckpointRegionMismatch) as mismatch:
        other.resume("reader")
    assert mismatch.value.stored == REGION.checkpoint_identity
    assert mismatch.value.expected == ep.Region.all().checkpoint_identity
    assert mismatch.value.path.endswith("reader.ckpt")
    assert (other.position, other.started) == (0, False)


def test_resume_reports_a_corrupt_checkpoint(store: ep.Store, data_dir: Path) -> None:
    _fill(store, 2)
    cursor = store.cursor(REGION)
    cursor.poll_batch(10)
    cursor.commit("reader")
    path = data_dir / "cursors" / "reader.ckpt"
    damaged = bytearray(path.read_bytes())
    damaged[-1] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with pytest.raises(ep.CursorCheckpointCorrupt):
        store.cursor(REGION).resume("reader")
    assert path.read_bytes() == bytes(damaged)  # a corrupt checkpoint is reported, never rewritten


@pytest.mark.parametrize("bad", ["", "../escape", "a/b", "x" * 201])
def test_resume_and_commit_refuse_bad_ids(store: ep.Store, data_dir: Path, bad: str) -> None:
    cursor = store.cursor(REGION)
    with pytest.raises(ep.InvalidCheckpointId):
        cursor.resume(bad)
    with pytest.raises(ep.InvalidCheckpointId):
        cursor.commit(bad)
    assert not (data_dir / "cursors").exists()


def test_commit_on_a_closed_store_raises_store_closed(store: ep.Store) -> None:
    cursor = store.cursor(REGION)
    store.close()
    with pytest.raises(ep.StoreClosed):
        cursor.commit("reader")


def test_getters_answer_while_another_thread_waits_in_pull_batch(store: ep.Store) -> None:
    cursor = store.cursor(REGION)
    waiting = threading.Thread(target=cursor.pull_batch, args=(10, 3600.0), daemon=True)
    waiting.start()
    answered = threading.Event()

    def read_getters() -> None:
        # If the wait held the cursor's lock, these would queue behind it for an hour.
        for _ in range(2_000):
            assert (cursor.position, cursor.started) == (0, False)
        answered.set()

    reader = threading.Thread(target=read_getters, daemon=True)
    reader.start()
    assert answered.wait(60), "cursor getters blocked behind a waiting pull_batch"
    assert waiting.is_alive()  # the wait was still going on the whole time
    cursor.interrupt()
    waiting.join(60)
    assert not waiting.is_alive()


def test_stop_wakes_an_idle_worker_that_waits_in_one_long_call(store: ep.Store) -> None:
    seen: list[int] = []
    delivered = threading.Event()

    def handler(batch: list[ep.Event], _store: ep.Store, _witness: object) -> None:
        seen.extend(e.global_sequence for e in batch)
        delivered.set()

    handle = store.cursor_worker(REGION, handler, ep.CursorWorkerConfig(checkpoint_id="idle"))
    _fill(store, 1)
    assert delivered.wait(30)
    # The worker now waits for the next commit; stop() must end that wait, not a timer.
    handle.stop_and_join(timeout=30)
    assert seen == [0]


@pytest.mark.parametrize("bad", [-1, 2**64])
def test_cursor_integer_arguments_are_checked_and_named(store: ep.Store, bad: int) -> None:
    cursor = store.cursor(REGION)
    for call, name in (
        (lambda: cursor.poll_batch(bad), "max"),
        (lambda: cursor.pull_batch(bad, 0.0), "max"),
        (lambda: cursor.seek(bad, True), "position"),
    ):
        with pytest.raises(ep.InvalidArgument) as refused:
            call()
        assert refused.value.argument == name and isinstance(refused.value, ValueError)
