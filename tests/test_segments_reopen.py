"""Segment rotation and reopen, with and without the index checkpoint."""

from __future__ import annotations

import re
import shutil
import struct

import eventpak as ep
import pytest

R = ep.Region
SEG = 4096
ZERO_HASH = bytes(32)
REGIONS = [
    R.all(),
    R.entity("acct"),
    R.entity("acct:1"),
    R.scope("us"),
    R.all().with_kind("deposit"),
    R.all().with_kind_prefix("with"),
    R.entity("acct").with_clock_range(3, 9),
]


def _fill(store, count, start=0):
    for i in range(start, start + count):
        entity = ("acct:1", "acct:2", "acct:2:x", "other")[i % 4]
        scope = "eu" if i % 3 else "us"
        kind = "deposit" if i % 2 else "withdraw"
        store.append((entity, scope), kind, {"i": i, "pad": "x" * 40})


def _snapshot(store):
    return {
        region.checkpoint_identity: [
            (e.event_id, e.global_sequence, e.entity_sequence, e.hash, e.prev_hash, e.payload)
            for e in store.query(region)
        ]
        for region in REGIONS
    }


def _assert_appends_continue(store, expected_count):
    """A new append continues the global sequence and the entity's clock and chain."""
    last = store.query(R.entity("acct:1"))
    last = [e for e in last if e.entity == "acct:1"][-1]
    receipt = store.append(("acct:1", "eu"), "deposit", "after-reopen")
    assert receipt.global_sequence == expected_count
    assert receipt.entity_sequence == last.entity_sequence + 1
    assert store.get(receipt.event_id).prev_hash == last.hash
    assert store.stats()["events"] == expected_count + 1


@pytest.fixture
def rotated(open_store, data_dir):
    """A closed data dir holding 120 events spread over several small segments, and its snapshot."""
    store = open_store(segment_max_bytes=SEG)
    _fill(store, 120)
    snapshot = _snapshot(store)
    store.close()
    return snapshot


def test_small_segments_rotate(open_store, data_dir, segment_paths):
    store = open_store(segment_max_bytes=SEG)
    _fill(store, 120)
    files = segment_paths(data_dir)
    assert len(files) > 1
    assert store.stats()["segments"] == len(files)
    for f in files:
        assert re.fullmatch(r"\d{20}\.seg", f.name)
        assert f.stat().st_size <= SEG
    ids = [int(f.stem) for f in files]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert store.stats()["bytes"] == sum(f.stat().st_size for f in files)


def test_sealing_a_segment_makes_its_events_durable_in_every_sync_mode(
    open_store, data_dir, segment_paths, read_frames
):
    # A segment is fsynced when it is sealed, so with sync="never" too every event before
    # the active segment is durable, and stats() says so.
    store = open_store(sync="never", segment_max_bytes=4096)
    receipts = [store.append(("e", "s"), "k", {"i": i, "pad": "x" * 100}) for i in range(100)]
    paths = segment_paths(data_dir)
    assert len(paths) > 3
    first_active = read_frames(paths[-1])[0].global_sequence
    assert first_active > 0
    durable = store.stats()["durable_events"]
    assert first_active <= durable <= len(receipts)
    late = store.append(("e", "s"), "k", "after")  # in the active segment: not yet
    assert not late.durable and store.stats()["durable_events"] >= first_active


def test_segment_headers_and_frames_follow_the_format(open_store, data_dir, segment_paths, read_frames):
    store = open_store(segment_max_bytes=SEG)
    _fill(store, 120)
    store.close()
    sequences = []
    for f in segment_paths(data_dir):
        data = f.read_bytes()
        magic, version, _flags, segment_id, base_sequence = struct.unpack_from("<8sIIQQ", data, 0)
        assert magic == b"EVPKSEG\0"
        assert version >= 1
        assert segment_id == int(f.stem)
        frames = read_frames(f)
        assert frames
        assert base_sequence == frames[0].global_sequence
        sequences.extend(fr.global_sequence for fr in frames)
    assert sequences == list(range(120))


def test_reads_across_segments(open_store):
    store = open_store(segment_max_bytes=SEG)
    _fill(store, 120)
    assert store.stats()["segments"] > 1
    events = store.query(R.all())
    assert [e.payload["i"] for e in events] == list(range(120))
    for e in events:
        assert store.get(e.event_id) == e
    chain = store.walk_ancestors(events[-1].event_id)
    assert len(chain) == 30
    assert [e.entity_sequence for e in chain] == list(range(29, -1, -1))


def test_reopen_with_index_checkpoint(open_store, data_dir, rotated):
    store = open_store(segment_max_bytes=SEG)
    stats = store.stats()
    assert stats["index_checkpoint"] == "loaded"
    assert stats["scanned_events"] == 0
    assert stats["events"] == 120
    assert stats["segments"] > 1
    assert _snapshot(store) == rotated
    _assert_appends_continue(store, 120)


def test_reopen_with_index_checkpoint_disabled(open_store, rotated):
    store = open_store(segment_max_bytes=SEG, enable_index_checkpoint=False)
    stats = store.stats()
    assert stats["index_checkpoint"] == "disabled"
    assert stats["scanned_events"] == 120
    assert _snapshot(store) == rotated
    _assert_appends_continue(store, 120)


def test_reopen_with_index_checkpoint_missing(open_store, data_dir, rotated):
    (data_dir / "index.ckpt").unlink()
    store = open_store(segment_max_bytes=SEG)
    stats = store.stats()
    assert stats["index_checkpoint"] == "missing"
    assert stats["scanned_events"] == 120
    assert _snapshot(store) == rotated
    _assert_appends_continue(store, 120)


@pytest.mark.parametrize("damage", ["flip-middle", "flip-first", "flip-last", "truncate", "garbage", "empty"])
def test_reopen_with_index_checkpoint_corrupt(open_store, data_dir, rotated, damage):
    path = data_dir / "index.ckpt"
    data = bytearray(path.read_bytes())
    if damage == "flip-middle":
        data[len(data) // 2] ^= 0xFF
    elif damage == "flip-first":
        data[0] ^= 0xFF
    elif damage == "flip-last":
        data[-1] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "garbage":
        data = bytearray(b"not a checkpoint at all" * 10)
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    store = open_store(segment_max_bytes=SEG)
    stats = store.stats()
    assert stats["index_checkpoint"] == "corrupt"
    assert stats["scanned_events"] == 120
    assert _snapshot(store) == rotated
    _assert_appends_continue(store, 120)


def test_reopen_with_a_checkpoint_of_an_older_prefix(open_store, data_dir, tmp_path):
    store = open_store(segment_max_bytes=SEG)
    _fill(store, 50)
    store.close()
    shutil.copy(data_dir / "index.ckpt", tmp_path / "old.ckpt")

    store = open_store(segment_max_bytes=SEG)
    _fill(store, 70, start=50)
    snapshot = _snapshot(store)
    store.close()
    shutil.copy(tmp_path / "old.ckpt", data_dir / "index.ckpt")

    store = open_store(segment_max_bytes=SEG)
    stats = store.stats()
    assert stats["index_checkpoint"] == "loaded"
    assert stats["scanned_events"] == 70  # only the tail after the checkpoint is scanned
    assert stats["events"] == 120
    assert _snapshot(store) == snapshot
    _assert_appends_continue(store, 120)


def _last_frame_offset(seg):
    data = seg.read_bytes()
    offset = 40
    last = offset
    while offset < len(data):
        last = offset
        offset += 24 + struct.unpack_from("<I", data, offset)[0]
    return last


def test_checkpoint_covering_more_than_the_log_is_stale(open_store, data_dir, segment_paths):
    store = open_store(sync="always")
    _fill(store, 5)
    sixth = store.append(("other", "eu"), "k", "sixth")
    store.close()
    # the checkpoint covers 6 events; cut the log back to 5 at a frame boundary
    seg = segment_paths(data_dir)[-1]
    with seg.open("r+b") as fh:
        fh.truncate(_last_frame_offset(seg))

    store = open_store()
    stats = store.stats()
    assert stats["index_checkpoint"] == "stale"
    assert stats["events"] == 5
    assert [e.payload["i"] for e in store.query(R.all())] == list(range(5))
    with pytest.raises(ep.EventNotFound):
        store.get(sixth.event_id)
    receipt = store.append(("other", "eu"), "k", "new")
    assert (receipt.global_sequence, receipt.entity_sequence) == (5, 1)


def test_checkpoint_of_a_replaced_tail_is_stale(open_store, data_dir, tmp_path, segment_paths):
    store = open_store(sync="always")
    _fill(store, 6)
    store.close()
    shutil.copy(data_dir / "index.ckpt", tmp_path / "six.ckpt")
    seg = segment_paths(data_dir)[-1]
    with seg.open("r+b") as fh:
        fh.truncate(_last_frame_offset(seg))
    # five events survive; write two different events in place of the lost sixth
    store = open_store()
    store.append(("new", "eu"), "created", "a")
    store.append(("acct:2", "us"), "created", "b")
    truth = _snapshot(store)
    store.close()
    shutil.copy(tmp_path / "six.ckpt", data_dir / "index.ckpt")

    store = open_store()
    assert store.stats()["index_checkpoint"] == "stale"
    assert store.stats()["events"] == 7
    assert _snapshot(store) == truth
    events = store.query(R.all())
    assert [e.payload for e in events[5:]] == ["a", "b"]
    assert events[6].entity_sequence == 1  # acct:2 lost its event 5, so only event 1 precedes it
    assert events[6].prev_hash == events[1].hash


def test_reopen_many_times_keeps_everything(open_store, data_dir):
    expected = 0
    for round_ in range(4):
        store = open_store(segment_max_bytes=SEG, enable_index_checkpoint=round_ % 2 == 0)
        assert store.stats()["events"] == expected
        _fill(store, 25, start=expected)
        expected += 25
        events = store.query(R.all())
        assert [e.payload["i"] for e in events] == list(range(expected))
        store.close()
    store = open_store(segment_max_bytes=SEG)
    last_hash: dict[str, bytes] = {}
    next_clock: dict[str, int] = {}
    for e in store.query(R.all()):
        assert e.prev_hash == last_hash.get(e.entity, ZERO_HASH)
        assert e.entity_sequence == next_clock.get(e.entity, 0)
        last_hash[e.entity] = e.hash
        next_clock[e.entity] = e.entity_sequence + 1


def test_reopen_with_a_different_segment_size_keeps_everything(open_store, rotated):
    store = open_store()  # default (large) segment size
    assert _snapshot(store) == rotated
    _assert_appends_continue(store, 120)


def test_read_only_store_reads_but_refuses_appends(open_store, rotated):
    store = open_store(read_only=True)
    assert _snapshot(store) == rotated
    with pytest.raises(ep.ReadOnlyStore):
        store.append(("acct:1", "eu"), "deposit", 1)
    with pytest.raises(ep.ReadOnlyStore):
        store.append_batch([(("acct:1", "eu"), "deposit", 1)])
    assert store.stats()["events"] == 120


def test_sync_on_a_read_only_store_has_nothing_to_do(open_store, rotated, data_dir):
    def files() -> dict[str, bytes]:
        return {
            str(p.relative_to(data_dir)): p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file()
        }

    before = files()
    store = open_store(read_only=True)
    assert store.sync() is None  # it appends nothing, so nothing of its own awaits an fsync
    assert files() == before
    store.close()
    with pytest.raises(ep.StoreClosed):
        store.sync()
