"""The data dir a store reaches, and who holds it: a store opened with a relative path keeps
using the folder it opened when the process changes its working directory, and a refused
opener is never told of a process that no longer holds the dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import eventpak as ep
import pytest


def test_a_store_opened_by_a_relative_path_stays_in_its_folder_after_chdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(home)
    store = ep.Store.open("data", segment_max_bytes=4096, sync="never")
    try:
        assert store.path == "data"  # error messages name the path as given
        holder = store.cursor_worker(
            ep.Region.all(), lambda *args: None, ep.CursorWorkerConfig(checkpoint_id="mailer", standby=True)
        )
        monkeypatch.chdir(elsewhere)
        # Enough to seal several 4 KiB segments: each seal writes a record beside them.
        for i in range(60):
            store.append(("a", "s"), "k", {"i": i, "pad": "x" * 200})
        cursor = store.cursor(ep.Region.all())
        cursor.poll_batch(10)
        cursor.commit("indexer")
        with pytest.raises(ep.CheckpointInUse):  # the lease lies in the same folder as before
            store.cursor_worker(
                ep.Region.all(), lambda *args: None, ep.CursorWorkerConfig(checkpoint_id="mailer")
            )
        holder.stop_and_join()  # saved its checkpoint, in the folder the listing reads
        assert sorted(c.checkpoint_id for c in store.checkpoints()) == ["indexer", "mailer"]
        assert store.verify().ok
    finally:
        store.close()
    assert not (elsewhere / "data").exists()
    assert (home / "data" / "cursors" / "indexer.ckpt").is_file()
    reopened = ep.Store.open(home / "data")
    assert [e.payload["i"] for e in reopened.query(ep.Region.all())] == list(range(60))
    reopened.close()


HOLD_READ_ONLY = """
import sys
import eventpak as ep
store = ep.Store.open(sys.argv[1], read_only=True)
print("open", flush=True)
sys.stdin.read()
"""

WRITE_AND_WAIT = """
import sys
import eventpak as ep
store = ep.Store.open(sys.argv[1])
store.append(("a", "s"), "k", 1)
print("open", flush=True)
sys.stdin.read()
"""


def _start(script: str, path: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline() == "open\n"
    return child


@pytest.mark.parametrize("writer_ends", ["close", "sigkill"])
def test_a_read_only_holder_is_not_reported_as_the_writer_before_it(tmp_path: Path, writer_ends: str) -> None:
    data = tmp_path / "data"
    if writer_ends == "close":
        ep.Store.open(data).close()
    else:
        writer = _start(WRITE_AND_WAIT, data)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    reader = _start(HOLD_READ_ONLY, data)
    try:
        with pytest.raises(ep.StoreLocked) as info:
            ep.Store.open(data)
        assert info.value.pid is None and "(process" not in str(info.value)
    finally:
        reader.kill()
        reader.wait()


def _close_at_once(stores: list[ep.Store]) -> list[ep.EventpakError]:
    """Closes ``stores`` from one thread each, released together; returns what they raised."""
    start = threading.Barrier(len(stores))
    errors: list[ep.EventpakError] = []

    def close(store: ep.Store) -> None:
        start.wait()
        try:
            store.close()
        except ep.EventpakError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=close, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_two_shared_stores_of_one_process_close_at_once(tmp_path: Path) -> None:
    # Each writes its index checkpoint at close: their temp files must not be one file.
    for round in range(20):
        path = tmp_path / f"r{round}"
        stores = [ep.Store.open(path, shared=True, sync="never") for _ in range(2)]
        for i, store in enumerate(stores):
            store.append_batch([(("e", "s"), "k", {"i": i})] * 50)
        assert _close_at_once(stores) == [], f"round {round}"
        with ep.Store.open(path) as store:
            assert len(store.query(ep.Region.all())) == 100 and store.verify().ok
    assert not [n for n in os.listdir(tmp_path / "r0") if n.endswith(".tmp")]


def test_a_link_on_the_path_re_pointed_while_open_does_not_move_the_store(tmp_path: Path) -> None:
    """A deploy switches ``current`` from one release to the next while the old process still
    runs: the old store keeps writing where it opened, and the new release's store is not
    touched by it."""
    old, new, current = tmp_path / "v1", tmp_path / "v2", tmp_path / "current"
    old.mkdir()
    new.mkdir()
    current.symlink_to(old)
    store = ep.Store.open(current / "data", segment_max_bytes=4096, sync="never")
    try:
        assert store.path == str(current / "data")  # messages name the path as given
        store.append(("a", "s"), "k", {"i": -1})
        switched = tmp_path / "switch"
        switched.symlink_to(new)
        switched.replace(current)  # the atomic re-point a deploy does
        other = ep.Store.open(current / "data", segment_max_bytes=4096)
        other.append(("b", "s"), "k", "v2")
        # Enough to seal several 4 KiB segments, and a checkpoint: all in v1.
        for i in range(60):
            store.append(("a", "s"), "k", {"i": i, "pad": "x" * 200})
        cursor = store.cursor(ep.Region.all())
        cursor.poll_batch(10)
        cursor.commit("indexer")
        other.close()
    finally:
        store.close()
    with ep.Store.open(old / "data") as reopened:
        assert [e.payload["i"] for e in reopened.query(ep.Region.all())] == list(range(-1, 60))
        assert reopened.verify().ok
    assert ep.Cursor.load_checkpoint(old / "data", "indexer") is not None
    with ep.Store.open(new / "data") as reopened:
        assert [e.payload for e in reopened.query(ep.Region.all())] == ["v2"]
        assert reopened.verify().ok
    assert ep.Cursor.load_checkpoint(new / "data", "indexer") is None
