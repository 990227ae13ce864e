"""``eventpak checkpoints`` and ``eventpak dead-letters``, end to end in subprocesses.

Checked against a known store: every durable checkpoint with its region identity, position,
saved time and lag (``--json`` compared with ``store.checkpoints()``, plain lines), every dead
letter of one checkpoint or of all (``--json`` compared with ``store.dead_letters()``, the parked
event as ``inspect --json`` prints it), refusals (not a store, unknown checkpoint: exit 1,
nothing created), usage errors (exit 2), and ``checkpoints`` beside a live shared-mode process
that commits a checkpoint while the command runs again and again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import eventpak as ep
import pytest
from cli_helpers import (
    SAFETY_NET_S,
    Writer,
    assert_refused,
    assert_usage_error,
    json_lines,
    run_cli,
    snapshot,
    start_writers,
)
from eventpak.dead_letters import park

R = ep.Region


@pytest.fixture
def writers() -> Iterator[Callable[[Path], Writer]]:
    yield from start_writers()


def _fail(message: str) -> ValueError:
    try:
        raise ValueError(message)
    except ValueError as exc:
        return exc


@pytest.fixture(scope="module")
def ops_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed store: acct:1 and acct:2 with 10 deposits each (alternating), checkpoint
    ``mailer`` (entity acct:1) at the 4th of its events, ``fresh`` (kind note) never committed,
    ``audit`` (everything) caught up; two dead letters of ``mailer``, one of ``audit``."""
    data_dir = tmp_path_factory.mktemp("ops") / "data"
    with ep.Store.open(data_dir) as store:
        for i in range(10):
            store.append(("acct:1", "eu"), "deposit", {"n": i})
            store.append(("acct:2", "us"), "deposit", {"n": i})
        mailer = store.cursor(R.entity("acct:1"))
        assert len(mailer.poll_batch(4)) == 4
        mailer.commit("mailer")
        store.cursor(R.all().with_kind("note")).commit("fresh")
        events = store.query(R.all())
        assert park(store, "mailer", events[2], _fail("bad amount\nsecond line"), 3)
        assert park(store, "mailer", events[6], _fail("again \x1b[2J\x07"), 2)
        assert park(store, "audit", events[1], _fail("audit failed"), 1)
        audit = store.cursor(R.all())
        while audit.poll_batch(1000):
            pass
        audit.commit("audit")
    return data_dir


def test_checkpoints_json_lists_every_checkpoint_with_its_lag(ops_store: Path) -> None:
    done = run_cli("checkpoints", str(ops_store), "--json")
    assert done.returncode == 0, done.stderr
    records = json_lines(done.stdout)
    with ep.Store.open(ops_store, read_only=True, shared=True) as store:
        infos = store.checkpoints()
    assert [r["checkpoint_id"] for r in records] == ["audit", "fresh", "mailer"]
    keys = {"checkpoint_id", "region_identity", "position", "saved_at_us", "lag_events", "lag_seconds"}
    for record, info in zip(records, infos, strict=True):
        assert set(record) == keys
        for key in keys - {"lag_seconds"}:  # the lag in seconds grows with the time of the call
            assert record[key] == getattr(info, key), key
    audit, fresh, mailer = records
    # 20 deposits and 3 dead letters: audit read all 23.
    assert (audit["region_identity"], audit["position"], audit["lag_events"], audit["lag_seconds"]) == (
        R.all().checkpoint_identity,
        22,
        0,
        0.0,
    )
    assert (fresh["region_identity"], fresh["position"], fresh["lag_events"]) == (
        R.all().with_kind("note").checkpoint_identity,
        None,
        0,
    )
    # acct:1's events are 0, 2, 4, ...: 4 read (position 6), 6 behind.
    assert (mailer["region_identity"], mailer["position"], mailer["lag_events"]) == (
        R.entity("acct:1").checkpoint_identity,
        6,
        6,
    )
    assert mailer["lag_seconds"] > 0


def test_checkpoints_plain_lines(ops_store: Path) -> None:
    done = run_cli("checkpoints", str(ops_store))
    assert done.returncode == 0, done.stderr
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        ("audit", "entity=*|scope=*|kind=*|clock=*", "22", "0"),
        ("fresh", "entity=*|scope=*|kind=note|clock=*", "-", "0"),
        ("mailer", "entity=acct:1|scope=*|kind=*|clock=*", "6", "6"),
    ]
    assert all(len(r) == 6 for r in rows)
    assert float(rows[2][5]) > 0


def test_a_corrupt_checkpoint_is_named_after_the_others_and_exits_1(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    with ep.Store.open(data_dir) as store:
        store.append_batch([(("acct:1", "eu"), "deposit", i) for i in range(3)])
        store.cursor(R.all()).commit("a-fresh")
        cursor = store.cursor(R.all())
        assert len(cursor.poll_batch(2)) == 2
        cursor.commit("c-late")
    (data_dir / "cursors" / "b-bad.ckpt").write_bytes(b"not a checkpoint")
    before = snapshot(data_dir, data_only=True)
    done = run_cli("checkpoints", str(data_dir))
    assert done.returncode == 1
    assert [line.split("\t")[:3] for line in done.stdout.splitlines()] == [
        ["a-fresh", R.all().checkpoint_identity, "-"],
        ["c-late", R.all().checkpoint_identity, "1"],
    ]
    assert "b-bad.ckpt" in done.stderr and "Traceback" not in done.stderr
    as_json = run_cli("checkpoints", str(data_dir), "--json")
    assert as_json.returncode == 1 and "b-bad.ckpt" in as_json.stderr
    assert [r["checkpoint_id"] for r in json_lines(as_json.stdout)] == ["a-fresh", "c-late"]
    # dead-letters does not read checkpoint files: the damaged one stays out of its way
    assert run_cli("dead-letters", str(data_dir)).returncode == 0
    assert snapshot(data_dir, data_only=True) == before


def test_checkpoints_of_a_store_without_any(tmp_path: Path) -> None:
    with ep.Store.open(tmp_path / "d") as store:
        store.append(("a", "s"), "k", 1)
    for args in ((), ("--json",)):
        done = run_cli("checkpoints", str(tmp_path / "d"), *args)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_dead_letters_json_of_one_checkpoint(ops_store: Path) -> None:
    done = run_cli("dead-letters", str(ops_store), "mailer", "--json")
    assert done.returncode == 0, done.stderr
    records = json_lines(done.stdout)
    with ep.Store.open(ops_store, read_only=True, shared=True) as store:
        letters = store.dead_letters("mailer")
        parked = [store.query(R.all())[i] for i in (2, 6)]
    assert len(records) == len(letters) == 2
    for record, letter, event in zip(records, letters, parked, strict=True):
        assert set(record) == {
            "checkpoint_id",
            "event",
            "error_type",
            "message",
            "traceback",
            "attempts",
            "parked_at_us",
        }
        assert record["checkpoint_id"] == "mailer"
        assert (record["error_type"], record["message"], record["traceback"]) == (
            letter.error_type,
            letter.message,
            letter.traceback,
        )
        assert (record["attempts"], record["parked_at_us"]) == (letter.attempts, letter.parked_at_us)
        assert record["event"]["event_id"] == str(event.event_id)
        assert record["event"]["global_sequence"] == event.global_sequence
        assert record["event"]["payload"] == event.payload
        assert record["event"]["hash"] == event.hash.hex()
    assert [(r["message"], r["attempts"], r["error_type"]) for r in records] == [
        ("bad amount\nsecond line", 3, "ValueError"),
        ("again \x1b[2J\x07", 2, "ValueError"),
    ]
    assert "ValueError: again \x1b[2J\x07" in records[1]["traceback"]


def test_dead_letters_of_every_checkpoint_in_plain_lines(ops_store: Path) -> None:
    done = run_cli("dead-letters", str(ops_store))
    assert done.returncode == 0, done.stderr
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    # Checkpoints in id order, each one's dead letters oldest first; a newline in a message is
    # written \n, so one dead letter stays one line, and other control characters (a terminal
    # escape sequence quoted from a payload) \xNN, so none reaches the terminal raw.
    assert [r[:7] for r in rows] == [
        ["audit", "1", "acct:2", "deposit", "1", "ValueError", "audit failed"],
        ["mailer", "2", "acct:1", "deposit", "3", "ValueError", "bad amount\\nsecond line"],
        ["mailer", "6", "acct:1", "deposit", "2", "ValueError", "again \\x1b[2J\\x07"],
    ]
    assert all(len(r) == 8 for r in rows)
    every = json_lines(run_cli("dead-letters", str(ops_store), "--json").stdout)
    assert [(r["checkpoint_id"], r["event"]["global_sequence"]) for r in every] == [
        ("audit", 1),
        ("mailer", 2),
        ("mailer", 6),
    ]


def test_dead_letters_that_a_worker_parked(tmp_path: Path) -> None:
    """A real worker with ``dead_letter_after``: what it parked is what the command lists, and its
    checkpoint has moved past the poison events."""
    data_dir = tmp_path / "d"
    done_event = threading.Event()

    def handler(batch: list[ep.Event], _store: ep.Store, _witness: object) -> None:
        for event in batch:
            if event.payload.get("poison"):
                raise ValueError(f"poison {event.payload['i']}")
            if event.payload.get("last"):
                done_event.set()

    with ep.Store.open(data_dir) as store:
        store.append_batch(
            [(("order:1", "eu"), "placed", {"i": i, "poison": i in (3, 7)}) for i in range(10)]
        )
        store.append(("order:1", "eu"), "placed", {"i": 10, "last": True})
        config = ep.CursorWorkerConfig(checkpoint_id="mailer", dead_letter_after=2)
        handle = store.cursor_worker(R.entity("order"), handler, config)
        assert done_event.wait(SAFETY_NET_S), "the worker did not get past its dead letters"
        handle.stop_and_join(timeout=SAFETY_NET_S)
        letters = store.dead_letters("mailer")
    done = run_cli("dead-letters", str(data_dir), "--json")
    assert done.returncode == 0, done.stderr
    records = json_lines(done.stdout)
    assert [(r["checkpoint_id"], r["event"]["global_sequence"], r["message"]) for r in records] == [
        ("mailer", 3, "poison 3"),
        ("mailer", 7, "poison 7"),
    ]
    assert [r["attempts"] for r in records] == [letter.attempts for letter in letters]
    assert all(r["error_type"] == "ValueError" and "ValueError: poison" in r["traceback"] for r in records)
    (checkpoint,) = json_lines(run_cli("checkpoints", str(data_dir), "--json").stdout)
    assert (checkpoint["checkpoint_id"], checkpoint["position"], checkpoint["lag_events"]) == (
        "mailer",
        10,
        0,
    )


def test_dead_letters_of_a_checkpoint_without_any(ops_store: Path) -> None:
    done = run_cli("dead-letters", str(ops_store), "fresh", "--json")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_dead_letters_of_an_unknown_checkpoint_exit_1(ops_store: Path) -> None:
    before = snapshot(ops_store, data_only=True)
    assert_refused(run_cli("dead-letters", str(ops_store), "nobody"), "no checkpoint 'nobody'")
    assert snapshot(ops_store, data_only=True) == before


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("dead-letters", "{dir}", "a/b"), ("invalid checkpoint id",)),
        (("dead-letters", "{dir}", "x" * 201), ("invalid checkpoint id",)),
        (("dead-letters", "{dir}", "a", "b"), ("unrecognized",)),
        (("checkpoints", "{dir}", "extra"), ("unrecognized",)),
        (("checkpoints",), ("DIR",)),
        (("dead-letters",), ("DIR",)),
    ],
)
def test_usage_errors_exit_2(ops_store: Path, args: tuple[str, ...], words: tuple[str, ...]) -> None:
    before = snapshot(ops_store)
    done = run_cli(*(arg.format(dir=ops_store) for arg in args))
    assert_usage_error(done, *words)
    assert snapshot(ops_store) == before


@pytest.mark.parametrize(
    "command", [("checkpoints",), ("dead-letters",), ("dead-letters", "mailer")], ids=" ".join
)
@pytest.mark.parametrize("kind", ["empty dir", "file", "missing"])
def test_refuse_what_is_not_a_store_and_create_nothing(
    tmp_path: Path, command: tuple[str, ...], kind: str
) -> None:
    target = tmp_path / "target"
    if kind == "empty dir":
        target.mkdir()
    elif kind == "file":
        target.write_text("mine\n")
    before = snapshot(tmp_path)
    done = run_cli(command[0], str(target), *command[1:])
    assert_refused(done, str(target))
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", ["checkpoints", "dead-letters"])
def test_help(command: str) -> None:
    done = run_cli(command, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: python -m eventpak {command}")
    assert "--json" in done.stdout and "DIR" in done.stdout


def test_checkpoints_beside_a_live_shared_writer(tmp_path: Path, writers: Callable[[Path], Writer]) -> None:
    data_dir = tmp_path / "d"
    writer = writers(data_dir)
    writer.append("orders", "placed", 5)
    assert writer.checkpoint("mailer", "orders", 2) == 1

    def listed() -> list[tuple[str, int | None, int | None]]:
        done = run_cli("checkpoints", str(data_dir), "--json")
        assert done.returncode == 0, done.stderr
        return [(r["checkpoint_id"], r["position"], r["lag_events"]) for r in json_lines(done.stdout)]

    assert listed() == [("mailer", 1, 3)]
    writer.append("orders", "placed", 2)
    assert listed() == [("mailer", 1, 5)]  # the other process's appends count at once
    assert writer.checkpoint("mailer", "orders", 4) == 5
    assert writer.checkpoint("archive", "orders", 100) == 6
    assert listed() == [("archive", 6, 0), ("mailer", 5, 1)]
    letters = run_cli("dead-letters", str(data_dir), "--json")
    assert (letters.returncode, letters.stdout) == (0, "")
    writer.close()
