"""Tracking records: ``append_batch(items, tracking=ep.Tracking(name, position))`` records a
consumer's position atomically with its output. It costs no global sequence, a position at
or below the recorded one raises ``ep.TrackingConflict`` and writes nothing, a batch of no
items records the position alone, and the record survives reopen (from the index checkpoint
and by a full scan) and crashes: it is there with its batch, or not at all."""

from __future__ import annotations

import os
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest
from shared_helpers import Children, children_fixture, open_shared

R = ep.Region


@pytest.fixture
def spawn() -> Any:
    yield from children_fixture()


def _out(n: int) -> tuple[tuple[str, str], str, int]:
    return (("out", "s"), "derived", n)


def test_a_tracking_record_commits_with_its_batch_and_takes_no_sequence(store: ep.Store) -> None:
    assert store.tracking_position("upstream") is None
    receipts = store.append_batch([_out(0), _out(1)], tracking=ep.Tracking("upstream", 10))
    assert [r.global_sequence for r in receipts] == [0, 1]
    assert store.tracking_position("upstream") == 10
    assert store.append(("out", "s"), "derived", 2).global_sequence == 2  # no sequence was taken
    single = store.append(("out", "s"), "derived", 3, tracking=ep.Tracking("upstream", 11))
    assert single.global_sequence == 3 and store.tracking_position("upstream") == 11
    assert store.stats()["events"] == 4 and store.tracking_position("other") is None


def test_positions_must_move_forward(store: ep.Store) -> None:
    store.append_batch([_out(0)], tracking=ep.Tracking("upstream", 5))
    for stale in (5, 4, 0):
        with pytest.raises(ep.TrackingConflict) as conflict:
            store.append_batch([_out(1)], tracking=ep.Tracking("upstream", stale))
        refused = conflict.value
        assert (refused.name, refused.position, refused.recorded) == ("upstream", stale, 5)
        with pytest.raises(ep.TrackingConflict):
            store.append_batch([], tracking=ep.Tracking("upstream", stale))
    assert store.stats()["events"] == 1 and store.tracking_position("upstream") == 5
    # Names are independent.
    store.append_batch([], tracking=ep.Tracking("other", 0))
    assert (store.tracking_position("upstream"), store.tracking_position("other")) == (5, 0)


def test_an_empty_batch_records_only_the_position(store: ep.Store) -> None:
    assert store.append_batch([], tracking=ep.Tracking("upstream", 1)) == []
    assert store.append_batch([], tracking=ep.Tracking("upstream", 2)) == []
    assert store.tracking_position("upstream") == 2
    assert store.stats()["events"] == 0 and store.head() is None
    assert store.append_batch([]) == []
    assert store.verify().ok


@pytest.mark.parametrize("checkpoint", [True, False], ids=["index-checkpoint", "full-scan"])
def test_tracking_survives_reopen(open_store: Any, data_dir: Path, checkpoint: bool) -> None:
    store = open_store(segment_max_bytes=4096)
    for n in range(60):  # several segments; tracking records between and after events
        items = [_out(n)] if n % 3 else []
        store.append_batch(items, tracking=ep.Tracking(f"up{n % 2}", n))
    events = store.stats()["events"]
    store.close()
    if not checkpoint:
        (data_dir / "index.ckpt").unlink()
    again = open_store()
    assert again.stats()["segments"] > 1 and again.stats()["events"] == events
    assert again.stats()["index_checkpoint"] == ("loaded" if checkpoint else "missing")
    assert (again.tracking_position("up0"), again.tracking_position("up1")) == (58, 59)
    with pytest.raises(ep.TrackingConflict):
        again.append_batch([], tracking=ep.Tracking("up1", 59))
    assert again.verify().ok
    again.append_batch([_out(99)], tracking=ep.Tracking("up1", 60))
    assert again.tracking_position("up1") == 60


# The second batch ends with a tracking frame of 24 + 34 + len("upstream") = 66 bytes.
@pytest.mark.parametrize("cut", [1, 66, 66 + 30], ids=["into-tracking", "whole-tracking", "into-event"])
def test_a_torn_batch_takes_its_tracking_record_with_it(open_store: Any, data_dir: Path, cut: int) -> None:
    store = open_store()
    store.append_batch([_out(0), _out(1)], tracking=ep.Tracking("upstream", 1))
    store.append_batch([_out(2), _out(3)], tracking=ep.Tracking("upstream", 2))
    store.close()
    segment = sorted((data_dir / "segments").glob("*.seg"))[-1]
    with open(segment, "r+b") as f:
        f.truncate(segment.stat().st_size - cut)
    store = open_store()
    assert store.stats()["torn_tail_bytes"] > 0
    assert [e.payload for e in store.query(R.all())] == [0, 1]
    assert store.tracking_position("upstream") == 1
    assert store.verify().ok
    store.append_batch([_out(2)], tracking=ep.Tracking("upstream", 2))
    assert store.tracking_position("upstream") == 2


def test_a_keyed_batch_already_committed_returns_its_receipts_before_tracking(store: ep.Store) -> None:
    items = [ep.AppendRequest(("out", "s"), "derived", n, idempotency_key=f"in-{n}") for n in range(2)]
    original = store.append_batch(items, tracking=ep.Tracking("upstream", 7))
    assert store.append_batch(items, tracking=ep.Tracking("upstream", 7)) == original
    assert store.stats()["events"] == 2 and store.tracking_position("upstream") == 7


def test_a_failed_condition_records_no_tracking(store: ep.Store) -> None:
    store.append(("x", "s"), "k", 0, tags=("t",))
    condition = ep.AppendCondition(R.all().with_tags(["t"]))
    with pytest.raises(ep.AppendConditionFailed):
        store.append_batch([_out(1)], condition=condition, tracking=ep.Tracking("upstream", 1))
    with pytest.raises(ep.AppendConditionFailed):
        store.append_batch([], condition=condition, tracking=ep.Tracking("upstream", 1))
    assert store.tracking_position("upstream") is None and store.stats()["events"] == 1


def test_consume_transform_produce_is_exactly_once(store: ep.Store) -> None:
    for n in range(20):
        store.append(("in", "s"), "order", n)

    def step(limit: int) -> int:
        """One step of a consumer: the inputs after its position, doubled, with the position."""
        position = store.tracking_position("doubler")
        inputs = store.query(R.entity("in"), after=position, limit=limit)
        if not inputs:
            return 0
        outputs = [(("out", "s"), "doubled", e.payload * 2) for e in inputs if e.payload % 3]
        tracking = ep.Tracking("doubler", inputs[-1].global_sequence)
        store.append_batch(outputs, tracking=tracking)
        # A consumer that lost its place and retries the same step is refused.
        with pytest.raises(ep.TrackingConflict):
            store.append_batch(outputs, tracking=tracking)
        return len(inputs)

    while step(limit=3):
        pass
    doubled = [e.payload for e in store.query(R.entity("out"))]
    assert doubled == [n * 2 for n in range(20) if n % 3]
    assert store.tracking_position("doubler") == 19


def test_tracking_arguments_are_checked(store: ep.Store) -> None:
    for name in ("", "a\nb", "x" * 256):
        with pytest.raises(ep.InvalidArgument) as refused:
            ep.Tracking(name, 1)
        assert refused.value.argument == "tracking name"
    with pytest.raises(ep.InvalidArgument):
        ep.Tracking("up", -1)
    with pytest.raises(TypeError):
        ep.Tracking(3, 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"tracking must be an ep\.Tracking"):
        store.append_batch([], tracking=("up", 1))  # type: ignore[arg-type]
    assert ep.Tracking("é x|=", 0).name == "é x|="
    assert repr(ep.Tracking("up", 3)) == 'Tracking("up", 3)'


def test_a_read_only_store_reads_but_never_records_tracking(open_store: Any, data_dir: Path) -> None:
    store = open_store()
    store.append_batch([], tracking=ep.Tracking("up", 3))
    store.close()
    reader = open_store(read_only=True)
    assert reader.tracking_position("up") == 3
    with pytest.raises(ep.ReadOnlyStore):
        reader.append_batch([], tracking=ep.Tracking("up", 4))


def test_tracking_waits_for_another_thread_s_fence_and_refuses_its_own(store: ep.Store) -> None:
    with store.fence() as fence:
        fence.append(("x", "s"), "k", 0)
        with pytest.raises(ep.FenceActive):
            store.append_batch([], tracking=ep.Tracking("up", 1))
    store.append_batch([], tracking=ep.Tracking("up", 1))
    assert store.tracking_position("up") == 1


def child_track(conn: Connection, path: str) -> None:
    """Records tracking positions on order, and reports what it sees of the others'."""
    store = open_shared(path)
    conn.send(("ready", os.getpid()))
    while (order := conn.recv()) != "stop":
        what, position = order
        try:
            if what == "record":
                store.append_batch([], tracking=ep.Tracking("shared", position))
            elif what == "record-with-event":
                store.append_batch([_out(position)], tracking=ep.Tracking("shared", position))
            conn.send(("ok", store.tracking_position("shared")))
        except ep.TrackingConflict as conflict:
            conn.send(("ok", ("conflict", conflict.recorded)))
    store.close()
    conn.send(("done", None))


def test_processes_sharing_a_data_dir_see_each_other_s_tracking_records(
    spawn: Children, tmp_path: Path
) -> None:
    path = str(tmp_path / "shared")
    with open_shared(path) as mine:
        a, b = spawn(child_track, path, name="track-a"), spawn(child_track, path, name="track-b")
        a.recv("ready"), b.recv("ready")
        a.send(("record", 1))
        assert a.recv("ok") == 1
        assert mine.tracking_position("shared") == 1  # a record alone, after no event
        b.send(("record", 1))
        assert b.recv("ok") == ("conflict", 1)
        b.send(("record-with-event", 2))
        assert b.recv("ok") == 2
        a.send(("record", 3))
        assert a.recv("ok") == 3
        mine.append_batch([], tracking=ep.Tracking("shared", 4))
        b.send(("peek", 0))
        assert b.recv("ok") == 4
        a.send(("record", 4))
        assert a.recv("ok") == ("conflict", 4)
        for child in (a, b):
            child.send("stop")
            child.recv("done")
            child.join()
        assert mine.stats()["events"] == 1 and mine.verify().ok
    with ep.Store.open(path) as store:
        assert store.tracking_position("shared") == 4
