"""``store.backup(dest)``: a copy consistent as of one global sequence, taken while appends go
on in another thread; what it holds (events, hidden ranges, cursor checkpoints), incremental
backups, progress, and the destinations it refuses without writing anything."""

from __future__ import annotations

import threading
from pathlib import Path

import eventpak as ep
import pytest
from backup_support import assert_is_backup_of, events_of, fill, tree
from checksums import crc32c


def test_a_backup_opens_as_the_same_store_with_every_event(store: ep.Store, tmp_path: Path) -> None:
    fill(store, 300)
    report = store.backup(tmp_path / "backup")
    assert isinstance(report, ep.BackupReport)
    assert (report.through, report.events, report.incremental) == (299, 300, False)
    assert report.bytes_copied > 0
    assert_is_backup_of(store, tmp_path / "backup", report)
    # It is a data dir of its own: it takes appends, and the origin does not see them.
    with ep.Store.open(tmp_path / "backup") as copy:
        copy.append(("acct-0", "bank"), "deposited", {"i": -1})
        assert copy.next_sequence("acct-0") == store.next_sequence("acct-0") + 1
    assert store.head() == 299


def test_an_empty_store_backs_up_to_an_empty_store(store: ep.Store, tmp_path: Path) -> None:
    report = store.backup(tmp_path / "backup")
    assert (report.through, report.events) == (None, 0)
    assert_is_backup_of(store, tmp_path / "backup", report)


def test_a_backup_during_appends_in_another_thread_is_consistent(store: ep.Store, tmp_path: Path) -> None:
    fill(store, 200)
    stop = threading.Event()
    appended = threading.Event()

    def append_load() -> None:
        i = 0
        while not stop.is_set():
            store.append_batch([((f"load-{i % 5}", "bank"), "loaded", {"i": i + k}) for k in range(3)])
            i += 3
            appended.set()

    writer = threading.Thread(target=append_load)
    writer.start()
    try:
        assert appended.wait(30)
        head_before = store.head()
        assert head_before is not None
        report = store.backup(tmp_path / "backup")
        assert report.through is not None and report.through >= head_before
        # Batches are never split: the copy ends on a batch boundary.
        assert (report.through + 1 - 200) % 3 == 0
        # The load goes on past the snapshot (a blocking wait for a later commit).
        assert store.cursor(ep.Region.all(), after=report.through).pull_batch(1, 30.0)
    finally:
        stop.set()
        writer.join()
    assert_is_backup_of(store, tmp_path / "backup", report)


def test_hidden_ranges_and_cursor_checkpoints_come_along(store: ep.Store, tmp_path: Path) -> None:
    fill(store, 10)
    fence = store.fence()
    with pytest.raises(RuntimeError), fence:
        fence.append(("acct-1", "bank"), "withdrawn", {"n": 1})
        raise RuntimeError("cancel the fence")
    fill(store, 10, start=10)
    cursor = store.cursor(ep.Region.all())
    assert len(cursor.poll_batch(5)) == 5
    cursor.commit("reader")
    report = store.backup(tmp_path / "backup")
    assert report.through == 20 and report.events == 20
    assert_is_backup_of(store, tmp_path / "backup", report)
    origin_dir = Path(store.path)
    for rel in ("hidden.ranges", "cursors/reader.ckpt", "store.id"):
        assert (tmp_path / "backup" / rel).read_bytes() == (origin_dir / rel).read_bytes()
    with ep.Store.open(tmp_path / "backup", read_only=True) as copy:
        resumed = copy.cursor(ep.Region.all())
        assert resumed.resume("reader")
        rest = resumed.poll_batch(100)
        assert [e.global_sequence for e in rest] == [s for s in range(5, 21) if s != 10]


def test_a_checkpoint_past_the_backup_is_moved_back_to_it(store: ep.Store, tmp_path: Path) -> None:
    fill(store, 10)
    identity = ep.Region.all().checkpoint_identity
    ep.Cursor.save_checkpoint(store.path, "ahead", ep.CursorCheckpoint(500, True, None, identity))
    ep.Cursor.save_checkpoint(store.path, "behind", ep.CursorCheckpoint(3, True, None, identity))
    report = store.backup(tmp_path / "backup")
    ahead = ep.Cursor.load_checkpoint(tmp_path / "backup", "ahead")
    assert ahead == ep.CursorCheckpoint(report.through, True, None, identity)
    behind = ep.Cursor.load_checkpoint(tmp_path / "backup", "behind")
    assert behind == ep.CursorCheckpoint(3, True, None, identity)


def test_an_open_fence_is_left_out_of_the_backup(store: ep.Store, tmp_path: Path) -> None:
    fill(store, 5)
    with store.fence() as fence:
        fence.append(("acct-1", "bank"), "withdrawn", {"n": 1})
        report = store.backup(tmp_path / "backup")
    assert report.through == 4 and store.head() == 5
    assert_is_backup_of(store, tmp_path / "backup", report)
    with ep.Store.open(tmp_path / "backup") as copy:  # no fence to cancel, nothing hidden
        assert copy.head() == 4
        copy.append(("acct-1", "bank"), "withdrawn", {"n": 2})
        assert copy.head() == 5
        stats = copy.stats()
        assert stats["events"] == stats["visible_events"] == 6


def test_a_second_backup_is_incremental_and_copies_little(open_store, tmp_path: Path) -> None:
    store = open_store(segment_max_bytes=64 << 10)
    fill(store, 3000)
    dest = tmp_path / "backup"
    first = store.backup(dest)
    sealed = sorted(dest.joinpath("segments").glob("*.seg"))[:-1]
    assert len(sealed) >= 3
    inodes = {p.name: p.stat().st_ino for p in sealed}
    fill(store, 20, start=3000)
    second = store.backup(dest)
    assert second.incremental and second.through == 3019
    assert second.bytes_copied * 10 < first.bytes_copied
    assert {p.name: p.stat().st_ino for p in sealed} == inodes  # unchanged segments kept
    assert_is_backup_of(store, dest, second)
    unchanged = store.backup(dest)
    assert unchanged.incremental and unchanged.through == second.through
    assert unchanged.bytes_copied == 0


def test_a_changed_file_in_the_destination_is_copied_again(open_store, tmp_path: Path) -> None:
    store = open_store(segment_max_bytes=64 << 10)
    fill(store, 2000)
    dest = tmp_path / "backup"
    store.backup(dest)
    first = sorted(dest.joinpath("segments").glob("*.seg"))[0]
    damaged = bytearray(first.read_bytes())
    damaged[-1] ^= 0xFF  # the last frame of a sealed segment, as a rewrite would change it
    first.write_bytes(bytes(damaged))
    report = store.backup(dest)
    assert report.incremental and report.bytes_copied >= len(damaged)
    assert_is_backup_of(store, dest, report)


def test_a_backup_opened_and_appended_to_is_brought_back_to_the_origin(
    store: ep.Store, tmp_path: Path
) -> None:
    fill(store, 50)
    dest = tmp_path / "backup"
    store.backup(dest)
    with ep.Store.open(dest) as copy:
        copy.append(("other", "bank"), "diverged", {})
    fill(store, 5, start=50)
    report = store.backup(dest)
    assert report.incremental
    assert_is_backup_of(store, dest, report)


def test_a_backup_compacted_otherwise_than_the_origin_is_brought_back_to_it(
    open_store, tmp_path: Path
) -> None:
    # A restore drill: the backup is opened, appended to and compacted by the same schedule
    # as the origin. Each side removes another event of the same size from the middle of one
    # sealed segment: same length, same seal record, same ends, other frames in between.
    rule = ep.Retention(kinds=["position"], keep_last_per_entity=1)
    origin = open_store(segment_max_bytes=65536)
    for j in range(40):
        origin.append_batch(
            [((f"acct:{i % 9}", "s"), "deposit", {"i": i, "pad": "x" * 50}) for i in range(50)]
        )
        if j == 5:
            origin.append_batch(
                [(("pos:1", "s"), "position", {"at": 1}), (("pos:2", "s"), "position", {"at": 1})]
            )
    dest = tmp_path / "backup"
    origin.backup(dest)
    with ep.Store.open(dest) as drill:
        drill.append(("pos:1", "s"), "position", {"at": 2})
        assert drill.compact(rule).removed == 1
    origin.append(("pos:2", "s"), "position", {"at": 2})
    assert origin.compact(rule).removed == 1
    report = origin.backup(dest)
    assert report.incremental
    assert_is_backup_of(origin, dest, report)


def test_progress_counts_up_to_the_bytes_copied(store: ep.Store, tmp_path: Path) -> None:
    fill(store, 500)
    calls: list[tuple[int, int]] = []
    report = store.backup(tmp_path / "backup", progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, report.bytes_copied)
    assert calls[-1] == (report.bytes_copied, report.bytes_copied)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert {total for _, total in calls} == {report.bytes_copied}


def test_an_exception_from_progress_stops_the_backup_and_leaves_the_destination(
    store: ep.Store, tmp_path: Path
) -> None:
    fill(store, 100)
    dest = tmp_path / "backup"

    def stop(done: int, total: int) -> None:
        if done > 0:
            raise KeyError("stop here")

    with pytest.raises(KeyError, match="stop here"):
        store.backup(dest, progress=stop)
    assert not dest.exists()
    first = store.backup(dest)
    before = tree(dest)
    fill(store, 100, start=100)
    with pytest.raises(KeyError, match="stop here"):
        store.backup(dest, progress=stop)
    assert tree(dest) == before
    assert_is_backup_of(store, dest, first)


def _refused(store: ep.Store, dest: Path) -> None:
    before = tree(dest)
    with pytest.raises(ep.InvalidConfig):
        store.backup(dest)
    assert tree(dest) == before


def test_bad_destinations_are_refused_and_untouched(store: ep.Store, tmp_path: Path) -> None:
    fill(store, 20)
    data_dir = Path(store.path)
    origin = tree(data_dir)
    afile = tmp_path / "a-file"
    afile.write_bytes(b"not a folder")
    _refused(store, afile)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    _refused(store, foreign)
    dotted = tmp_path / "dotted"  # a repository or a desktop's folder file: not empty
    (dotted / ".git").mkdir(parents=True)
    (dotted / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    _refused(store, dotted)
    # Paths that can never be folders are bad arguments, not failing disks.
    _refused(store, afile / "below-a-file")
    listed = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ep.InvalidConfig, match="too long"):
        store.backup(tmp_path / ("n" * 300))
    # Under folders that do not exist yet: refused before any of them is made.
    with pytest.raises(ep.InvalidConfig, match="too long"):
        store.backup(tmp_path / "new-parent" / ("n" * 300))
    with pytest.raises(ep.InvalidConfig, match="empty path"):
        store.backup("")
    with pytest.raises(ep.InvalidConfig, match="NUL byte"):
        store.backup(str(tmp_path / "nul\0name"))
    # A link to a path that is gone: named as such, not a failing disk of the store.
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    listed = sorted([*listed, "dangling"])
    with pytest.raises(ep.InvalidConfig, match="dangling: it is a link to a path that does not exist"):
        store.backup(tmp_path / "dangling")
    with pytest.raises(ep.InvalidConfig, match="progress must be callable"):
        store.backup(tmp_path / "fine", progress=5)  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == listed
    assert tree(afile) == {".": b"not a folder"}
    with ep.Store.open(tmp_path / "other") as other:
        other.append(("x", "y"), "k", {})
    _refused(store, tmp_path / "other")
    other_backup = tmp_path / "other-backup"
    with ep.Store.open(tmp_path / "other") as other:
        other.backup(other_backup)
    _refused(store, other_backup)
    with pytest.raises(ep.InvalidConfig):
        store.backup(data_dir)
    with pytest.raises(ep.InvalidConfig):
        store.backup(data_dir / "inside")
    with pytest.raises(ep.InvalidConfig):
        store.backup(data_dir / "segments")
    assert tree(data_dir).keys() == origin.keys()
    assert events_of(store) == events_of(store)  # the origin still reads


def test_an_empty_folder_is_a_fine_destination(store: ep.Store, tmp_path: Path) -> None:
    fill(store, 20)
    dest = tmp_path / "empty"
    dest.mkdir()
    report = store.backup(dest)
    assert not report.incremental
    assert_is_backup_of(store, dest, report)


def test_an_unfinished_backup_refuses_to_open_and_the_next_backup_finishes_it(
    store: ep.Store, tmp_path: Path
) -> None:
    fill(store, 40)
    dest = tmp_path / "backup"
    store.backup(dest)
    # As a backup killed while moving its files in leaves it: the marker naming this store,
    # beside files of the old backup and of the new one (here: one segment lost).
    body = b"EVPKBAK\0" + store.store_id
    (dest / "backup.pending").write_bytes(body + crc32c(body).to_bytes(4, "little"))
    sorted(dest.joinpath("segments").glob("*.seg"))[-1].unlink()
    with pytest.raises(ep.InvalidConfig, match="unfinished backup"):
        ep.Store.open(dest, read_only=True)
    with pytest.raises(ep.InvalidConfig, match="unfinished backup"):
        ep.Store.open(dest)
    fill(store, 10, start=40)
    report = store.backup(dest)
    assert not report.incremental  # everything copied anew
    assert not (dest / "backup.pending").exists()
    assert_is_backup_of(store, dest, report)


def test_an_unfinished_backup_of_another_store_is_refused(store: ep.Store, tmp_path: Path) -> None:
    dest = tmp_path / "backup"
    dest.mkdir()
    body = b"EVPKBAK\0" + bytes(16)
    (dest / "backup.pending").write_bytes(body + crc32c(body).to_bytes(4, "little"))
    _refused(store, dest)


def test_a_read_only_store_backs_up(tmp_path: Path) -> None:
    with ep.Store.open(tmp_path / "data") as store:
        fill(store, 30)
    with ep.Store.open(tmp_path / "data", read_only=True) as reader:
        report = reader.backup(tmp_path / "backup")
        assert report.through == 29
        assert_is_backup_of(reader, tmp_path / "backup", report)


def test_a_closed_store_refuses_to_back_up(store: ep.Store, tmp_path: Path) -> None:
    store.close()
    with pytest.raises(ep.StoreClosed):
        store.backup(tmp_path / "backup")
    assert not (tmp_path / "backup").exists()


def test_every_data_file_comes_along_and_no_lock_or_temp_file(store: ep.Store, tmp_path: Path) -> None:
    """Files this version does not know (an encryption key file, a compaction record) are
    copied as they are; a change anywhere in one is copied again by the next backup."""
    fill(store, 10)
    data_dir = Path(store.path)
    keys = bytearray(range(256)) * 1000  # larger than any "compare the ends" shortcut
    (data_dir / "keys").write_bytes(bytes(keys))
    (data_dir / "nested").mkdir()
    (data_dir / "nested" / "record").write_bytes(b"removed ranges")
    (data_dir / ".keys.123.tmp").write_bytes(b"half written")
    (data_dir / "leases").mkdir(exist_ok=True)
    (data_dir / "leases" / "w.lease").write_bytes(b"")
    dest = tmp_path / "backup"
    store.backup(dest)
    assert (dest / "keys").read_bytes() == bytes(keys)
    assert (dest / "nested" / "record").read_bytes() == b"removed ranges"
    assert not (dest / ".keys.123.tmp").exists() and not (dest / "leases").exists()
    keys[len(keys) // 2] ^= 0xFF  # a key destroyed in the middle, same length
    (data_dir / "keys").write_bytes(bytes(keys))
    (data_dir / "nested" / "record").unlink()
    report = store.backup(dest)
    assert report.incremental and report.bytes_copied == len(keys)
    assert (dest / "keys").read_bytes() == bytes(keys)
    assert not (dest / "nested" / "record").exists()
    assert_is_backup_of(store, dest, report)


def test_a_checkpoint_whose_id_starts_with_a_dot_comes_along(store: ep.Store, tmp_path: Path) -> None:
    # A leading dot is a temp file's mark only with its `.tmp` ending (and at the top).
    fill(store, 10)
    identity = ep.Region.all().checkpoint_identity
    for name in (".mailer", "mailer"):
        ep.Cursor.save_checkpoint(store.path, name, ep.CursorCheckpoint(4, True, None, identity))
    temp = Path(store.path) / "cursors" / ".mailer.ckpt.77.0.tmp"
    temp.write_bytes(b"half written")
    store.backup(tmp_path / "backup")
    with ep.Store.open(tmp_path / "backup") as copy:
        assert sorted(c.checkpoint_id for c in copy.checkpoints()) == [".mailer", "mailer"]
    assert not (tmp_path / "backup" / "cursors" / temp.name).exists()
    assert store.reset_checkpoint(".mailer")
    store.backup(tmp_path / "backup")  # the next backup drops what the store dropped
    assert not (tmp_path / "backup" / "cursors" / ".mailer.ckpt").exists()


def test_a_destination_in_use_is_refused_naming_the_destination(store: ep.Store, tmp_path: Path) -> None:
    fill(store, 20)
    dest = tmp_path / "backup"
    store.backup(dest)
    before = tree(dest)
    with ep.Store.open(dest, read_only=True) as holder:
        assert holder.stats()["events"] == 20
        with pytest.raises(ep.StoreLocked) as refused:
            store.backup(dest)
    err = refused.value
    assert err.path == str(dest) and err.kind == "backup destination"
    assert str(err).startswith(f"backup destination {dest} is locked") and "shared=True" not in str(err)
    assert tree(dest) == before
    assert store.backup(dest).incremental  # free again


@pytest.mark.parametrize("shared", [False, True])
def test_a_dir_with_no_segment_yet_is_refused_with_nothing_made(tmp_path: Path, shared: bool) -> None:
    # What a first writable open killed before its first segment leaves: readable, empty.
    data = tmp_path / "data"
    (data / "segments").mkdir(parents=True)
    refused = pytest.raises(ep.InvalidConfig, match="holds no segment yet")
    with ep.Store.open(data, read_only=True, shared=shared) as store, refused:
        store.backup(tmp_path / "backup")
    assert not (tmp_path / "backup").exists()
