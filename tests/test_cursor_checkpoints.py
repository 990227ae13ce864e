"""Durable cursor checkpoints: value type, atomic save, self-checking load (every damage fails
closed), checkpoint id rules (no escape from cursors/), and symlink refusal."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import eventpak as ep
import pytest

CKPT = ep.CursorCheckpoint
IDENTITY = ep.Region.entity("entity:roundtrip").checkpoint_identity


@pytest.fixture
def cwd(tmp_path, monkeypatch) -> Path:
    """Runs the test in an empty working directory, to catch writes relative to it."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _ckpt_path(data_dir: Path, checkpoint_id: str) -> Path:
    return data_dir / "cursors" / f"{checkpoint_id}.ckpt"


def _all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# --- value type ----------------------------------------------------------------------------------


def test_checkpoint_value_type():
    checkpoint = CKPT(42, True, None, IDENTITY)
    assert checkpoint.position == 42
    assert checkpoint.started is True
    assert checkpoint.process_boot_ns is None
    assert checkpoint.region_identity == IDENTITY
    assert checkpoint == CKPT(42, True, None, IDENTITY)
    assert checkpoint == CKPT(position=42, started=True, region_identity=IDENTITY)
    assert hash(checkpoint) == hash(CKPT(42, True, None, IDENTITY))
    assert checkpoint != CKPT(42, False, None, IDENTITY)
    assert checkpoint != CKPT(43, True, None, IDENTITY)
    assert checkpoint != CKPT(42, True, 1, IDENTITY)
    assert checkpoint != CKPT(42, True, None, None)
    bare = CKPT(0, False)
    assert (bare.process_boot_ns, bare.region_identity) == (None, None)


# --- round trip ----------------------------------------------------------------------------------


def test_checkpoint_round_trips_through_save_and_load(tmp_path, cwd):
    data_dir = tmp_path / "data"
    checkpoint = CKPT(42, True, None, IDENTITY)
    ep.Cursor.save_checkpoint(data_dir, "batpak-test-durable-cursor", checkpoint)
    loaded = ep.Cursor.load_checkpoint(data_dir, "batpak-test-durable-cursor")
    assert loaded == checkpoint
    assert _ckpt_path(data_dir, "batpak-test-durable-cursor").is_file()
    # the checkpoint stays under the data dir, never relative to the working directory
    assert _all_files(cwd) == []
    assert _all_files(data_dir) == ["cursors", "cursors/batpak-test-durable-cursor.ckpt"]


@pytest.mark.parametrize(
    "checkpoint",
    [
        CKPT(0, False),
        CKPT(0, True, None, "entity=*|scope=*|kind=*|clock=*"),
        CKPT(2**64 - 1, True, 2**64 - 1, "x" * 5000),
        CKPT(7, True, 123456789, ""),
        CKPT(9, False, 0, "ünïcödé identity"),
    ],
    ids=["unstarted", "zero-started", "max-values", "empty-identity", "unicode"],
)
def test_checkpoint_round_trips_every_field(tmp_path, checkpoint):
    ep.Cursor.save_checkpoint(tmp_path, "rt", checkpoint)
    assert ep.Cursor.load_checkpoint(tmp_path, "rt") == checkpoint


def test_missing_checkpoint_loads_as_none(tmp_path):
    assert ep.Cursor.load_checkpoint(tmp_path / "nowhere", "absent") is None
    (tmp_path / "cursors").mkdir()
    assert ep.Cursor.load_checkpoint(tmp_path, "absent") is None


def test_save_accepts_str_and_pathlike(tmp_path):
    ep.Cursor.save_checkpoint(str(tmp_path), "as-str", CKPT(1, True))
    assert ep.Cursor.load_checkpoint(tmp_path, "as-str") == CKPT(1, True)


def test_save_replaces_the_previous_checkpoint_atomically(tmp_path):
    for position in range(20):
        ep.Cursor.save_checkpoint(tmp_path, "w", CKPT(position, True, None, IDENTITY))
        assert ep.Cursor.load_checkpoint(tmp_path, "w") == CKPT(position, True, None, IDENTITY)
    # no temp file is left behind
    assert _all_files(tmp_path / "cursors") == ["w.ckpt"]


def test_checkpoint_file_format_header(tmp_path):
    ep.Cursor.save_checkpoint(tmp_path, "fmt", CKPT(5, True, None, IDENTITY))
    data = _ckpt_path(tmp_path, "fmt").read_bytes()
    assert data[:8] == b"EVPKCUR\0"
    (version,) = struct.unpack_from("<I", data, 8)
    assert version == 1
    assert IDENTITY.encode() in data


# --- fail closed on damage -----------------------------------------------------------------------


def test_every_flipped_byte_fails_closed(tmp_path):
    good = CKPT(41, True, 7, IDENTITY)
    ep.Cursor.save_checkpoint(tmp_path, "w", good)
    path = _ckpt_path(tmp_path, "w")
    original = path.read_bytes()
    for offset in range(len(original)):
        for mask in (0x01, 0x80, 0xFF):
            damaged = bytearray(original)
            damaged[offset] ^= mask
            path.write_bytes(bytes(damaged))
            with pytest.raises(ep.CursorCheckpointCorrupt) as info:
                ep.Cursor.load_checkpoint(tmp_path, "w")
            assert Path(info.value.path).resolve() == path.resolve()
            assert info.value.reason
    path.write_bytes(original)
    assert ep.Cursor.load_checkpoint(tmp_path, "w") == good


def test_every_truncation_fails_closed(tmp_path):
    ep.Cursor.save_checkpoint(tmp_path, "w", CKPT(41, True, None, IDENTITY))
    path = _ckpt_path(tmp_path, "w")
    original = path.read_bytes()
    for cut in range(len(original)):
        path.write_bytes(original[:cut])
        with pytest.raises(ep.CursorCheckpointCorrupt) as info:
            ep.Cursor.load_checkpoint(tmp_path, "w")
        assert Path(info.value.path).resolve() == path.resolve()


@pytest.mark.parametrize(
    "content",
    [b"not-msgpack", b"", b"EVPKCUR\0", b"\0" * 64, b"EVPKCUR\0" + b"\xff" * 60],
    ids=["garbage", "empty", "magic-only", "zeros", "magic-then-junk"],
)
def test_foreign_content_fails_closed(tmp_path, content):
    (tmp_path / "cursors").mkdir()
    path = _ckpt_path(tmp_path, "w")
    path.write_bytes(content)
    with pytest.raises(ep.CursorCheckpointCorrupt) as info:
        ep.Cursor.load_checkpoint(tmp_path, "w")
    assert Path(info.value.path).resolve() == path.resolve()
    assert isinstance(info.value, ep.EventpakError)


def test_trailing_bytes_fail_closed(tmp_path):
    ep.Cursor.save_checkpoint(tmp_path, "w", CKPT(3, True, None, IDENTITY))
    path = _ckpt_path(tmp_path, "w")
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ep.CursorCheckpointCorrupt):
        ep.Cursor.load_checkpoint(tmp_path, "w")


def test_a_directory_in_place_of_the_checkpoint_fails_closed(tmp_path):
    _ckpt_path(tmp_path, "w").mkdir(parents=True)
    with pytest.raises(ep.CursorCheckpointCorrupt):
        ep.Cursor.load_checkpoint(tmp_path, "w")


# --- checkpoint ids ------------------------------------------------------------------------------

BAD_IDS = [
    "",
    "/",
    "a/b",
    "../x",
    "..",
    "a..b",
    "|",
    "a|b",
    "=",
    "a=b",
    "a\0b",
    "a\nb",
    "\t",
    "a\x7fb",
    "x" * 201,
    "é" * 101,  # 202 bytes
]


@pytest.mark.parametrize("bad", BAD_IDS, ids=lambda s: repr(s)[:20])
def test_invalid_checkpoint_ids_are_refused_everywhere(tmp_path, cwd, bad):
    with pytest.raises(ep.InvalidCheckpointId):
        ep.Cursor.save_checkpoint(tmp_path, bad, CKPT(1, True))
    with pytest.raises(ep.InvalidCheckpointId):
        ep.Cursor.load_checkpoint(tmp_path, bad)
    with pytest.raises(ep.InvalidCheckpointId):
        ep.CursorWorkerConfig(checkpoint_id=bad)
    with pytest.raises(ValueError):
        ep.Cursor.load_checkpoint(tmp_path, bad)
    assert _all_files(tmp_path) == ["cwd"]
    assert _all_files(cwd) == []


def test_invalid_checkpoint_id_is_a_value_error_and_an_eventpak_error():
    assert issubclass(ep.InvalidCheckpointId, ValueError)
    assert issubclass(ep.InvalidCheckpointId, ep.EventpakError)


@pytest.mark.parametrize("good", ["w", "x" * 200, "é" * 100, ".hidden.", "a.b-c_d:e f", "ünï"])
def test_valid_checkpoint_ids_name_a_file_in_cursors(tmp_path, good):
    ep.CursorWorkerConfig(checkpoint_id=good)
    ep.Cursor.save_checkpoint(tmp_path, good, CKPT(3, True))
    assert ep.Cursor.load_checkpoint(tmp_path, good) == CKPT(3, True)
    assert _all_files(tmp_path) == ["cursors", f"cursors/{good}.ckpt"]


# --- symlinks ------------------------------------------------------------------------------------


def test_symlinked_cursors_dir_is_refused_on_save(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (data_dir / "cursors").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ep.CheckpointWriteFailed) as info:
        ep.Cursor.save_checkpoint(data_dir, "w", CKPT(1, True))
    assert info.value.checkpoint_id == "w"
    assert info.value.cause
    assert list(elsewhere.iterdir()) == []


def test_symlinked_checkpoint_file_is_refused_on_save(tmp_path):
    data_dir = tmp_path / "data"
    (data_dir / "cursors").mkdir(parents=True)
    target = tmp_path / "target.bin"
    target.write_bytes(b"precious")
    _ckpt_path(data_dir, "w").symlink_to(target)
    with pytest.raises(ep.CheckpointWriteFailed) as info:
        ep.Cursor.save_checkpoint(data_dir, "w", CKPT(1, True))
    assert info.value.checkpoint_id == "w"
    assert target.read_bytes() == b"precious"
    assert _ckpt_path(data_dir, "w").is_symlink()


def test_loading_a_symlinked_checkpoint_fails_closed(tmp_path):
    real = tmp_path / "real"
    ep.Cursor.save_checkpoint(real, "w", CKPT(1, True, None, IDENTITY))
    data_dir = tmp_path / "data"
    (data_dir / "cursors").mkdir(parents=True)
    _ckpt_path(data_dir, "w").symlink_to(_ckpt_path(real, "w"))
    with pytest.raises(ep.CursorCheckpointCorrupt) as info:
        ep.Cursor.load_checkpoint(data_dir, "w")
    assert Path(info.value.path).name == "w.ckpt"
    # a dangling link is no "missing checkpoint" either
    os.unlink(_ckpt_path(data_dir, "w"))
    _ckpt_path(data_dir, "w").symlink_to(tmp_path / "does-not-exist")
    with pytest.raises(ep.CursorCheckpointCorrupt):
        ep.Cursor.load_checkpoint(data_dir, "w")


@pytest.mark.parametrize("shared", [False, True], ids=["exclusive", "shared"])
def test_committing_a_position_past_the_head_saves_it_without_waiting_for_events(data_dir, shared) -> None:
    # A cursor made with after= beyond the head: its commit syncs what was written and saves
    # the position, rather than wait for events up to it that nobody may ever write.
    import threading

    store = ep.Store.open(data_dir, sync="never", shared=shared)
    store.append(("a", "s"), "k", 1)  # head 0
    cursor = store.cursor(ep.Region.all(), after=5)
    committing = threading.Thread(target=cursor.commit, args=("past-head",), daemon=True)
    committing.start()
    committing.join(timeout=60)
    assert not committing.is_alive(), "commit() waited for events past the head"
    saved = ep.Cursor.load_checkpoint(data_dir, "past-head")
    assert saved is not None and saved.position == 5
    store.append(("a", "s"), "k", 2)  # sequence 1: still before the saved position
    resumed = store.cursor(ep.Region.all())
    assert resumed.resume("past-head")
    assert resumed.poll_batch(10) == []
    store.close()
