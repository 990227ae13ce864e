"""Backups of a store shared by several processes: taken in this process while another one
appends, and taken by a second process while this one appends; and ``eventpak backup DIR DEST``
on the command line (which opens DIR as a shared reader)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path

import eventpak as ep
import pytest
from backup_support import assert_is_backup_of, fill
from cli_helpers import run_cli
from shared_helpers import SAFETY_NET_S, Children, children_fixture, open_shared


@pytest.fixture
def spawn() -> Iterator[Children]:
    yield from children_fixture()


def child_appender(conn: Connection, path: str) -> None:
    """Appends batches until told to stop; says ``going`` after its first one."""
    store = open_shared(path)
    i = 0
    while not conn.poll():
        store.append_batch([((f"child-{i % 4}", "bank"), "loaded", {"i": i + k}) for k in range(2)])
        if i == 0:
            conn.send(("going", store.head()))
        i += 2
    conn.recv()
    conn.send(("done", store.head()))
    store.close()


def child_backup(conn: Connection, path: str, dest: str) -> None:
    """Opens the shared store, backs it up into ``dest`` when told, reports the backup."""
    store = open_shared(path)
    conn.send(("open", None))
    conn.recv()
    report = store.backup(dest)
    conn.send(("done", (report.through, report.events, report.incremental)))
    store.close()


def test_a_backup_while_another_process_appends(spawn: Children, tmp_path: Path) -> None:
    path = tmp_path / "data"
    store = open_shared(path)
    fill(store, 100)
    writer = spawn(child_appender, str(path))
    writer.recv("going")
    head_before = store.head()
    report = store.backup(tmp_path / "backup")
    # The other process goes on past the snapshot (a blocking wait for a later commit).
    assert store.cursor(ep.Region.all(), after=report.through).pull_batch(1, SAFETY_NET_S)
    writer.send("stop")
    last = writer.recv("done")
    writer.join()
    assert report.through is not None and report.through >= head_before
    assert last > report.through  # the other process went on appending
    assert (report.through + 1 - 100) % 2 == 0  # its batches are whole in the copy
    assert_is_backup_of(store, tmp_path / "backup", report)
    store.close()


def test_a_second_process_backs_up_while_this_one_appends(spawn: Children, tmp_path: Path) -> None:
    path = tmp_path / "data"
    store = open_shared(path)
    fill(store, 100)
    backer = spawn(child_backup, str(path), str(tmp_path / "backup"))
    backer.recv("open")
    backer.send("go")
    appended = 0
    while not backer.has_message():
        store.append(("here", "bank"), "appended", {"n": appended})
        appended += 1
    through, events, incremental = backer.recv("done", SAFETY_NET_S)
    backer.join()
    assert through is not None and through >= 99 and not incremental
    report = ep.BackupReport(through, events, 0, incremental)
    assert_is_backup_of(store, tmp_path / "backup", report)
    store.close()


def test_the_command_line_backs_up_and_then_incrementally(tmp_path: Path) -> None:
    with ep.Store.open(tmp_path / "data") as store:
        fill(store, 200)
    first = run_cli("backup", str(tmp_path / "data"), str(tmp_path / "backup"))
    assert first.returncode == 0, first.stderr
    assert "full backup of 200 events (through sequence 199)" in first.stdout
    copied = sum(p.stat().st_size for p in (tmp_path / "backup").rglob("*") if p.is_file())
    assert copied < 1e6 and f"{copied / 1e3:,.1f} kB copied" in first.stdout  # not "0.0 MB"
    with ep.Store.open(tmp_path / "data") as store:
        fill(store, 5, start=200)
    second = run_cli("backup", str(tmp_path / "data"), str(tmp_path / "backup"), "--json")
    assert second.returncode == 0, second.stderr
    record = json.loads(second.stdout)
    assert record["incremental"] is True and record["through"] == 204 and record["events"] == 205
    with ep.Store.open(tmp_path / "data", read_only=True) as store:
        assert_is_backup_of(store, tmp_path / "backup", ep.BackupReport(204, 205, 0, True))
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "x").write_text("x")
    refused = run_cli("backup", str(tmp_path / "data"), str(tmp_path / "foreign"))
    assert refused.returncode == 1
    assert refused.stderr.startswith("eventpak: invalid config: backup destination")
    assert sorted(p.name for p in (tmp_path / "foreign").iterdir()) == ["x"]
