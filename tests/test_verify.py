"""``store.verify()`` and ``eventpak verify DIR``: the full integrity check, against real files.

Opening a store checks every frame's CRC, sequence and id (under a loaded index checkpoint too),
but no open re-hashes an event; every read checks its frame's CRC and that it holds the sequence
the index expects. So damage that keeps a frame's CRC valid (a payload byte changed and the CRC
recomputed: a forgery) is served by reads, and damage done while a store is open is found when
that event is read. ``verify()`` re-reads every frame of every segment,
re-hashes every event and compares everything with the index and the side files: these tests
damage one thing each and check that it is reported exactly where it is, and that a healthy
store (fences, causal links, payload versions, idempotency keys, several segments) is ``ok``.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import eventpak as ep
import pytest
from checksums import crc32c
from conftest import dir_bytes, segment_paths

R = ep.Region
SEGMENT_MAX = 4096
SEGMENT_HEADER_LEN = 40
FRAME_HEADER_LEN = 24
FRAME_CRC_COVERS_FROM = 8
BODY_FIXED_LEN = 139
BODY_FLAG_PAYLOAD_VERSION = 4
SEAL_RECORD_LEN = 32


# --- frames on disk -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegFrame:
    """One frame of a segment file: where it is, its sequence, and where its payload lies."""

    offset: int
    length: int
    sequence: int
    payload_offset: int
    payload_len: int

    @property
    def end(self) -> int:
        return self.offset + self.length


def parse_frames(path: Path) -> list[SegFrame]:
    """Every frame of an intact segment file (docs/format.md: frame header, then the body's fixed
    part, then entity, scope, kind, idempotency key, [payload version], payload)."""
    data = path.read_bytes()
    frames = []
    at = SEGMENT_HEADER_LEN
    while at < len(data):
        body_len, crc, seq = struct.unpack_from("<IIQ", data, at)
        end = at + FRAME_HEADER_LEN + body_len
        assert crc32c(data[at + FRAME_CRC_COVERS_FROM : end]) == crc, f"frame at {at} of {path}"
        body = at + FRAME_HEADER_LEN
        flags = data[body + 32]
        entity_len, scope_len, kind_len, key_len, payload_len = struct.unpack_from("<HHBBI", data, body + 129)
        version_len = 4 if flags & BODY_FLAG_PAYLOAD_VERSION else 0
        payload_at = body + BODY_FIXED_LEN + entity_len + scope_len + kind_len + key_len + version_len
        assert payload_at + payload_len == end, f"frame at {at} of {path}"
        frames.append(SegFrame(at, end - at, seq, payload_at, payload_len))
        at = end
    return frames


def write_at(path: Path, offset: int, data: bytes) -> None:
    """Overwrites bytes in place (same file, same length)."""
    with path.open("r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def flip_byte(path: Path, offset: int, mask: int = 0x5A) -> None:
    data = path.read_bytes()
    write_at(path, offset, bytes([data[offset] ^ mask]))


def rewrite_frame(path: Path, frame: SegFrame, edit: Callable[[bytearray], None]) -> None:
    """Edits a frame's bytes in place (same length) and recomputes its CRC: a frame that every
    CRC check accepts."""
    data = bytearray(path.read_bytes()[frame.offset : frame.end])
    edit(data)
    struct.pack_into("<I", data, 4, crc32c(bytes(data[FRAME_CRC_COVERS_FROM:])))
    write_at(path, frame.offset, bytes(data))


def forge_payload(path: Path, frame: SegFrame) -> None:
    """Changes the last payload byte (an ASCII letter of a msgpack string, so the payload still
    decodes) and recomputes the frame CRC."""
    at = frame.payload_offset + frame.payload_len - 1 - frame.offset

    def edit(data: bytearray) -> None:
        data[at] ^= 0x01

    rewrite_frame(path, frame, edit)


def remove_bytes(path: Path, start: int, end: int) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:start] + data[end:])


def truncate(path: Path, size: int) -> None:
    with path.open("r+b") as fh:
        fh.truncate(size)


def same_file(a: str | Path, b: str | Path) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def test_the_crc32c_helper_is_the_engines(data_dir: Path) -> None:
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    with ep.Store.open(data_dir) as store:
        store.append(("a", "s"), "k", "x")
    (seg,) = segment_paths(data_dir)
    assert len(parse_frames(seg)) == 1  # parse_frames checks every CRC with crc32c()


# --- a small log: several sealed segments, a checkpoint, and an uncovered tail --------------------


def _payload(i: int) -> str:
    return f"payload-{i:04d}-" + "x" * 24  # one length for every event: frames can be swapped


def _open(data_dir: Path, **options: object) -> ep.Store:
    return ep.Store.open(data_dir, segment_max_bytes=SEGMENT_MAX, **options)  # type: ignore[arg-type]


@dataclass
class Log:
    data_dir: Path
    receipts: list[ep.AppendReceipt]  # by global sequence
    covered: int  # events the index checkpoint covers
    segments: list[Path]

    def frames(self, i: int) -> list[SegFrame]:
        return parse_frames(self.segments[i])

    def receipt(self, frame: SegFrame) -> ep.AppendReceipt:
        return self.receipts[frame.sequence]

    def sealed_middle(self) -> tuple[Path, list[SegFrame]]:
        """The segment in the middle: sealed, with sealed segments before and after it."""
        return self.segments[1], self.frames(1)


TAIL = 3


@pytest.fixture
def log(data_dir: Path) -> Log:
    """A closed log over at least three segments whose index checkpoint covers all but the final
    TAIL events: those were appended by a later session that ended before writing its checkpoint
    (its checkpoint is put back to the first session's)."""
    receipts = []
    with _open(data_dir) as store:
        while len(segment_paths(data_dir)) < 3 or len(parse_frames(segment_paths(data_dir)[-1])) < 3:
            i = len(receipts)
            receipts.append(store.append((f"e{i % 3}", "s"), "k", _payload(i)))
    checkpoint = (data_dir / "index.ckpt").read_bytes()
    covered = len(receipts)
    with _open(data_dir) as store:
        for i in range(covered, covered + TAIL):
            receipts.append(store.append((f"e{i % 3}", "s"), "k", _payload(i)))
    (data_dir / "index.ckpt").write_bytes(checkpoint)
    segments = segment_paths(data_dir)
    newest = parse_frames(segments[-1])
    assert [f.sequence for f in newest[-TAIL:]] == list(range(covered, covered + TAIL))
    assert len(newest) > TAIL + 1  # the newest segment holds covered frames, then the tail
    return Log(data_dir, receipts, covered, segments)


def _assert_loaded(store: ep.Store, log: Log) -> None:
    stats = store.stats()
    assert (stats["index_checkpoint"], stats["scanned_events"]) == ("loaded", TAIL)
    assert stats["events"] == len(log.receipts)


def _problems_at(report: ep.VerifyReport, path: Path) -> list[ep.VerifyProblem]:
    return [p for p in report.problems if same_file(p.path, path)]


def test_a_damaged_frame_inside_a_batch_is_the_only_problem_reported(data_dir: Path) -> None:
    """A frame in the middle of a batch, in a sealed segment, damaged while the store is open
    (open checks every frame's CRC, so damage from before refuses the open): verify reports
    that frame once and checks the rest of the segment (the index says where the next frame
    starts) without blaming its healthy neighbours, batch or chain."""
    with _open(data_dir) as store:
        while len(segment_paths(data_dir)) < 2:
            store.append_batch([((f"e{i}", "s"), "k", _payload(i)) for i in range(3)])
    sealed = segment_paths(data_dir)[0]
    frames = parse_frames(sealed)
    middle = next(f for f in frames[3:] if f.sequence % 3 == 1)  # batches of 3 from sequence 0
    with _open(data_dir, read_only=True) as store:
        assert store.stats()["index_checkpoint"] == "loaded"
        flip_byte(sealed, middle.offset + middle.length - 1)
        report = store.verify()
    assert [(same_file(p.path, sealed), p.sequence, p.reason) for p in report.problems] == [
        (True, middle.sequence, "frame CRC mismatch")
    ]


# --- 1. forgeries: CRC-valid, served by reads, caught by verify -----------------------------------

FORGERY_SITES = {
    # a covered frame of the newest segment (open checks its CRC, which the forger recomputed)
    "covered": lambda log: (log.segments[-1], log.frames(len(log.segments) - 1)[0], True),
    # the last covered frame of the newest segment
    "covered-and-read-at-open": lambda log: (
        log.segments[-1],
        log.frames(len(log.segments) - 1)[-TAIL - 1],
        True,
    ),
    # a frame in the middle of a sealed segment, under the checkpoint and under a full scan
    "sealed": lambda log: (log.segments[1], log.frames(1)[len(log.frames(1)) // 2], True),
    "sealed-full-scan": lambda log: (log.segments[1], log.frames(1)[len(log.frames(1)) // 2], False),
    # the uncovered tail, scanned at open (appended after the last checkpoint)
    "tail": lambda log: (log.segments[-1], log.frames(len(log.segments) - 1)[-2], True),
}


@pytest.mark.parametrize("site", FORGERY_SITES)
def test_a_forged_payload_is_served_by_reads_and_reported_by_verify(log: Log, site: str) -> None:
    """A payload byte changed and the frame CRC recomputed passes every check open and reads
    make (CRC, sequence, event id, chain links: the stored hash is untouched), so ``get``
    serves the forged payload. That is exactly why ``verify()`` exists: it recomputes every
    event hash, and reports this one, and nothing else."""
    seg, frame, use_checkpoint = FORGERY_SITES[site](log)
    receipt = log.receipt(frame)
    if site == "tail":
        assert frame.sequence >= log.covered
    else:
        assert frame.sequence < log.covered
    forge_payload(seg, frame)
    store = _open(log.data_dir, enable_index_checkpoint=use_checkpoint)
    try:
        if use_checkpoint:
            _assert_loaded(store, log)
        else:
            assert store.stats()["index_checkpoint"] == "disabled"
        event = store.get(receipt.event_id)
        original = _payload(frame.sequence)
        assert event.payload == original[:-1] + chr(ord(original[-1]) ^ 0x01)
        assert event.hash == receipt.hash  # the stored hash, no longer the hash of the content
        assert len(store.query(R.all())) == len(log.receipts)

        report = store.verify()
        assert not report.ok
        assert report.problems == (
            ep.VerifyProblem(
                report.problems[0].path, frame.offset, frame.sequence, "event hash does not match its content"
            ),
        )
        assert same_file(report.problems[0].path, seg)
        assert report.problems_not_listed == 0
        assert report.events == len(log.receipts)
        assert report.segments == len(log.segments)
    finally:
        store.close()


def test_a_forged_batch_position_is_served_by_reads_and_reported_by_verify(log: Log) -> None:
    """A single event's frame made to claim it opens a batch of two (CRC recomputed) still
    decodes, and the batch position is not part of the event hash: a read under the checkpoint
    serves it. ``verify()`` follows the batch framing, as a scan at open does, and reports where
    the batch falls apart: the next frame, which starts a batch of its own."""
    seg, frames = log.sealed_middle()
    forged, after = frames[3], frames[4]

    def edit(data: bytearray) -> None:
        struct.pack_into("<I", data, 20, 2)  # batch_len

    rewrite_frame(seg, forged, edit)
    with _open(log.data_dir) as store:
        _assert_loaded(store, log)
        assert store.get(log.receipt(forged).event_id).payload == _payload(forged.sequence)
        report = store.verify()
        assert [(p.offset, p.sequence, p.reason) for p in report.problems] == [
            (after.offset, after.sequence, "frame out of place in its batch")
        ]
        assert same_file(report.problems[0].path, seg)
    before = dir_bytes(log.data_dir)
    with pytest.raises(ep.CorruptSegment) as info:
        _open(log.data_dir, enable_index_checkpoint=False)
    assert (same_file(info.value.path, seg), info.value.offset) == (True, after.offset)
    assert dir_bytes(log.data_dir) == before


# --- 2. a swapped pair of frames ------------------------------------------------------------------


def test_a_swapped_pair_of_frames_is_refused_by_reads_reported_by_verify_and_fails_a_scan(
    log: Log,
) -> None:
    seg, frames = log.sealed_middle()
    a, b = frames[2], frames[3]
    assert a.length == b.length and b.end < frames[-1].offset  # neither is the last covered frame
    data = seg.read_bytes()

    # Swapped while the store is open: open checks every covered frame's sequence, so a swap
    # from before refuses the open (below).
    with _open(log.data_dir) as store:
        _assert_loaded(store, log)
        write_at(seg, a.offset, data[b.offset : b.end] + data[a.offset : a.end])
        for frame in (a, b):
            with pytest.raises(ep.CorruptSegment) as info:
                store.get(log.receipt(frame).event_id)
            assert same_file(info.value.path, seg)
            assert info.value.offset == frame.offset
        swapped = {a.sequence, b.sequence}
        for seq, receipt in enumerate(log.receipts):
            if seq not in swapped:
                event = store.get(receipt.event_id)
                assert (event.global_sequence, event.payload) == (seq, _payload(seq))
        with pytest.raises(ep.CorruptSegment):
            store.query(R.all())

        report = store.verify()
        assert not report.ok
        assert {(p.offset, p.sequence) for p in report.problems} == {
            (a.offset, a.sequence),
            (b.offset, b.sequence),
        }
        assert all(same_file(p.path, seg) for p in report.problems)
        reasons = {p.offset: p.reason for p in report.problems if p.reason.startswith("frame holds")}
        assert reasons == {
            a.offset: f"frame holds sequence {b.sequence}",
            b.offset: f"frame holds sequence {a.sequence}",
        }

    before = dir_bytes(log.data_dir)
    for use_checkpoint in (True, False):
        with pytest.raises(ep.CorruptSegment) as info:
            _open(log.data_dir, enable_index_checkpoint=use_checkpoint)
        assert same_file(info.value.path, seg)
        assert info.value.offset == a.offset
        assert dir_bytes(log.data_dir) == before


# --- 3. a deleted frame in a sealed segment -------------------------------------------------------


@pytest.mark.parametrize("use_checkpoint", [True, False], ids=["with-index-ckpt", "without-index-ckpt"])
def test_a_deleted_frame_in_a_sealed_segment_fails_open_closed(log: Log, use_checkpoint: bool) -> None:
    seg, frames = log.sealed_middle()
    gone = frames[len(frames) // 2]
    remove_bytes(seg, gone.offset, gone.end)
    before = dir_bytes(log.data_dir)
    with pytest.raises(ep.CorruptSegment) as info:
        _open(log.data_dir, enable_index_checkpoint=use_checkpoint)
    assert same_file(info.value.path, seg)
    assert "sealed" in info.value.reason
    assert dir_bytes(log.data_dir) == before


def test_a_frame_deleted_under_an_open_store_is_reported_by_verify(log: Log) -> None:
    seg, frames = log.sealed_middle()
    sealed_len = seg.stat().st_size
    gone = frames[len(frames) // 2]
    with _open(log.data_dir) as store:
        remove_bytes(seg, gone.offset, gone.end)
        report = store.verify()
        assert not report.ok
        mine = _problems_at(report, seg)
        seal = f"sealed at {sealed_len} bytes but {sealed_len - gone.length} bytes long"
        assert (sealed_len - gone.length, None, seal) in {(p.offset, p.sequence, p.reason) for p in mine}
        # The frames after the hole hold the sequences one early.
        after = frames[frames.index(gone) + 1]
        assert any(p.offset == gone.offset and p.reason.startswith("frame holds sequence") for p in mine), (
            mine
        )
        assert after.sequence == gone.sequence + 1


# --- 4. a sealed segment cut at a frame boundary --------------------------------------------------

NEWEST = ["intact", "emptied", "partial-header", "deleted"]


@pytest.mark.parametrize("use_checkpoint", [True, False], ids=["with-index-ckpt", "without-index-ckpt"])
@pytest.mark.parametrize("cut", ["last-frame", "half"])
@pytest.mark.parametrize("newest", NEWEST)
def test_a_sealed_segment_cut_at_a_frame_boundary_fails_open_closed(
    log: Log, newest: str, cut: str, use_checkpoint: bool
) -> None:
    """The segment before the newest loses whole frames from its end. Nothing in it is damaged,
    and with the newest segment emptied, half-created or deleted nothing after it disagrees
    either: only its seal record shows that it lost events (that double fault used to open
    with the events silently gone)."""
    sealed = log.segments[-2]
    frames = parse_frames(sealed)
    at = frames[-1].offset if cut == "last-frame" else frames[len(frames) // 2].offset
    truncate(sealed, at)
    newest_seg = log.segments[-1]
    if newest == "emptied":
        truncate(newest_seg, 0)
    elif newest == "partial-header":
        truncate(newest_seg, 20)
    elif newest == "deleted":
        newest_seg.unlink()
    before = dir_bytes(log.data_dir)
    with pytest.raises(ep.CorruptSegment) as info:
        _open(log.data_dir, enable_index_checkpoint=use_checkpoint)
    assert same_file(info.value.path, sealed)
    assert info.value.offset == at
    assert "sealed" in info.value.reason
    assert dir_bytes(log.data_dir) == before
    with pytest.raises(ep.CorruptSegment):
        _open(log.data_dir, read_only=True, enable_index_checkpoint=use_checkpoint)


def test_a_sealed_segment_cut_under_an_open_store_is_reported_by_verify(log: Log) -> None:
    sealed = log.segments[-2]
    frames = parse_frames(sealed)
    sealed_len = sealed.stat().st_size
    with _open(log.data_dir) as store:
        truncate(sealed, frames[-1].offset)
        report = store.verify()
        assert not report.ok
        seal = f"sealed at {sealed_len} bytes but {frames[-1].offset} bytes long"
        mine = [(p.offset, p.reason) for p in _problems_at(report, sealed)]
        assert (frames[-1].offset, seal) in mine
        # The newest segment starts one sequence after the cut segment's end, and the lost
        # event's entity finds its next event out of its chain.
        lost = frames[-1].sequence
        entity_next = next(f for f in parse_frames(log.segments[-1]) if f.sequence % 3 == lost % 3)
        newest = {(p.offset, p.sequence, p.reason) for p in _problems_at(report, log.segments[-1])}
        assert newest == {
            (0, lost, f"segment starts at sequence {lost + 1}, expected {lost}"),
            (entity_next.offset, entity_next.sequence, "entity clock out of order"),
            (entity_next.offset, entity_next.sequence, "prev_hash does not name the entity's previous event"),
        }
        assert len(report.problems) == len(mine) + len(newest)


def test_the_newest_segment_cut_under_an_open_store_is_reported_by_verify(log: Log) -> None:
    """Verify reads the newest segment up to the events the index holds; a file cut shorter
    than that is a problem to report, not a reason to fail."""
    newest = log.segments[-1]
    frames = parse_frames(newest)
    with _open(log.data_dir) as store:
        truncate(newest, frames[-2].offset + 10)
        report = store.verify()
        assert not report.ok
        assert all(same_file(p.path, newest) or p.path.endswith("segments") for p in report.problems)
        assert (frames[-2].offset, frames[-2].sequence) in {(p.offset, p.sequence) for p in report.problems}


# --- 5 and 6. side files --------------------------------------------------------------------------


def test_a_damaged_cursor_checkpoint_is_reported_and_the_store_still_opens(data_dir: Path) -> None:
    with _open(data_dir) as store:
        for i in range(5):
            store.append(("a", "s"), "k", i)
        for name, count in (("reader", 2), ("other", 4)):
            cursor = store.cursor(R.all())
            cursor.poll_batch(count)
            cursor.commit(name)
    damaged = data_dir / "cursors" / "reader.ckpt"
    flip_byte(damaged, damaged.stat().st_size // 2)
    with _open(data_dir) as store:
        assert store.stats()["events"] == 5
        report = store.verify()
        assert not report.ok
        assert len(report.problems) == 1
        (problem,) = report.problems
        assert same_file(problem.path, damaged)
        assert (problem.offset, problem.sequence) == (0, None)
        assert problem.reason
        assert report.events == 5


def test_a_cursor_checkpoint_past_the_end_of_the_log_is_reported(data_dir: Path) -> None:
    with _open(data_dir) as store:
        for i in range(5):
            store.append(("a", "s"), "k", i)
        identity = R.all().checkpoint_identity
    ep.Cursor.save_checkpoint(data_dir, "ahead", ep.CursorCheckpoint(5, True, None, identity))
    with _open(data_dir, read_only=True) as store:
        report = store.verify()
    assert [(Path(p.path).name, p.reason) for p in report.problems] == [
        ("ahead.ckpt", "position 5 is past the end of the log (5 events)")
    ]


def test_a_checkpoint_committed_while_verify_runs_is_not_past_the_log(data_dir: Path) -> None:
    """Workers keep committing while verify runs: a checkpoint naming an event appended after
    the check started is not a problem (it was read after the event existed)."""
    payload = "x" * 300
    with ep.Store.open(data_dir, sync="never") as store:
        for _ in range(32):  # about 11 MB: progress is reported during the segment walk
            store.append_batch([(("a", "s"), "k", payload)] * 1000)
        cursor = store.cursor(R.all())
        committed: list[int] = []

        def progress(done: int, total: int) -> None:
            if not committed and done < total:
                store.append_batch([(("a", "s"), "k", "after the check started")] * 2)
                while cursor.poll_batch(5000):
                    pass
                cursor.commit("live")
                committed.append(cursor.position)

        report = store.verify(progress=progress)
    assert committed == [32_001]  # the events appended during the check
    assert report.ok, report.problems
    assert report.events == 32_000


def test_a_damaged_hidden_ranges_is_reported(data_dir: Path) -> None:
    with _open(data_dir) as store:
        store.append(("a", "s"), "k", 0)
        with store.fence() as fence:
            fence.append(("a", "s"), "k", "cancelled")
            fence.cancel()
        store.append(("a", "s"), "k", 2)
    hidden = data_dir / "hidden.ranges"
    with _open(data_dir) as store:
        assert store.verify().ok
        flip_byte(hidden, hidden.stat().st_size // 2)  # open would refuse it: damage it after
        report = store.verify()
        assert not report.ok
        (problem,) = report.problems
        assert same_file(problem.path, hidden)
        assert problem.sequence is None
        assert problem.reason
    with pytest.raises(ep.CorruptSegment):
        _open(data_dir)


def test_a_damaged_seal_record_is_reported(log: Log) -> None:
    seals = log.data_dir / "segments" / "seals"
    assert seals.stat().st_size == SEAL_RECORD_LEN * (len(log.segments) - 1)
    with _open(log.data_dir) as store:
        flip_byte(seals, SEAL_RECORD_LEN + 12)  # the second record's segment id
        report = store.verify()
        assert not report.ok
        assert [same_file(p.path, seals) for p in report.problems] == [True]
        assert report.problems[0].offset == SEAL_RECORD_LEN
    with pytest.raises(ep.CorruptSegment) as info:
        _open(log.data_dir)
    assert same_file(info.value.path, seals)


def test_a_missing_seal_record_is_reported(log: Log) -> None:
    """Every segment before the newest was sealed; one without its record fails the next open, so
    verify reports it."""
    seals = log.data_dir / "segments" / "seals"
    with _open(log.data_dir) as store:
        truncate(seals, SEAL_RECORD_LEN)  # only segment 0 keeps its record
        report = store.verify()
        assert not report.ok
        assert [p for p in report.problems if not any(same_file(p.path, s) for s in log.segments)] == []
        assert sorted(Path(p.path).name for p in report.problems) == [s.name for s in log.segments[1:-1]]
    with pytest.raises(ep.CorruptSegment) as info:
        _open(log.data_dir)
    assert same_file(info.value.path, log.segments[1])


# --- healthy stores -------------------------------------------------------------------------------


def _fill_rich(store: ep.Store) -> int:
    """Singles, keyed events, batches, causal links, payload versions, a committed and a
    cancelled fence, over several segments; returns the number of events written."""
    written = 0
    for i in range(40):
        root = store.append(
            ("order", f"s{i % 2}"), "placed", {"i": i, "pad": "x" * 30}, idempotency_key=f"k{i}"
        )
        effect = store.append(("ship", "s"), "shipped", {"i": i}, caused_by=root, payload_version=2)
        store.append(("bill", "s"), "billed", {"i": i}, causation_id=effect.event_id, payload_version=7)
        written += 3
        if i % 10 == 3:
            store.append_batch(
                [
                    (("order", "s0"), "batched", i),
                    ep.AppendRequest(("bill", "s"), "batched", i, causation_id=ep.PriorItem(0)),
                ]
            )
            written += 2
        if i % 10 == 5:
            with store.fence() as fence:
                fence.append_batch([(("order", "s0"), "fenced", i), (("ship", "s"), "fenced", i)])
            written += 2
        if i % 10 == 7:
            with store.fence() as fence:
                fence.append(("order", "s0"), "cancelled", i)
                fence.append(("bill", "s"), "cancelled", i)
                fence.cancel()
            written += 2
    cursor = store.cursor(R.all())
    cursor.poll_batch(10)
    cursor.commit("reader")
    return written


def _assert_counts_exact(report: ep.VerifyReport, data_dir: Path, events: int) -> None:
    segments = segment_paths(data_dir)
    assert report.ok, report.problems
    assert report.problems == ()
    assert report.problems_not_listed == 0
    assert report.events == events
    assert report.segments == len(segments)
    assert report.bytes == sum(s.stat().st_size for s in segments)


def test_a_healthy_store_with_every_feature_is_ok_and_counted_exactly(data_dir: Path) -> None:
    with _open(data_dir) as store:
        events = _fill_rich(store)
        assert len(segment_paths(data_dir)) >= 4
        assert (data_dir / "hidden.ranges").exists()
        _assert_counts_exact(store.verify(), data_dir, events)
    for use_checkpoint in (True, False):
        with _open(data_dir, enable_index_checkpoint=use_checkpoint) as store:
            expected = "loaded" if use_checkpoint else "disabled"
            assert store.stats()["index_checkpoint"] == expected
            _assert_counts_exact(store.verify(), data_dir, events)
    with _open(data_dir, read_only=True) as store:
        _assert_counts_exact(store.verify(), data_dir, events)


def test_verify_of_the_format_v1_fixture_and_its_upgrade_is_ok(tmp_path: Path) -> None:
    """Version-1 segments have no seal records; segments written after them (version 2) do."""
    data_dir = tmp_path / "v1_store"
    shutil.copytree(Path(__file__).parent / "fixtures" / "v1_store", data_dir)
    with _open(data_dir, read_only=True) as store:
        _assert_counts_exact(store.verify(), data_dir, 27)
    with _open(data_dir) as store:
        for i in range(40):
            store.append(("v2", "s"), "k", {"i": i, "pad": "z" * 60})
        assert len(segment_paths(data_dir)) >= 4
        _assert_counts_exact(store.verify(), data_dir, 67)
    with _open(data_dir, read_only=True) as store:
        assert store.stats()["index_checkpoint"] == "loaded"
        _assert_counts_exact(store.verify(), data_dir, 67)


def test_verify_of_an_empty_store_is_ok(data_dir: Path) -> None:
    with _open(data_dir) as store:
        _assert_counts_exact(store.verify(), data_dir, 0)


def test_progress_rises_to_the_total(data_dir: Path) -> None:
    calls: list[tuple[int, int]] = []
    with ep.Store.open(data_dir, segment_max_bytes=4 << 20) as store:
        blob = bytes(range(256)) * 1024  # 256 KiB
        for i in range(80):  # about 20 MiB: progress is reported every 8 MiB, then at the end
            store.append(("a", "s"), "k", {"i": i, "blob": blob})
        report = store.verify(progress=lambda done, total: calls.append((done, total)))
    assert report.ok
    total = report.bytes
    assert total == sum(s.stat().st_size for s in segment_paths(data_dir))
    assert len(calls) >= 3
    assert calls[-1] == (total, total)
    assert all(t == total for _, t in calls)
    dones = [d for d, _ in calls]
    assert dones == sorted(dones)
    assert all(0 < d <= total for d in dones)


class _Stop(Exception):
    pass


def test_an_exception_in_progress_stops_verify_and_propagates(data_dir: Path) -> None:
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        raise _Stop(done)

    with _open(data_dir) as store:
        for i in range(30):
            store.append(("a", "s"), "k", i)
        with pytest.raises(_Stop):
            store.verify(progress=progress)
        assert len(seen) == 1
        assert store.verify().ok  # the store is unharmed
        assert store.append(("a", "s"), "k", 30).global_sequence == 30


def test_verify_while_another_thread_appends(data_dir: Path) -> None:
    with _open(data_dir) as store:
        for i in range(20):
            store.append(("a", "s"), "k", i)
        started, stop = threading.Event(), threading.Event()
        failures: list[BaseException] = []

        def appender() -> None:
            try:
                n = 0
                while not stop.is_set():
                    store.append((f"e{n % 5}", "s"), "k", {"n": n, "pad": "y" * 50})
                    n += 1
                    started.set()
            except BaseException as exc:
                failures.append(exc)
                started.set()

        thread = threading.Thread(target=appender)
        thread.start()
        try:
            assert started.wait(60)
            head = store.head()
            assert head is not None
            report = store.verify()
        finally:
            stop.set()
            thread.join()
        assert failures == []
        assert report.ok, report.problems
        assert report.events >= head + 1
        assert store.stats()["events"] >= report.events
        final = store.verify()
        _assert_counts_exact(final, data_dir, store.stats()["events"])


def test_verify_while_a_fence_is_open_across_a_rotation(data_dir: Path) -> None:
    """An open fence's events are not checked yet (they may still be cancelled), even when they
    filled a segment and the writer moved to the next one."""
    with _open(data_dir) as store:
        for i in range(5):
            store.append(("a", "s"), "k", i)
        segments = len(segment_paths(data_dir))
        with store.fence() as fence:
            while len(segment_paths(data_dir)) < segments + 2:
                fence.append(("b", "s"), "fenced", "z" * 200)
            report = store.verify()
            assert report.ok, report.problems
            assert report.events == 5
        _assert_counts_exact(store.verify(), data_dir, store.stats()["events"])


def test_verify_of_a_closed_store_raises_store_closed(data_dir: Path) -> None:
    store = _open(data_dir)
    store.close()
    with pytest.raises(ep.StoreClosed):
        store.verify()


# --- the command line -----------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventpak", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_verify_of_a_healthy_store_exits_0(log: Log) -> None:
    before = dir_bytes(log.data_dir)
    done = run_cli("verify", str(log.data_dir))
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "ok" in done.stdout
    assert "problem:" not in done.stdout
    assert f"{len(log.receipts)} events, {len(log.segments)} segment(s)" in done.stdout
    # Read-only: nothing changed; the CLI joins as a shared reader, which adds only the shared-mode
    # coordination files (shared/).
    assert {k: v for k, v in dir_bytes(log.data_dir).items() if not k.startswith("shared/")} == before


def test_cli_verify_lists_a_forgery_and_exits_1(log: Log) -> None:
    seg, frames = log.sealed_middle()
    frame = frames[1]
    forge_payload(seg, frame)
    done = run_cli("verify", str(log.data_dir))
    assert done.returncode == 1, (done.stdout, done.stderr)
    problems = [line for line in done.stdout.splitlines() if "problem:" in line]
    assert len(problems) == 1
    assert seg.name in problems[0]
    assert f"at offset {frame.offset} (event {frame.sequence})" in problems[0]
    assert "event hash does not match its content" in problems[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("kind", ["empty dir", "missing", "file"])
def test_cli_verify_of_what_is_not_a_store_exits_1(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "target"
    if kind == "empty dir":
        target.mkdir()
    elif kind == "file":
        target.write_text("mine\n")
    done = run_cli("verify", str(target))
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("eventpak: "), done.stderr
    assert "Traceback" not in done.stderr


def test_cli_verify_of_a_store_that_fails_to_open_exits_1(log: Log) -> None:
    """A log that refuses to open (CorruptSegment) is reported as verify's one problem."""
    truncate(log.segments[-2], parse_frames(log.segments[-2])[-1].offset)
    done = run_cli("verify", str(log.data_dir))
    assert done.returncode == 1
    assert done.stderr == ""
    problems = [line for line in done.stdout.splitlines() if line.startswith("  problem: ")]
    assert len(problems) == 1 and log.segments[-2].name in problems[0], done.stdout
    assert "refuses to open" in problems[0] and "damaged: 1 problem(s)" in done.stdout
