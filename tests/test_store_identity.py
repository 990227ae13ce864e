"""The store's identity and the rough edges of opening one: ``store_id`` (and the projection
cache that must never serve another store's state), ``head()``, ``next_sequence()``,
``cursor(after=)``, ``reset_checkpoint()``, who holds a lock, and paths that are not stores."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import eventpak as ep
import pytest


class Balance(ep.Projection[int]):
    name = "balance"
    kinds = ("deposit",)

    def initial(self) -> int:
        return 0

    def apply(self, state: int, event: ep.Event) -> int:
        return state + int(event.payload["amount"])


def test_store_id_is_fixed_at_creation_and_survives_reopen(open_store, data_dir: Path) -> None:
    store = open_store()
    first = store.store_id
    assert isinstance(first, bytes) and len(first) == 16
    store.close()
    assert open_store().store_id == first
    assert (data_dir / "store.id").is_file()


def test_a_data_dir_made_again_at_the_same_path_gets_a_new_id(open_store, data_dir: Path) -> None:
    store = open_store()
    old = store.store_id
    store.close()
    shutil.rmtree(data_dir)
    assert open_store().store_id != old


def test_the_projection_cache_never_serves_another_stores_state(data_dir: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with ep.Store.open(data_dir, projection_cache=ep.NativeCache(cache_dir)) as store:
        for _ in range(3):
            store.append(("acct:1", "eu"), "deposit", {"amount": 100})
        assert store.project("acct:1", Balance()) == 300
    shutil.rmtree(data_dir)
    with ep.Store.open(data_dir, projection_cache=ep.NativeCache(cache_dir)) as store:
        for _ in range(3):
            store.append(("acct:1", "eu"), "deposit", {"amount": 1})
        # Same path, same watermark, same projection: only the store identity differs.
        assert store.project("acct:1", Balance()) == 3


def test_a_read_only_open_of_a_store_without_an_id_file_changes_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "v1_store"  # written by format version 1 code, before store.id
    shutil.copytree(Path(__file__).resolve().parent / "fixtures" / "v1_store", data_dir)
    with ep.Store.open(data_dir, read_only=True) as ro:
        derived = ro.store_id
    assert not (data_dir / "store.id").exists()
    with ep.Store.open(data_dir) as store:
        assert store.store_id == derived  # a writable open records the same identity
    assert (data_dir / "store.id").exists()


def test_a_read_only_open_of_a_closed_store_touches_no_file(data_dir: Path) -> None:
    with ep.Store.open(data_dir) as store:
        store.append(("a", "s"), "k", 1)
    files = sorted(path for path in data_dir.rglob("*") if path.is_file())
    assert data_dir / "LOCK" in files
    # Every file dated in the past: any write, even of the same bytes or a truncation of an
    # empty file, would date it now.
    for path in files:
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    contents = {path: path.read_bytes() for path in files}
    with ep.Store.open(data_dir, read_only=True) as store:
        assert [e.payload for e in store.query(ep.Region.all())] == [1]
    assert sorted(path for path in data_dir.rglob("*") if path.is_file()) == files
    assert {path: path.read_bytes() for path in files} == contents
    assert {path: path.stat().st_mtime_ns for path in files} == dict.fromkeys(files, 1_000_000_000)


@pytest.mark.parametrize("read_only", [False, True])
def test_a_store_id_file_lost_since_it_exists_is_damage(open_store, data_dir: Path, read_only: bool) -> None:
    # A store written since store.id exists wrote it before its first event: without it, a
    # new identity would make every receipt read as another store's and every cache miss.
    store = open_store()
    store.append(("a", "s"), "k", 1)
    store.close()
    (data_dir / "store.id").unlink()
    before = sorted(p.relative_to(data_dir) for p in data_dir.rglob("*") if p.name != "LOCK")
    with pytest.raises(ep.CorruptSegment, match=r"store\.id at offset 0: missing"):
        ep.Store.open(data_dir, read_only=read_only)
    assert sorted(p.relative_to(data_dir) for p in data_dir.rglob("*") if p.name != "LOCK") == before


def test_head_is_the_newest_visible_sequence(store: ep.Store) -> None:
    assert store.head() is None
    store.append(("a", "s"), "k", 1)
    store.append(("b", "s"), "k", 2)
    assert store.head() == 1
    with store.fence() as fence:
        fence.append(("a", "s"), "k", 3)
        assert store.head() == 1  # a fenced event is not visible yet
        fence.cancel()
    assert store.head() == 1
    with store.fence() as fence:
        fence.append(("a", "s"), "k", 4)
    assert store.head() == 3


def test_next_sequence_is_what_expected_sequence_must_be(store: ep.Store) -> None:
    assert store.next_sequence("acct:1") == 0
    store.append(("acct:1", "eu"), "deposit", 1, expected_sequence=store.next_sequence("acct:1"))
    store.append(("acct:1", "us"), "deposit", 1, expected_sequence=store.next_sequence("acct:1"))
    assert store.next_sequence("acct:1") == 2
    assert store.next_sequence("acct:2") == 0


def test_stats_count_visible_events(store: ep.Store) -> None:
    store.append(("a", "s"), "k", 1)
    with store.fence() as fence:
        fence.append(("a", "s"), "k", 2)
        assert store.stats()["visible_events"] == 1
        fence.cancel()
    stats = store.stats()
    assert (stats["events"], stats["visible_events"]) == (2, 1)


def test_cursor_after_delivers_strictly_after_that_sequence(store: ep.Store) -> None:
    store.append_batch([(("a", "s"), "k", i) for i in range(5)])
    assert [e.global_sequence for e in store.cursor(ep.Region.all(), after=2).poll_batch(10)] == [3, 4]
    with pytest.raises(ep.InvalidArgument, match="after"):
        store.cursor(ep.Region.all(), after=-1)


def test_reset_checkpoint_starts_a_cursor_over(store: ep.Store, data_dir: Path) -> None:
    store.append_batch([(("a", "s"), "k", i) for i in range(3)])
    cursor = store.cursor(ep.Region.entity("a"))
    cursor.poll_batch(10)
    cursor.commit("reader")
    with pytest.raises(ep.CursorCheckpointRegionMismatch, match=r"reset_checkpoint\('reader'\)"):
        store.cursor(ep.Region.all()).resume("reader")
    assert store.reset_checkpoint("reader") is True
    assert not (data_dir / "cursors" / "reader.ckpt").exists()
    assert store.reset_checkpoint("reader") is False
    fresh = store.cursor(ep.Region.all())
    assert fresh.resume("reader") is False
    assert len(fresh.poll_batch(10)) == 3
    with pytest.raises(ep.InvalidCheckpointId):
        store.reset_checkpoint("../escape")


def test_store_locked_names_the_holder_process(store: ep.Store, data_dir: Path) -> None:
    with pytest.raises(ep.StoreLocked) as locked:
        ep.Store.open(data_dir)
    assert locked.value.pid == os.getpid()
    assert locked.value.path == str(data_dir)
    assert f"process {os.getpid()}" in str(locked.value)


def test_a_path_that_is_a_file_is_a_usage_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "hostname"
    not_a_dir.write_text("box\n")
    for options in ({}, {"read_only": True}):
        with pytest.raises(ep.InvalidConfig, match="not a directory"):
            ep.Store.open(not_a_dir, **options)  # type: ignore[arg-type]
    assert not_a_dir.read_text() == "box\n"


def test_a_path_under_a_file_is_a_usage_error(tmp_path: Path) -> None:
    a_file = tmp_path / "hostname"
    a_file.write_text("box\n")
    with pytest.raises(ep.InvalidConfig, match="cannot be made: a parent of it is a file"):
        ep.Store.open(a_file / "data" / "deeper")
    assert a_file.read_text() == "box\n"


def test_a_read_only_open_of_a_dir_without_a_store_refuses_and_creates_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ep.InvalidConfig, match="holds no eventpak store"):
        ep.Store.open(empty, read_only=True)
    assert list(empty.iterdir()) == []
