"""A real full disk: a 512 KiB tmpfs fills up under the store (ENOSPC). The writer is
poisoned, nothing after the failure is acknowledged, and the data survives a reopen once
space is back. Skipped, with the reason, only where the machine cannot mount a tmpfs."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import eventpak as ep
import pytest


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "mnt"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_disk_full_poisons_the_writer_and_loses_nothing_acknowledged(small_fs: Path, tmp_path: Path) -> None:
    data_dir = small_fs / "data"
    acked: list[int] = []
    coord = ep.Coordinate("acct:1", "eu")
    with ep.Store.open(data_dir, sync="always", enable_index_checkpoint=False) as store:
        with pytest.raises(ep.StorageFailed) as failed:
            for i in range(100_000):
                acked.append(store.append(coord, "deposit", {"i": i, "pad": "x" * 300}).global_sequence)
        # The operating system's error survives: a full disk reads as one, not as prose.
        assert isinstance(failed.value, OSError)
        assert failed.value.errno == errno.ENOSPC
        assert failed.value.path == str(data_dir)
        assert "No space left on device" in str(failed.value)
        # Nothing after the failure is acknowledged, even once space is freed again; the
        # poisoned writer reports the same failure, errno included.
        with pytest.raises(ep.StorageFailed) as again:
            store.append(coord, "deposit", {"after": True})
        assert again.value.errno == errno.ENOSPC
        assert store.stats()["writer_failure"] is not None
    assert len(acked) > 100
    # Give the data room again (as an operator would) and reopen.
    moved = tmp_path / "moved"
    shutil.copytree(data_dir, moved)
    with ep.Store.open(moved) as store:
        events = store.query(ep.Region.all())
        assert [e.global_sequence for e in events][: len(acked)] == acked
        assert len(events) in (len(acked), len(acked) + 1)  # the failed append may be whole on disk
        assert all(e.payload["i"] == e.global_sequence for e in events)
        assert store.append(coord, "deposit", {"i": len(events)}).global_sequence == len(events)
    assert os.path.ismount(small_fs)


def test_a_backup_onto_a_full_disk_fails_alone(small_fs: Path, tmp_path: Path) -> None:
    """The backup fails with the OS error; its message says the store is unaffected, and the
    store goes on appending."""
    with ep.Store.open(tmp_path / "data", sync="never") as store:
        store.append_batch([(("acct:1", "eu"), "deposit", {"pad": "x" * 1000})] * 1000)
        with pytest.raises(ep.StorageFailed) as failed:
            store.backup(small_fs / "backup")
        assert failed.value.errno == errno.ENOSPC
        assert failed.value.context.startswith("backup: ")
        assert str(failed.value).endswith("the store itself is unaffected")
        assert store.stats()["writer_failure"] is None
        assert store.append(("acct:1", "eu"), "deposit", {}).global_sequence == 1000


def test_a_compaction_that_fails_before_its_commit_fails_alone(small_fs: Path) -> None:
    """Rewriting segments onto a full disk stops the compaction with nothing changed: the
    message says the store is unaffected, the writer goes on and no event is lost."""
    with ep.Store.open(small_fs / "data", segment_max_bytes=16384, sync="never") as store:
        items = [((f"e:{i % 9}", "s"), "drop" if i % 2 else "keep", {"pad": "x" * 300}) for i in range(100)]
        for _ in range(4):
            store.append_batch(items)
        store.sync()
        stat = os.statvfs(small_fs)
        with open(small_fs / "filler", "wb") as filler, contextlib.suppress(OSError):
            filler.write(b"\0" * (stat.f_bavail * stat.f_frsize - 8192))  # leave about 8 KiB free
        with pytest.raises(ep.StorageFailed) as failed:
            store.compact(ep.Retention(kinds=["drop"]))
        assert failed.value.errno == errno.ENOSPC
        assert failed.value.context.startswith("compaction: ")
        assert str(failed.value).endswith("the store itself is unaffected")
        assert store.stats()["writer_failure"] is None
        (small_fs / "filler").unlink()
        assert len(store.query(ep.Region.all())) == 400
        assert store.append(("e:1", "s"), "keep", {}).global_sequence == 400
        assert store.verify().ok
