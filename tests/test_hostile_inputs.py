"""Hostile names and files (docs/design.md: data model, cursors, errors): coordinates, kinds,
region filters and
checkpoint ids from a corpus of path traversal, NUL, control, separator, over-long and
non-UTF-8 attempts are refused with their typed error and leave the disk untouched; symlinked
``cursors/`` folders and checkpoint files are refused and nothing is written through them; the
store creates files 0600 and folders 0700; of two processes racing to open one data dir,
exactly one wins every time."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest

R = ep.Region
CKPT = ep.CursorCheckpoint(3, True, None, R.all().checkpoint_identity)

# Refused as any name (entity, scope, kind, checkpoint id, region filter value).
COMMON = [
    "../x",
    "..",
    "a/../b",
    "a..b",
    "...",
    "a/b",
    "/abs",  # see _corpus: replaced by an absolute path inside the test's tmp_path
    "a\x00b",
    "\0",
    "\x01",
    "\x1f",
    "\x7f",
    "a\nb",
    "\t",
    "a|b",
    "a=b",
    "=",
    "|",
    "",
]
# Over-long, in bytes: the limits count UTF-8 bytes, not characters.
OVERLONG = {
    "coordinate": ["x" * 1025, "é" * 513],
    "kind": ["k" * 256, "é" * 128],
    "checkpoint": ["c" * 201, "é" * 101],
}
AT_LIMIT = {
    "coordinate": ["x" * 1024, "é" * 512],
    "kind": ["k" * 255, "é" * 127 + "k"],
    "checkpoint": ["c" * 200, "é" * 100],
}
RESERVED_KINDS = ["eventpak.x", "eventpak."]
# Not UTF-8: what os.fsdecode makes of bad bytes, and lone surrogates.
NON_UTF8 = [os.fsdecode(b"acct\xff"), "\udcff", "\ud800x"]


def _corpus(tmp_path: Path, family: str) -> list[str]:
    absolute = str(tmp_path / "escaped")
    return [absolute if v == "/abs" else v for v in COMMON] + OVERLONG[family]


def _snapshot(root: Path) -> dict[str, Any]:
    """Every path under ``root`` with its type, mode and content."""
    shot: dict[str, Any] = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        content = p.read_bytes() if stat.S_ISREG(st.st_mode) else None
        shot[str(p.relative_to(root))] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), content)
    return shot


# --- call sites --------------------------------------------------------------------------------
# Each site takes (store, value) and uses the value in one place; the corpus families say which.

GOOD = ("acct:1", "main")


def _coordinate_sites() -> dict[str, Callable[[ep.Store, str], Any]]:
    return {
        "Coordinate(BAD, scope)": lambda s, v: ep.Coordinate(v, "main"),
        "Coordinate(entity, BAD)": lambda s, v: ep.Coordinate("acct:1", v),
        "append((BAD, scope))": lambda s, v: s.append((v, "main"), "k", 1),
        "append((entity, BAD))": lambda s, v: s.append(("acct:1", v), "k", 1),
        "append_batch tuple": lambda s, v: s.append_batch([(GOOD, "k", 1), ((v, "main"), "k", 2)]),
        "append_batch AppendRequest": lambda s, v: s.append_batch(
            [ep.AppendRequest(GOOD, "k", 1), ep.AppendRequest(("acct:1", v), "k", 2)]
        ),
        "fence.append": lambda s, v: _in_fence(s, lambda f: f.append((v, "main"), "k", 1)),
        "fence.append_batch": lambda s, v: _in_fence(
            s, lambda f: f.append_batch([(GOOD, "k", 1), (("acct:1", v), "k", 2)])
        ),
    }


def _kind_sites() -> dict[str, Callable[[ep.Store, str], Any]]:
    return {
        "append": lambda s, v: s.append(GOOD, v, 1),
        "append_batch tuple": lambda s, v: s.append_batch([(GOOD, "k", 1), (GOOD, v, 2)]),
        "append_batch AppendRequest": lambda s, v: s.append_batch([ep.AppendRequest(GOOD, v, 1)]),
        "fence.append": lambda s, v: _in_fence(s, lambda f: f.append(GOOD, v, 1)),
        "fence.append_batch": lambda s, v: _in_fence(
            s, lambda f: f.append_batch([(GOOD, "k", 1), (GOOD, v, 2)])
        ),
    }


def _region_sites() -> dict[str, tuple[str, Callable[[ep.Store, str], Any]]]:
    return {
        "Region.entity": ("coordinate", lambda s, v: R.entity(v)),
        "Region.scope": ("coordinate", lambda s, v: R.scope(v)),
        "with_scope": ("coordinate", lambda s, v: R.all().with_scope(v)),
        "with_kind": ("kind", lambda s, v: R.all().with_kind(v)),
        "with_kinds": ("kind", lambda s, v: R.entity("acct").with_kinds(["deposit", v])),
        "with_kind_prefix": ("kind", lambda s, v: R.all().with_kind_prefix(v)),
    }


def _checkpoint_sites() -> dict[str, Callable[[ep.Store, str], Any]]:
    return {
        "save_checkpoint": lambda s, v: ep.Cursor.save_checkpoint(s.path, v, CKPT),
        "load_checkpoint": lambda s, v: ep.Cursor.load_checkpoint(s.path, v),
        "validate_checkpoint_id": lambda s, v: ep.Cursor.validate_checkpoint_id(v),
        "CursorWorkerConfig": lambda s, v: ep.CursorWorkerConfig(checkpoint_id=v),
    }


def _in_fence(store: ep.Store, action: Callable[[ep.Fence], Any]) -> None:
    """Runs ``action`` inside an open fence (the fence itself writes hidden.ranges, so the
    disk is compared from inside the fence) and re-raises what it raised."""
    with store.fence() as fence:
        before = _snapshot(Path(store.path))
        try:
            action(fence)
        finally:
            assert _snapshot(Path(store.path)) == before, "the refused fenced append touched the disk"


def _families() -> list[tuple[str, str, str, type[Exception], Callable[[ep.Store, str], Any]]]:
    """(test id, corpus family, site name, expected error, call) for every site."""
    out = []
    for name, call in _coordinate_sites().items():
        out.append((f"coordinate-{name}", "coordinate", name, ep.InvalidCoordinate, call))
    for name, call in _kind_sites().items():
        out.append((f"kind-{name}", "kind", name, ep.InvalidKind, call))
    for name, (family, call) in _region_sites().items():
        out.append((f"region-{name}", family, name, ep.InvalidRegion, call))
    for name, call in _checkpoint_sites().items():
        out.append((f"checkpoint-{name}", "checkpoint", name, ep.InvalidCheckpointId, call))
    return out


SITES = _families()


@pytest.fixture
def seeded(open_store) -> ep.Store:
    store = open_store(sync="always")
    store.append(GOOD, "deposit", {"amount": 1})
    with store.fence() as fence:  # hidden.ranges exists: fences opened by the tests rewrite it unchanged
        fence.append(GOOD, "deposit", {"amount": 2})
    ep.Cursor.save_checkpoint(store.path, "existing", CKPT)
    return store


def _assert_refused(
    tmp_path: Path, store: ep.Store, values: list[str], error: type[Exception], call: Callable[..., Any]
) -> list[str]:
    """Calls ``call(store, v)`` for every value; returns what went wrong, if anything."""
    problems = []
    events = store.stats()["events"]
    for value in values:
        before = _snapshot(tmp_path)
        try:
            call(store, value)
        except error as exc:
            assert isinstance(exc, ep.EventpakError) and isinstance(exc, ValueError)
        except Exception as exc:
            problems.append(f"{value!r}: raised {type(exc).__name__}: {exc} instead of {error.__name__}")
        else:
            problems.append(f"{value!r}: accepted, {error.__name__} expected")
        if _snapshot(tmp_path) != before:
            problems.append(f"{value!r}: the disk changed")
        if store.stats()["events"] != events:
            problems.append(f"{value!r}: stats()['events'] changed")
    return problems


@pytest.mark.parametrize(
    ("family", "site", "error", "call"), [s[1:] for s in SITES], ids=[s[0] for s in SITES]
)
def test_hostile_names_are_refused_with_typed_errors_and_touch_nothing(
    tmp_path, seeded, family, site, error, call
):
    values = _corpus(tmp_path, family)
    if error is ep.InvalidKind:
        values += RESERVED_KINDS  # reserved for the store on append; region filters may name them
    problems = _assert_refused(tmp_path, seeded, values, error, call)
    assert not problems, f"{site}:\n" + "\n".join(problems)
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "escaped.ckpt").exists()


FAMILY_GROUPS = ["coordinate", "kind", "region", "checkpoint"]


@pytest.mark.parametrize("group", FAMILY_GROUPS)
def test_non_utf8_names_are_refused_with_typed_errors(tmp_path, seeded, group):
    """Names that cannot be UTF-8 (os.fsdecode of bad bytes, lone surrogates) are invalid
    names: they get the same typed error as any other invalid name, not a UnicodeEncodeError."""
    problems = []
    for test_id, _family, site, error, call in SITES:
        if test_id.startswith(group + "-"):
            problems += [f"{site}: {p}" for p in _assert_refused(tmp_path, seeded, NON_UTF8, error, call)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("family", ["coordinate", "kind", "checkpoint"])
def test_names_at_the_byte_limits_are_accepted(seeded, family):
    for value in AT_LIMIT[family]:
        assert len(value.encode()) == {"coordinate": 1024, "kind": 255, "checkpoint": 200}[family]
        if family == "coordinate":
            receipt = seeded.append((value, value), "k", 1)
            assert seeded.get(receipt.event_id).coordinate == ep.Coordinate(value, value)
            assert R.entity(value).with_scope(value).matches((value, value), "k")
        elif family == "kind":
            receipt = seeded.append(GOOD, value, 1)
            assert seeded.get(receipt.event_id).kind == value
            assert seeded.query(R.all().with_kind(value)) == [seeded.get(receipt.event_id)]
        else:
            ep.Cursor.save_checkpoint(seeded.path, value, CKPT)
            assert ep.Cursor.load_checkpoint(seeded.path, value) == CKPT
            assert (Path(seeded.path) / "cursors" / f"{value}.ckpt").is_file()


# --- symlinks ----------------------------------------------------------------------------------


def _worker_error(store: ep.Store, checkpoint_id: str) -> BaseException | None:
    handle = store.cursor_worker(
        R.all(),
        lambda batch, _s, _w: ep.CursorWorkerAction.STOP,
        ep.CursorWorkerConfig(checkpoint_id=checkpoint_id),
    )
    try:
        handle.join(timeout=30)
    except ep.EventpakError as exc:
        return exc
    return None


def test_symlinked_cursors_dir_is_refused_and_nothing_is_written_through_it(tmp_path, seeded):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    data = Path(seeded.path)
    for p in (data / "cursors").iterdir():
        p.unlink()
    (data / "cursors").rmdir()
    (data / "cursors").symlink_to(elsewhere, target_is_directory=True)

    with pytest.raises(ep.CheckpointWriteFailed) as info:
        ep.Cursor.save_checkpoint(data, "w", CKPT)
    assert info.value.checkpoint_id == "w"
    assert list(elsewhere.iterdir()) == []
    # a durable worker handles its first batch, then cannot persist it: it stops with the error
    assert isinstance(_worker_error(seeded, "w"), ep.CheckpointWriteFailed)
    assert list(elsewhere.iterdir()) == []
    assert (data / "cursors").is_symlink()


def test_symlinked_checkpoint_file_is_refused_and_nothing_is_written_through_it(tmp_path, seeded):
    data = Path(seeded.path)
    other = tmp_path / "other"
    ep.Cursor.save_checkpoint(other, "w", CKPT)  # a valid checkpoint, elsewhere
    target = other / "cursors" / "w.ckpt"
    original = target.read_bytes()
    link = data / "cursors" / "w.ckpt"
    link.symlink_to(target)

    with pytest.raises(ep.CursorCheckpointCorrupt) as info:
        ep.Cursor.load_checkpoint(data, "w")  # valid content, but not a regular file
    assert info.value.path == str(link)
    with pytest.raises(ep.CheckpointWriteFailed):
        ep.Cursor.save_checkpoint(data, "w", ep.CursorCheckpoint(99, True))
    assert isinstance(_worker_error(seeded, "w"), ep.CursorCheckpointCorrupt)
    assert target.read_bytes() == original
    assert link.is_symlink()


def test_dangling_checkpoint_symlink_is_refused_and_creates_nothing(tmp_path, seeded):
    data = Path(seeded.path)
    missing = tmp_path / "missing.ckpt"
    link = data / "cursors" / "w.ckpt"
    link.symlink_to(missing)
    with pytest.raises(ep.CursorCheckpointCorrupt):
        ep.Cursor.load_checkpoint(data, "w")
    with pytest.raises(ep.CheckpointWriteFailed):
        ep.Cursor.save_checkpoint(data, "w", CKPT)
    assert not missing.exists() and link.is_symlink()


def test_a_symlink_planted_at_the_checkpoint_temp_file_is_not_written_through(tmp_path, seeded):
    """save_checkpoint writes ``cursors/.<id>.ckpt.<pid>.tmp`` and renames it; a symlink
    planted at that name must not send the write elsewhere nor leave the checkpoint as a symlink."""
    data = Path(seeded.path)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (data / "cursors" / f".w.ckpt.{os.getpid()}.tmp").symlink_to(victim)
    try:
        ep.Cursor.save_checkpoint(data, "w", CKPT)
        saved = True
    except ep.CheckpointWriteFailed:
        saved = False  # refusing is fine
    assert victim.read_bytes() == b"precious", "save_checkpoint wrote through a symlinked temp file"
    ckpt = data / "cursors" / "w.ckpt"
    assert not ckpt.is_symlink(), "the checkpoint became a symlink"
    if saved:
        assert ep.Cursor.load_checkpoint(data, "w") == CKPT


# --- file modes --------------------------------------------------------------------------------


def test_store_files_are_0600_and_folders_0700(tmp_path):
    old_umask = os.umask(0)  # modes must come from the store, not from the umask
    try:
        data = tmp_path / "data"
        store = ep.Store.open(data, sync="always", segment_max_bytes=4096)
        for i in range(120):
            store.append(("acct:1", "main"), "deposit", {"i": i, "pad": "x" * 64})
        with store.fence() as fence:
            fence.append(("acct:1", "main"), "deposit", "committed")
        with store.fence() as fence:
            fence.append(("acct:2", "main"), "deposit", "cancelled")
            fence.cancel()
        handle = store.cursor_worker(
            R.all(),
            lambda batch, _s, _w: ep.CursorWorkerAction.STOP,
            ep.CursorWorkerConfig(checkpoint_id="modes"),
        )
        handle.join(timeout=30)
        ep.Cursor.save_checkpoint(data, "direct", CKPT)
        store.close()
        with ep.Store.open(data) as reopened:  # reopen and close again: nothing loosens
            assert reopened.stats()["index_checkpoint"] == "loaded"
        # Shared mode adds its coordination files; they are as private as the rest.
        with ep.Store.open(data, shared=True) as sharing:
            sharing.append(("acct:1", "main"), "deposit", "shared")
    finally:
        os.umask(old_umask)

    files = sorted(p for p in data.rglob("*") if not p.is_dir())
    folders = [data, *sorted(p for p in data.rglob("*") if p.is_dir())]
    names = {str(p.relative_to(data)) for p in files}
    assert {"LOCK", "index.ckpt", "hidden.ranges", "cursors/modes.ckpt", "cursors/direct.ckpt"} <= names
    assert {"leases/modes.lease", "shared/mem", "shared/write.lock"} <= names
    assert len(list((data / "segments").glob("*.seg"))) >= 3, "the test must rotate segments"
    assert {str(p.relative_to(data)) for p in folders} == {".", "segments", "cursors", "leases", "shared"}
    wrong = {
        str(p): oct(stat.S_IMODE(p.lstat().st_mode))
        for p in files
        if stat.S_IMODE(p.lstat().st_mode) != 0o600
    }
    wrong |= {
        str(p): oct(stat.S_IMODE(p.lstat().st_mode))
        for p in folders
        if stat.S_IMODE(p.lstat().st_mode) != 0o700
    }
    assert not wrong, f"wrong modes: {wrong}"


# --- open race ---------------------------------------------------------------------------------

RACES = 200
_RACER = textwrap.dedent(
    """
    import sys
    import eventpak as ep

    me = sys.argv[1]
    for line in sys.stdin:
        cmd, _, path = line.rstrip("\\n").partition(" ")
        try:
            store = ep.Store.open(path)
        except ep.StoreLocked as exc:
            print("locked", exc.path, flush=True)
            continue
        except Exception as exc:
            print("error", repr(exc), flush=True)
            continue
        print("won", flush=True)
        if sys.stdin.readline() != "release\\n":
            break
        store.append(("race", "s"), "won", me)
        store.close()
        print("released", flush=True)
    """
)


def test_two_processes_racing_to_open_a_data_dir_exactly_one_wins(tmp_path):
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    wins = {"a": 0, "b": 0}
    try:
        for i in range(RACES):
            path = str(tmp_path / f"race-{i}")  # fresh: both also race to create it
            order = racers if i % 2 == 0 else racers[::-1]
            for racer in order:  # the command line is the start signal; both wait for it
                assert racer.stdin is not None
                racer.stdin.write(f"open {path}\n")
                racer.stdin.flush()
            answers = [r.stdout.readline().rstrip("\n") for r in racers]  # type: ignore[union-attr]
            assert sorted(a.split(" ", 1)[0] for a in answers) == ["locked", "won"], f"race {i}: {answers}"
            loser_answer = next(a for a in answers if a.startswith("locked"))
            assert loser_answer == f"locked {path}", "StoreLocked carries the path as given"
            winner_index = next(k for k, a in enumerate(answers) if a == "won")
            winner = racers[winner_index]
            winner.stdin.write("release\n")  # type: ignore[union-attr]
            winner.stdin.flush()  # type: ignore[union-attr]
            assert winner.stdout.readline() == "released\n"  # type: ignore[union-attr]
            name = "ab"[winner_index]
            wins[name] += 1
            with ep.Store.open(path) as store:  # the winner really owned it: its one event is there
                assert [e.payload for e in store.query(R.all())] == [name]
    finally:
        for racer in racers:
            assert racer.stdin is not None
            racer.stdin.close()
        for racer in racers:
            racer.wait(timeout=30)
    print(f"open race: {RACES} races, wins {wins}")
    assert sum(wins.values()) == RACES
