"""Recovery at open (torn tails, corruption, crash-rotation leftovers), the data-dir lock and
closed stores."""

from __future__ import annotations

import random
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import eventpak as ep
import pytest

R = ep.Region
N = 6


def _payloads(store):
    return [e.payload for e in store.query(R.all())]


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _append_bytes(path: Path, data: bytes) -> None:
    with path.open("ab") as fh:
        fh.write(data)


def _truncate(path: Path, size: int) -> None:
    with path.open("r+b") as fh:
        fh.truncate(size)


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


@pytest.fixture
def closed_log(open_store, data_dir, segment_paths, read_frames):
    """N single events appended with sync="always" then closed; returns (segment, frames, receipts)."""
    store = open_store(sync="always")
    receipts = [store.append((f"e{i % 2}", "s"), "k", i) for i in range(N)]
    store.close()
    (seg,) = segment_paths(data_dir)
    frames = read_frames(seg)
    assert [f.global_sequence for f in frames] == list(range(N))
    return seg, frames, receipts


def _assert_recovered_prefix(store, receipts, count):
    events = store.query(R.all())
    assert [e.payload for e in events] == list(range(count))
    assert [e.event_id for e in events] == [r.event_id for r in receipts[:count]]
    assert [e.hash for e in events] == [r.hash for r in receipts[:count]]


def _assert_appends_continue(store, count):
    events = store.query(R.all())
    entity = "e0"
    mine = [e for e in events if e.entity == entity]
    receipt = store.append((entity, "s"), "k", "new")
    assert receipt.global_sequence == count
    assert receipt.entity_sequence == len(mine)
    assert store.get(receipt.event_id).prev_hash == (mine[-1].hash if mine else bytes(32))
    assert _payloads(store)[-1] == "new"


# --- torn tails --------------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", ["+1", "+4", "+8", "+23", "+24", "+25", "end-1"])
def test_torn_last_frame_is_truncated(open_store, closed_log, cut):
    seg, frames, receipts = closed_log
    last = frames[-1]
    size = last.end - 1 if cut == "end-1" else last.offset + int(cut)
    _truncate(seg, size)

    store = open_store()
    stats = store.stats()
    assert stats["events"] == N - 1
    assert stats["torn_tail_bytes"] == size - last.offset
    assert stats["torn_tail_bytes"] > 0
    assert stats["torn_tail_segment"] is not None
    assert Path(stats["torn_tail_segment"]).name == seg.name
    assert seg.stat().st_size == frames[-2].end
    _assert_recovered_prefix(store, receipts, N - 1)
    with pytest.raises(ep.EventNotFound):
        store.get(receipts[-1].event_id)
    _assert_appends_continue(store, N - 1)


def test_torn_tail_recovery_persists_after_reopen(open_store, closed_log):
    seg, frames, _receipts = closed_log
    _truncate(seg, frames[-1].offset + 10)
    store = open_store()
    _assert_appends_continue(store, N - 1)
    store.close()
    store = open_store()
    assert store.stats()["torn_tail_bytes"] == 0
    assert store.stats()["events"] == N
    assert _payloads(store) == [*range(N - 1), "new"]


def test_log_cut_at_a_frame_boundary_is_not_torn(open_store, closed_log):
    seg, frames, receipts = closed_log
    _truncate(seg, frames[-1].offset)
    store = open_store()
    assert store.stats()["events"] == N - 1
    assert store.stats()["torn_tail_bytes"] == 0
    _assert_recovered_prefix(store, receipts, N - 1)
    _assert_appends_continue(store, N - 1)


def test_crc_bad_last_frame_is_torn(open_store, closed_log):
    seg, frames, receipts = closed_log
    last = frames[-1]
    _flip(seg, last.end - 1)  # inside the body: the frame keeps its full length
    store = open_store()
    assert store.stats()["events"] == N - 1
    assert store.stats()["torn_tail_bytes"] == last.end - last.offset
    assert seg.stat().st_size == last.offset
    _assert_recovered_prefix(store, receipts, N - 1)
    _assert_appends_continue(store, N - 1)


def test_crc_bad_last_frame_followed_by_zeros_is_torn(open_store, closed_log):
    seg, frames, _receipts = closed_log
    last = frames[-1]
    _flip(seg, last.offset + 30)
    _append_bytes(seg, bytes(100))
    store = open_store()
    assert store.stats()["events"] == N - 1
    assert store.stats()["torn_tail_bytes"] == last.end - last.offset + 100
    assert seg.stat().st_size == last.offset
    _assert_appends_continue(store, N - 1)


@pytest.mark.parametrize("zeros", [1, 23, 24, 100, 5000])
def test_zero_bytes_after_the_last_frame_are_torn(open_store, closed_log, zeros):
    seg, _frames, receipts = closed_log
    size = seg.stat().st_size
    _append_bytes(seg, bytes(zeros))
    store = open_store()
    assert store.stats()["events"] == N
    assert store.stats()["torn_tail_bytes"] == zeros
    assert seg.stat().st_size == size
    _assert_recovered_prefix(store, receipts, N)
    _assert_appends_continue(store, N)


def test_garbage_short_frame_after_the_last_frame_is_torn(open_store, closed_log):
    seg, _frames, receipts = closed_log
    size = seg.stat().st_size
    rng = random.Random(7)
    # a frame header claiming a 1000-byte body, followed by far fewer bytes: a short last frame
    garbage = struct.pack("<I", 1000) + bytes(rng.randrange(256) for _ in range(60))
    _append_bytes(seg, garbage)
    store = open_store()
    assert store.stats()["events"] == N
    assert store.stats()["torn_tail_bytes"] == len(garbage)
    assert seg.stat().st_size == size
    _assert_recovered_prefix(store, receipts, N)
    _assert_appends_continue(store, N)


@pytest.fixture
def closed_batch_log(open_store, data_dir, segment_paths, read_frames):
    """Two single events, then a batch of three as the last write; closed."""
    store = open_store(sync="always")
    singles = [store.append(("e0", "s"), "k", i) for i in range(2)]
    batch = store.append_batch([(("e0", "s"), "k", 2), (("e1", "s"), "k", 3), (("e0", "s"), "k", 4)])
    store.close()
    (seg,) = segment_paths(data_dir)
    frames = read_frames(seg)
    assert len(frames) == 5
    assert [(f.batch_index, f.batch_len) for f in frames[2:]] == [(0, 3), (1, 3), (2, 3)]
    return seg, frames, singles + batch


@pytest.mark.parametrize(
    "cut",
    ["at-2nd", "in-2nd-header", "in-2nd-body", "at-3rd", "in-3rd-body", "3rd-end-1"],
)
def test_torn_batch_is_dropped_entirely(open_store, closed_batch_log, cut):
    seg, frames, receipts = closed_batch_log
    first, second, third = frames[2:]
    size = {
        "at-2nd": second.offset,
        "in-2nd-header": second.offset + 10,
        "in-2nd-body": second.offset + 30,
        "at-3rd": third.offset,
        "in-3rd-body": third.offset + 30,
        "3rd-end-1": third.end - 1,
    }[cut]
    _truncate(seg, size)
    store = open_store()
    assert store.stats()["events"] == 2
    assert store.stats()["torn_tail_bytes"] == size - first.offset
    assert seg.stat().st_size == first.offset
    _assert_recovered_prefix(store, receipts, 2)
    for r in receipts[2:]:
        with pytest.raises(ep.EventNotFound):
            store.get(r.event_id)
    _assert_appends_continue(store, 2)


def test_crc_bad_final_frame_of_a_batch_drops_the_batch(open_store, closed_batch_log):
    seg, frames, _receipts = closed_batch_log
    _flip(seg, frames[-1].end - 1)
    store = open_store()
    assert store.stats()["events"] == 2
    assert seg.stat().st_size == frames[2].offset
    _assert_appends_continue(store, 2)


# --- corruption fails closed -------------------------------------------------------------------------


def _assert_fails_closed(open_store, data_dir, dir_bytes, seg=None, frame=None, **options):
    before = dir_bytes(data_dir)
    with pytest.raises(ep.CorruptSegment) as info:
        open_store(**options)
    err = info.value
    assert isinstance(err, ep.EventpakError)
    assert isinstance(err.path, str)
    assert isinstance(err.offset, int)
    assert isinstance(err.reason, str)
    assert err.reason
    if seg is not None:
        assert Path(err.path).resolve() == seg.resolve()
    if frame is not None:
        assert frame.offset <= err.offset < frame.end
    assert dir_bytes(data_dir) == before
    # the failed open released the lock and still refuses, changing nothing
    with pytest.raises(ep.CorruptSegment):
        open_store(**options)
    assert dir_bytes(data_dir) == before
    return err


# Where a flipped byte lands in a committed frame: the body, the global sequence (both under the
# frame CRC), or the CRC field itself.
FLIP_AT = {"body": 30, "sequence": 8, "crc": 4}


@pytest.mark.parametrize("index", [0, 2, N - 2])
@pytest.mark.parametrize("where", FLIP_AT)
def test_flipped_byte_in_a_committed_frame_fails_closed_without_the_checkpoint(
    open_store, data_dir, dir_bytes, closed_log, index, where
):
    seg, frames, _ = closed_log
    frame = frames[index]
    _flip(seg, frame.offset + FLIP_AT[where])
    _assert_fails_closed(open_store, data_dir, dir_bytes, seg, frame, enable_index_checkpoint=False)


@pytest.mark.parametrize("index", [0, 2, N - 2])
@pytest.mark.parametrize("where", FLIP_AT)
def test_flipped_byte_in_a_covered_frame_fails_closed_under_the_checkpoint(
    open_store, data_dir, dir_bytes, closed_log, index, where
):
    """A loaded index checkpoint spares rebuilding the index, not checking the frames: open
    checks every covered frame's CRC, so damage anywhere in the covered log sends it to a full
    scan, which refuses it (an intact frame follows), touching nothing, as without the
    checkpoint."""
    seg, frames, _ = closed_log
    assert (data_dir / "index.ckpt").exists()
    frame = frames[index]
    _flip(seg, frame.offset + FLIP_AT[where])
    _assert_fails_closed(open_store, data_dir, dir_bytes, seg, frame)
    _assert_fails_closed(open_store, data_dir, dir_bytes, seg, frame, enable_index_checkpoint=False)


@pytest.mark.parametrize("where", FLIP_AT)
def test_flipped_byte_in_the_last_covered_frame_fails_closed_under_the_checkpoint(
    open_store, data_dir, dir_bytes, closed_log, where
):
    """The last covered frame of a segment, followed by an uncovered one: its damage sends open
    to a full scan, which refuses it (an intact frame follows it)."""
    seg, frames, _ = closed_log
    checkpoint = data_dir / "index.ckpt"
    covering_the_first_n = checkpoint.read_bytes()
    store = open_store()
    store.append(("e0", "s"), "k", "uncovered")
    store.close()
    checkpoint.write_bytes(covering_the_first_n)  # as if that session ended without its checkpoint
    frame = frames[-1]  # the last covered frame; the uncovered one follows it
    _flip(seg, frame.offset + FLIP_AT[where])
    _assert_fails_closed(open_store, data_dir, dir_bytes, seg, frame)


def test_crc_bad_last_frame_followed_by_non_zero_bytes_fails_closed(
    open_store, data_dir, dir_bytes, closed_log
):
    seg, frames, _ = closed_log
    _flip(seg, frames[-1].offset + 30)
    _append_bytes(seg, b"\x01" * 40)
    _assert_fails_closed(open_store, data_dir, dir_bytes, seg)


def test_flipped_segment_header_fails_closed(open_store, data_dir, dir_bytes, closed_log):
    seg, _, _ = closed_log
    _flip(seg, 20)  # inside segment_id / base_sequence, covered by the header CRC
    _assert_fails_closed(open_store, data_dir, dir_bytes, seg)


@pytest.fixture
def rotated_log(open_store, data_dir, segment_paths):
    store = open_store(segment_max_bytes=4096, sync="always")
    for i in range(60):
        store.append((f"e{i % 2}", "s"), "k", {"i": i, "pad": "x" * 40})
    store.close()
    segs = segment_paths(data_dir)
    assert len(segs) >= 3
    return segs


# The last frame of a segment before the newest is the last frame the checkpoint covers there,
# which open reads: its damage fails closed with the checkpoint as without it.
CHECKPOINT = pytest.mark.parametrize(
    "enable_index_checkpoint", [True, False], ids=["with-index-ckpt", "without-index-ckpt"]
)


@CHECKPOINT
def test_damage_in_a_non_last_segment_fails_closed(
    open_store, data_dir, dir_bytes, read_frames, rotated_log, enable_index_checkpoint
):
    seg = rotated_log[1]
    frame = read_frames(seg)[-1]  # the last frame of a segment that is not the last one
    _flip(seg, frame.end - 1)
    _assert_fails_closed(
        open_store, data_dir, dir_bytes, seg, frame, enable_index_checkpoint=enable_index_checkpoint
    )


def test_short_non_last_segment_fails_closed(open_store, data_dir, dir_bytes, read_frames, rotated_log):
    seg = rotated_log[0]
    _truncate(seg, read_frames(seg)[-1].end - 5)
    _assert_fails_closed(open_store, data_dir, dir_bytes, seg)


def test_zero_padding_in_a_non_last_segment_fails_closed(open_store, data_dir, dir_bytes, rotated_log):
    seg = rotated_log[0]
    _append_bytes(seg, bytes(64))
    _assert_fails_closed(open_store, data_dir, dir_bytes, seg)


@pytest.mark.parametrize("segment_id", [1, 5])
def test_junk_newest_segment_fails_closed(open_store, data_dir, dir_bytes, closed_log, segment_id):
    junk = data_dir / "segments" / f"{segment_id:020d}.seg"
    _write(junk, random.Random(segment_id).randbytes(500))
    _assert_fails_closed(open_store, data_dir, dir_bytes, junk)


def test_junk_older_segment_fails_closed(open_store, data_dir, dir_bytes, rotated_log):
    seg = rotated_log[0]
    _write(seg, random.Random(3).randbytes(seg.stat().st_size))
    _assert_fails_closed(open_store, data_dir, dir_bytes, seg)


def test_empty_older_segment_fails_closed(open_store, data_dir, dir_bytes, rotated_log):
    seg = rotated_log[1]
    _write(seg, b"")
    _assert_fails_closed(open_store, data_dir, dir_bytes, seg)


# --- leftovers of a crash while rotating ---------------------------------------------------------------


def _header_prefix(segment_id: int, base_sequence: int, length: int) -> bytes:
    header = b"EVPKSEG\0" + struct.pack("<IIQQ", 1, 0, segment_id, base_sequence)
    return header[:length]


@pytest.mark.parametrize("length", [0, 1, 8, 24, 39])
def test_newest_segment_empty_or_with_short_header_is_removed(open_store, data_dir, closed_log, length):
    seg, _frames, receipts = closed_log
    newest = data_dir / "segments" / f"{int(seg.stem) + 1:020d}.seg"
    _write(newest, _header_prefix(int(seg.stem) + 1, N, length))
    store = open_store()
    removed = store.stats()["removed_segments"]
    assert len(removed) == 1
    assert Path(removed[0]).name == newest.name
    assert not newest.exists()
    assert store.stats()["events"] == N
    _assert_recovered_prefix(store, receipts, N)
    _assert_appends_continue(store, N)
    store.close()
    store = open_store()
    assert store.stats()["removed_segments"] == []
    assert store.stats()["events"] == N + 1


def test_newest_empty_segment_after_rotation_is_removed(open_store, data_dir, segment_paths, rotated_log):
    last_id = int(rotated_log[-1].stem)
    newest = data_dir / "segments" / f"{last_id + 1:020d}.seg"
    _write(newest, b"")
    store = open_store(segment_max_bytes=4096)
    assert [Path(p).name for p in store.stats()["removed_segments"]] == [newest.name]
    assert [e.payload["i"] for e in store.query(R.all())] == list(range(60))
    receipt = store.append(("e0", "s"), "k", {"i": 60})
    assert receipt.global_sequence == 60


# --- crash without close ---------------------------------------------------------------------------------

CRASH_SCRIPT = """
import os, sys
import eventpak as ep
path, mode = sys.argv[1], sys.argv[2]
store = ep.Store.open(path, sync=mode)
for i in range(20):
    receipt = store.append(("e%d" % (i % 3), "s"), "k", i)
    if mode == "always":
        assert receipt.durable
if mode == "batch":
    store.sync()
sys.stdout.write("appended\\n")
sys.stdout.flush()
os._exit(0)  # no close: no index checkpoint, no clean shutdown
"""


@pytest.mark.parametrize("mode", ["always", "batch"])
def test_durable_appends_survive_a_crash(open_store, data_dir, mode):
    result = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(data_dir), mode],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "appended\n"
    store = open_store()
    assert _payloads(store) == list(range(20))
    last: dict[str, bytes] = {}
    for e in store.query(R.all()):
        assert e.prev_hash == last.get(e.entity, bytes(32))
        last[e.entity] = e.hash
    assert store.append(("e0", "s"), "k", 20).global_sequence == 20


# --- the data-dir lock -------------------------------------------------------------------------------


def test_second_open_in_the_same_process_raises_store_locked(open_store, data_dir):
    open_store()
    path = str(data_dir)
    with pytest.raises(ep.StoreLocked) as info:
        ep.Store.open(path)
    assert info.value.path == path
    assert path in str(info.value)
    assert isinstance(info.value, ep.EventpakError)


def test_store_locked_carries_the_path_as_given(open_store, data_dir, tmp_path, monkeypatch):
    open_store()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ep.StoreLocked) as info:
        ep.Store.open("data")
    assert info.value.path == "data"
    with pytest.raises(ep.StoreLocked) as info:
        ep.Store.open(Path("data"))
    assert info.value.path == "data"


def test_second_open_does_not_disturb_the_owner(open_store, data_dir):
    store = open_store()
    store.append(("a", "s"), "k", 1)
    with pytest.raises(ep.StoreLocked):
        ep.Store.open(data_dir)
    assert store.append(("a", "s"), "k", 2).global_sequence == 1
    assert _payloads(store) == [1, 2]


LOCK_SCRIPT = """
import sys
import eventpak as ep
try:
    ep.Store.open(sys.argv[1]).close()
except ep.StoreLocked as exc:
    sys.stdout.write(exc.path)
    sys.exit(3)
sys.exit(0)
"""


def _run_child(script, *args):
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120)


def test_second_process_gets_store_locked(open_store, data_dir):
    open_store()
    path = str(data_dir)
    result = _run_child(LOCK_SCRIPT, path)
    assert result.returncode == 3, result.stderr
    assert result.stdout == path
    uncaught = _run_child("import sys, eventpak as ep; ep.Store.open(sys.argv[1])", path)
    assert uncaught.returncode != 0
    assert "StoreLocked" in uncaught.stderr
    assert path in uncaught.stderr


def test_open_works_again_after_close(open_store, data_dir):
    store = open_store()
    store.append(("a", "s"), "k", 1)
    store.close()
    result = _run_child(LOCK_SCRIPT, str(data_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    store = open_store()
    assert _payloads(store) == [1]


# --- closed stores --------------------------------------------------------------------------------------

CLOSED_CALLS = {
    "append": lambda s: s.append(("a", "s"), "k", 1),
    "append_batch": lambda s: s.append_batch([(("a", "s"), "k", 1)]),
    "append_batch_empty": lambda s: s.append_batch([]),
    "get": lambda s: s.get(uuid.uuid4()),
    "query": lambda s: s.query(R.all()),
    "walk_ancestors": lambda s: s.walk_ancestors(uuid.uuid4()),
    "sync": lambda s: s.sync(),
    "stats": lambda s: s.stats(),
}


@pytest.mark.parametrize("call", CLOSED_CALLS.values(), ids=CLOSED_CALLS.keys())
def test_every_method_of_a_closed_store_raises_store_closed(open_store, call):
    store = open_store()
    store.append(("a", "s"), "k", 0)
    store.close()
    with pytest.raises(ep.StoreClosed) as info:
        call(store)
    assert isinstance(info.value, ep.EventpakError)


def test_close_twice_is_fine(open_store):
    store = open_store()
    assert store.closed is False
    store.close()
    assert store.closed is True
    store.close()
    assert store.closed is True


def test_context_manager_closes_the_store(data_dir):
    with ep.Store.open(data_dir) as store:
        assert not store.closed
        store.append(("a", "s"), "k", 1)
    assert store.closed
    with pytest.raises(ep.StoreClosed):
        store.append(("a", "s"), "k", 2)
    with ep.Store.open(data_dir) as again:
        assert _payloads(again) == [1]


def test_context_manager_closes_on_exception(data_dir):
    with pytest.raises(RuntimeError), ep.Store.open(data_dir) as store:
        raise RuntimeError("boom")
    assert store.closed
    ep.Store.open(data_dir).close()  # the lock was released


def test_store_config_opens_a_store(data_dir):
    with ep.Store.open(ep.StoreConfig(data_dir, sync="always")) as store:
        assert store.stats()["sync"] == "always"
        assert store.append(("a", "s"), "k", 1).durable


def test_sync_makes_appends_durable(open_store):
    store = open_store(sync="never")
    store.append(("a", "s"), "k", 1)
    store.sync()
    assert store.stats()["durable_events"] == 1


def test_temp_files_of_killed_writers_are_removed_by_an_open_that_has_the_dir_to_itself(
    open_store, data_dir: Path
) -> None:
    store = open_store()
    store.append(("e", "s"), "k", 1)
    cursor = store.cursor(ep.Region.all())
    cursor.poll_batch(10)
    cursor.commit("c")
    store.close()
    left = [data_dir / ".index.ckpt.4242.tmp", data_dir / "cursors" / ".c.ckpt.4242.tmp"]

    def leave() -> None:
        for path in left:
            path.write_bytes(b"half written")

    leave()
    open_store(read_only=True).close()
    assert all(p.exists() for p in left)  # a read-only open writes nothing
    first = open_store(shared=True)  # the first of a shared session: alone
    assert not any(p.exists() for p in left)
    leave()  # now they may be another process's, mid-write
    join = "import eventpak as ep, sys; ep.Store.open(sys.argv[1], shared=True).close()"
    joined = subprocess.run(
        [sys.executable, "-c", join, str(data_dir)], capture_output=True, text=True, timeout=60, check=False
    )
    assert joined.returncode == 0, joined.stderr
    assert all(p.exists() for p in left)  # a process joining the session leaves them
    first.close()
    reopened = open_store()  # exclusive
    assert not any(p.exists() for p in left)
    assert [e.payload for e in reopened.query(ep.Region.all())] == [1]
    assert reopened.verify().ok
