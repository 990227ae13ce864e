"""The read commands of the command line, end to end in subprocesses: ``inspect``, ``tail``
(``-n``, ``-f``), ``stats --json`` and ``verify --json``, and ``bench``.

Checked against a known workload: ``--json`` output parsed and compared field by field with the
store's own events, region filter options against the events the same region queries in this
process (and a few spelled out), exit statuses (0 ok, 1 refused or problem found, 2 usage error,
130 on SIGINT, 143 on SIGTERM), nothing created in what is not a store, plain lines without
escape sequences when the output is not a terminal, and the commands beside a live shared-mode
writer in another process (``tail -f`` prints what that process appends after it started).
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest
from cli_helpers import (
    ANSI_ESCAPE,
    SAFETY_NET_S,
    Lines,
    Writer,
    assert_refused,
    assert_usage_error,
    cli_command,
    json_lines,
    run_cli,
    snapshot,
    start_writers,
)
from conftest import read_frames, segment_paths

R = ep.Region
WHEN = datetime.datetime(2030, 5, 17, 8, 30, 15, 250_000, tzinfo=datetime.UTC)
EVENT_KEYS = {
    "tags",
    "global_sequence",
    "event_id",
    "entity",
    "scope",
    "kind",
    "entity_sequence",
    "timestamp_us",
    "timestamp",
    "causation_id",
    "correlation_id",
    "payload_version",
    "stored_payload_version",
    "prev_hash",
    "hash",
    "payload",
}


def fill(store: ep.Store) -> None:
    """The known workload: 14 events over namespaced entities, two scopes, five kinds, payloads
    of every kind of value, a causal link and a payload version."""
    a1, sub, a10, user = (
        ep.Coordinate("acct:1", "eu"),
        ep.Coordinate("acct:1:sub", "eu"),
        ep.Coordinate("acct:10", "eu"),
        ep.Coordinate("user:7", "us"),
    )
    opened = store.append(a1, "opened", {"owner": "ann", "tags": ["a", "b"]})
    store.append(a1, "deposit", {"amount": 10}, caused_by=opened)
    store.append(sub, "opened", "sub-account")
    store.append(a10, "opened", None)
    store.append(a1, "deposit", {"amount": 2.5, "raw": b"\x00\xffbin"})
    store.append(user, "note.added", {"at": WHEN, "text": 'tab\there "quoted" \\ newline\nend'})
    store.append(a1, "withdraw", 7, payload_version=2)
    store.append(sub, "deposit", [1, (2, 3)])
    store.append(user, "note.removed", True)
    store.append(a10, "deposit", {"amount": 1})
    store.append(a1, "note.added", "ünïcode ✓")
    store.append_batch([(user, "note.added", 1), (user, "note.added", 2), (a1, "deposit", {"amount": 3})])


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed store holding the known workload (the read commands never change it)."""
    data_dir = tmp_path_factory.mktemp("cli") / "data"
    with ep.Store.open(data_dir) as store:
        fill(store)
    return data_dir


@pytest.fixture(scope="module")
def events(workload: Path) -> list[ep.Event]:
    with ep.Store.open(workload, read_only=True, shared=True) as store:
        found = store.query(R.all())
        for event in found:
            _ = event.payload  # decoded while the store is open
    return found


def expected_record(event: ep.Event) -> dict[str, Any]:
    """What ``inspect --json`` must print for ``event``, spelled out independently."""
    return {
        "global_sequence": event.global_sequence,
        "event_id": str(event.event_id),
        "entity": event.entity,
        "scope": event.scope,
        "kind": event.kind,
        "entity_sequence": event.entity_sequence,
        "timestamp_us": event.timestamp_us,
        "timestamp": event.timestamp.isoformat(),
        "causation_id": None if event.causation_id is None else str(event.causation_id),
        "correlation_id": str(event.correlation_id),
        "payload_version": event.payload_version,
        "stored_payload_version": event.stored_payload_version,
        "prev_hash": event.prev_hash.hex(),
        "hash": event.hash.hex(),
        "tags": list(event.tags),
        "payload": event.payload,  # replaced below where JSON cannot carry it as is
    }


# --- inspect --------------------------------------------------------------------------------------


@pytest.mark.parametrize("script", [False, True], ids=["python -m", "console script"])
def test_inspect_json_prints_every_event_keyed_by_attribute_names(
    workload: Path, events: list[ep.Event], script: bool
) -> None:
    done = run_cli("inspect", str(workload), "--json", script=script)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    records = json_lines(done.stdout)
    assert len(records) == len(events) == 14
    for record, event in zip(records, events, strict=True):
        assert set(record) == EVENT_KEYS
        want = expected_record(event)
        # JSON has no bytes, datetimes or tuples: the documented spellings.
        if event.global_sequence == 4:
            want["payload"] = {"amount": 2.5, "raw": {"$bytes": base64.b64encode(b"\x00\xffbin").decode()}}
        if event.global_sequence == 5:
            want["payload"] = {"at": WHEN.isoformat(), "text": 'tab\there "quoted" \\ newline\nend'}
        if event.global_sequence == 7:
            want["payload"] = [1, [2, 3]]
        assert record == want
    # A few values spelled out, not only copied from the store.
    assert records[1]["causation_id"] == records[0]["event_id"]
    assert records[1]["correlation_id"] == records[0]["correlation_id"] == records[0]["event_id"]
    assert records[6]["payload_version"] == records[6]["stored_payload_version"] == 2
    assert [r["entity_sequence"] for r in records if r["entity"] == "acct:1"] == [0, 1, 2, 3, 4, 5]
    assert records[10]["payload"] == "ünïcode ✓"
    assert uuid.UUID(records[0]["event_id"]).version == 7


def test_inspect_plain_prints_one_tab_separated_line_per_event(
    workload: Path, events: list[ep.Event]
) -> None:
    done = run_cli("inspect", str(workload))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(events)
    for line, event in zip(lines, events, strict=True):
        fields = line.split("\t")
        assert len(fields) == 7, line
        seq, time, entity, scope, kind, clock, payload = fields
        assert (int(seq), entity, scope, kind, int(clock)) == (
            event.global_sequence,
            event.entity,
            event.scope,
            event.kind,
            event.entity_sequence,
        )
        assert time == event.timestamp.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        json.loads(payload)  # the payload's JSON text
    assert lines[0].endswith('\t{"owner": "ann", "tags": ["a", "b"]}')
    # A payload's tab and newline stay inside its JSON text: still one line per event.
    assert lines[5].endswith('"text": "tab\\there \\"quoted\\" \\\\ newline\\nend"}')
    assert ANSI_ESCAPE not in done.stdout


def _sequences(done: subprocess.CompletedProcess[str]) -> list[int]:
    assert done.returncode == 0, done.stderr
    return [record["global_sequence"] for record in json_lines(done.stdout)]


REGIONS: list[tuple[tuple[str, ...], ep.Region, list[int]]] = [
    ((), R.all(), list(range(14))),
    (("--entity", "acct:1"), R.entity("acct:1"), [0, 1, 2, 4, 6, 7, 10, 13]),
    (("--entity", "acct:1", "--exact"), R.entity("acct:1", exact=True), [0, 1, 4, 6, 10, 13]),
    (("--scope", "us"), R.scope("us"), [5, 8, 11, 12]),
    (
        ("--entity", "acct", "--scope", "eu"),
        R.entity("acct").with_scope("eu"),
        [0, 1, 2, 3, 4, 6, 7, 9, 10, 13],
    ),
    (("--kind", "opened"), R.all().with_kind("opened"), [0, 2, 3]),
    (("--kind", "opened", "--kind", "withdraw"), R.all().with_kinds(["opened", "withdraw"]), [0, 2, 3, 6]),
    (("--kind-prefix", "note."), R.all().with_kind_prefix("note."), [5, 8, 10, 11, 12]),
    (
        ("--entity", "acct:1", "--exact", "--clock", "1:2"),
        R.entity("acct:1", exact=True).with_clock_range(1, 2),
        [1, 4],
    ),
    (("--clock", ":0"), R.all().with_clock_range(0, 0), [0, 2, 3, 5]),
    (("--clock", "3"), R.all().with_clock_range(3, 3), [6, 12]),
    (("--clock", "4:"), R.all().with_clock_range(4, 2**64 - 1), [10, 13]),
    (("--entity", "user:7", "--kind", "note.added"), R.entity("user:7").with_kind("note.added"), [5, 11, 12]),
]


@pytest.mark.parametrize(
    ("args", "region", "expected"), REGIONS, ids=[" ".join(a) or "all" for a, _, _ in REGIONS]
)
def test_inspect_region_options_select_the_regions_events(
    workload: Path, args: tuple[str, ...], region: ep.Region, expected: list[int]
) -> None:
    with ep.Store.open(workload, read_only=True, shared=True) as store:
        assert [e.global_sequence for e in store.query(region)] == expected
    assert _sequences(run_cli("inspect", str(workload), "--json", *args)) == expected
    plain = run_cli("inspect", str(workload), *args)
    assert [int(line.split("\t")[0]) for line in plain.stdout.splitlines()] == expected


def test_inspect_tag_options_select_events_carrying_every_tag(tmp_path: Path) -> None:
    data_dir = tmp_path / "tagged"
    with ep.Store.open(data_dir) as store:
        store.append(("course:c1", "school"), "created", {}, tags=["course:c1"])
        store.append(("sub:1", "school"), "subscribed", {}, tags=["course:c1", "student:s7"])
        store.append(("sub:2", "school"), "subscribed", {}, tags=["course:c2", "student:s7"])
    assert _sequences(run_cli("inspect", str(data_dir), "--json", "--tag", "course:c1")) == [0, 1]
    both = ("--json", "--tag", "course:c1", "--tag", "student:s7")
    assert _sequences(run_cli("inspect", str(data_dir), *both)) == [1]
    records = json_lines(run_cli("inspect", str(data_dir), "--json", "--tag", "student:s7").stdout)
    assert [r["tags"] for r in records] == [["course:c1", "student:s7"], ["course:c2", "student:s7"]]
    bad = run_cli("inspect", str(data_dir), "--tag", "bad\ttag")
    assert bad.returncode == 2 and "tag" in bad.stderr  # a tag the store refuses: a usage error


def test_inspect_after_and_limit(workload: Path) -> None:
    assert _sequences(run_cli("inspect", str(workload), "--json", "--after", "9")) == [10, 11, 12, 13]
    assert _sequences(run_cli("inspect", str(workload), "--json", "--limit", "3")) == [0, 1, 2]
    args = ("--json", "--kind", "deposit", "--after", "1", "--limit", "2")
    assert _sequences(run_cli("inspect", str(workload), *args)) == [4, 7]
    assert _sequences(run_cli("inspect", str(workload), "--json", "--after", "13")) == []


def test_inspect_pages_through_a_log_longer_than_one_query(tmp_path: Path) -> None:
    with ep.Store.open(tmp_path / "d") as store:
        for start in range(0, 2500, 500):
            store.append_batch([(("e", "s"), "k", i) for i in range(start, start + 500)])
    assert _sequences(run_cli("inspect", str(tmp_path / "d"), "--json")) == list(range(2500))
    assert _sequences(run_cli("inspect", str(tmp_path / "d"), "--json", "--limit", "1001")) == list(
        range(1001)
    )


def test_inspect_of_an_empty_store_prints_nothing(tmp_path: Path) -> None:
    with ep.Store.open(tmp_path / "d"):
        pass
    for args in ((), ("--json",)):
        done = run_cli("inspect", str(tmp_path / "d"), *args)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


# --- tail -------------------------------------------------------------------------------------------


def test_tail_prints_the_newest_events_of_a_region(workload: Path) -> None:
    assert _sequences(run_cli("tail", str(workload), "--json")) == list(range(4, 14))  # 10 by default
    assert _sequences(run_cli("tail", str(workload), "--json", "-n", "3")) == [11, 12, 13]
    assert _sequences(run_cli("tail", str(workload), "--json", "-n", "100")) == list(range(14))
    assert _sequences(run_cli("tail", str(workload), "--json", "-n", "2", "--entity", "acct:10")) == [3, 9]
    assert _sequences(run_cli("tail", str(workload), "--json", "-n", "0")) == []
    plain = run_cli("tail", str(workload), "-n", "2", "--kind", "opened")
    assert [line.split("\t")[:5][::4] for line in plain.stdout.splitlines()] == [
        ["2", "opened"],
        ["3", "opened"],
    ]


def test_tail_finds_the_last_events_of_a_rare_region_in_a_long_log(tmp_path: Path) -> None:
    with ep.Store.open(tmp_path / "d") as store:
        store.append(("rare", "s"), "k", "first")
        store.append(("rare", "s"), "k", "second")
        for start in range(0, 6000, 1000):
            store.append_batch([(("common", "s"), "k", i) for i in range(start, start + 1000)])
    assert _sequences(run_cli("tail", str(tmp_path / "d"), "--json", "-n", "5", "--entity", "rare")) == [0, 1]


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test started; any still running at teardown is killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def writers() -> Iterator[Callable[[Path], Writer]]:
    yield from start_writers()


def start_cli(
    processes: list[subprocess.Popen[str]], *args: str, script: bool = False
) -> tuple[subprocess.Popen[str], Lines]:
    proc = subprocess.Popen(
        cli_command(*args, script=script), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    processes.append(proc)
    assert proc.stdout is not None
    return proc, Lines(proc.stdout)


@pytest.mark.parametrize(
    ("stop", "status", "script"),
    [(signal.SIGINT, 130, False), (signal.SIGTERM, 143, False), (signal.SIGINT, 130, True)],
    ids=["SIGINT", "SIGTERM", "SIGINT console script"],
)
def test_tail_follows_what_another_process_appends_and_ends_cleanly_on_a_signal(
    tmp_path: Path,
    processes: list[subprocess.Popen[str]],
    writers: Callable[[Path], Writer],
    stop: signal.Signals,
    status: int,
    script: bool,
) -> None:
    data_dir = tmp_path / "d"
    with ep.Store.open(data_dir) as store:
        store.append(("w", "s"), "tick", "old-0")
        store.append(("other", "s"), "tick", "elsewhere")
        store.append(("w", "s"), "tick", "old-1")
    # tail -f starts first; the service opens the dir after it (tail -f does not lock it out).
    tail, lines = start_cli(
        processes, "tail", str(data_dir), "-f", "-n", "1", "--entity", "w", "--json", script=script
    )
    first = json_lines(lines.next("the newest event already there"))
    assert [(r["global_sequence"], r["payload"]) for r in first] == [(2, "old-1")]
    writer = writers(data_dir)
    appended = writer.append("w", "tick", 3)
    assert appended == [3, 4, 5]
    got = [json_lines(line)[0] for line in lines.take(3, "events appended by the writer")]
    assert [(r["global_sequence"], r["entity"], r["payload"]) for r in got] == [
        (3, "w", {"n": 0}),
        (4, "w", {"n": 1}),
        (5, "w", {"n": 2}),
    ]
    # An event outside the region is not printed: the next line is the next event of "w".
    assert writer.append("other", "tick", 1) == [6]
    assert writer.append("w:x", "tock", 1) == [7]  # in w's namespace
    record = json_lines(lines.next("the namespaced event"))[0]
    assert (record["global_sequence"], record["entity"], record["kind"]) == (7, "w:x", "tock")
    assert tail.poll() is None  # still following
    tail.send_signal(stop)
    assert tail.wait(timeout=SAFETY_NET_S) == status
    assert lines.rest() == []  # nothing after the last event
    assert tail.stderr is not None
    stderr = tail.stderr.read()
    assert stderr == ("eventpak: interrupted\n" if stop == signal.SIGINT else "eventpak: terminated\n")
    writer.close()  # the writer went on undisturbed and closes cleanly
    with ep.Store.open(data_dir, read_only=True) as store:
        assert store.head() == 7


def test_tail_follows_in_plain_lines(
    tmp_path: Path, processes: list[subprocess.Popen[str]], writers: Callable[[Path], Writer]
) -> None:
    data_dir = tmp_path / "d"
    writer = writers(data_dir)  # the writer makes the store; tail -f joins it
    writer.append("w", "tock", 1)
    tail, lines = start_cli(processes, "tail", str(data_dir), "-f", "-n", "1", "--kind", "tock")
    assert lines.next("the event already there").startswith("0\t")  # tail -f is following now
    writer.append("w", "tick", 2)  # not of the region
    writer.append("w", "tock", 1)
    fields = lines.next("the new tock event").split("\t")
    assert (fields[0], fields[2], fields[3], fields[4], fields[5], fields[6]) == (
        "3",
        "w",
        "s",
        "tock",
        "3",
        '{"n": 0}',
    )
    tail.send_signal(signal.SIGINT)
    assert tail.wait(timeout=SAFETY_NET_S) == 130
    assert lines.rest() == []
    writer.close()


# --- beside a live shared-mode writer ---------------------------------------------------------------


def test_read_commands_work_beside_a_live_shared_writer(
    tmp_path: Path, writers: Callable[[Path], Writer]
) -> None:
    data_dir = tmp_path / "d"
    writer = writers(data_dir)
    first = writer.append("acct:1", "deposit", 4)
    second = writer.append("acct:2", "deposit", 2)
    inspect = run_cli("inspect", str(data_dir), "--json", "--entity", "acct:1")
    assert _sequences(inspect) == first
    assert [r["payload"] for r in json_lines(inspect.stdout)] == [{"n": i} for i in range(4)]
    assert _sequences(run_cli("inspect", str(data_dir), "--json")) == first + second
    stats = run_cli("stats", str(data_dir), "--json")
    assert stats.returncode == 0, stats.stderr
    assert json_lines(stats.stdout)[0]["events"] == 6
    verify = run_cli("verify", str(data_dir), "--json")
    assert verify.returncode == 0, verify.stderr
    assert json_lines(verify.stdout)[0] == {
        "ok": True,
        "events": 6,
        "segments": 1,
        "bytes": json_lines(verify.stdout)[0]["bytes"],
        "problems": [],
        "problems_not_listed": 0,
    }
    assert _sequences(run_cli("tail", str(data_dir), "--json", "-n", "1")) == second[-1:]
    # The writer goes on after the readers came and went.
    third = writer.append("acct:1", "withdraw", 1)
    assert third == [6]
    assert _sequences(run_cli("inspect", str(data_dir), "--json", "--entity", "acct:1")) == first + third
    writer.close()


# --- stats and verify as JSON -------------------------------------------------------------------------


def test_stats_json_is_the_stores_statistics(workload: Path) -> None:
    done = run_cli("stats", str(workload), "--json")
    assert done.returncode == 0, done.stderr
    (stats,) = json_lines(done.stdout)
    with ep.Store.open(workload, read_only=True, shared=True) as store:
        expected = dict(store.stats())
    assert set(stats) == set(expected)
    assert (stats["events"], stats["visible_events"], stats["entities"], stats["scopes"], stats["kinds"]) == (
        14,
        14,
        4,
        2,
        5,
    )
    for key in ("events", "segments", "bytes", "entities", "scopes", "kinds", "sync"):
        assert stats[key] == expected[key], key


def damage_a_frame(data_dir: Path) -> int:
    """Flips the last byte of the second frame of the first segment (not the last frame: an open
    with the index checkpoint does not read it); returns that frame's sequence."""
    segment = segment_paths(data_dir)[0]
    frame = read_frames(segment)[1]
    data = bytearray(segment.read_bytes())
    data[frame.end - 1] ^= 0x5A
    segment.write_bytes(bytes(data))
    return frame.global_sequence


def test_verify_json_of_a_healthy_and_of_a_damaged_store(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    with ep.Store.open(data_dir) as store:
        fill(store)
    healthy = run_cli("verify", str(data_dir), "--json")
    assert healthy.returncode == 0, healthy.stderr
    (report,) = json_lines(healthy.stdout)
    assert (report["ok"], report["events"], report["problems"]) == (True, 14, [])
    damage_a_frame(data_dir)
    frame = read_frames(segment_paths(data_dir)[0])[1]
    damaged = run_cli("verify", str(data_dir), "--json")
    assert damaged.returncode == 1, damaged.stderr
    (report,) = json_lines(damaged.stdout)
    assert report["ok"] is False
    # Open checks every frame: the damaged log refuses to open, and that refusal is the problem.
    ((problem,),) = [report["problems"]]
    assert set(problem) == {"path", "offset", "sequence", "reason"}
    assert Path(problem["path"]).resolve() == segment_paths(data_dir)[0].resolve()
    assert frame.offset <= problem["offset"] < frame.end
    assert "refuses to open" in problem["reason"]
    plain = run_cli("verify", str(data_dir))
    assert plain.returncode == 1
    assert "damaged: 1 problem(s)" in plain.stdout and "refuses to open" in plain.stdout
    # Other commands refuse with a message (exit 1), never a traceback.
    assert_refused(run_cli("inspect", str(data_dir)), "corrupt")


# --- refusals and usage errors ---------------------------------------------------------------------


READ_COMMANDS = [("stats",), ("inspect",), ("inspect", "--json"), ("tail",), ("tail", "-f"), ("verify",)]


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
@pytest.mark.parametrize("kind", ["empty dir", "dir of other files", "file", "missing"])
def test_read_commands_refuse_what_is_not_a_store_and_create_nothing(
    tmp_path: Path, command: tuple[str, ...], kind: str
) -> None:
    target = tmp_path / "target"
    if kind == "empty dir":
        target.mkdir()
    elif kind == "dir of other files":
        target.mkdir()
        (target / "notes.txt").write_text("mine\n")
    elif kind == "file":
        target.write_text("mine\n")
    before = snapshot(tmp_path)
    done = run_cli(command[0], str(target), *command[1:])
    assert_refused(done, str(target))
    assert done.stdout == ""
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_read_commands_refuse_a_store_held_exclusively(tmp_path: Path, command: tuple[str, ...]) -> None:
    with ep.Store.open(tmp_path / "d") as store:
        store.append(("a", "s"), "k", 1)
        done = run_cli(command[0], str(tmp_path / "d"), *command[1:])
        assert_refused(done, "locked", "exclusive")
        store.append(("a", "s"), "k", 2)  # the owner is undisturbed


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("inspect", "{dir}", "--exact"), ("--exact needs --entity",)),
        (("inspect", "{dir}", "--entity", "a/b"), ("forbidden character",)),
        (("inspect", "{dir}", "--scope", "a|b"), ("forbidden character",)),
        (("inspect", "{dir}", "--kind", "x", "--kind-prefix", "y"), ("not allowed with",)),
        (("inspect", "{dir}", "--clock", "5:1"), ("start 5 > end 1",)),
        (("inspect", "{dir}", "--clock", "x"), ("--clock",)),
        (("inspect", "{dir}", "--clock", "-1:"), ("--clock",)),
        (("inspect", "{dir}", "--limit", "0"), ("--limit", "at least 1")),
        (("inspect", "{dir}", "--after", "-1"), ("--after",)),
        (("inspect",), ("DIR",)),
        (("inspect", "{dir}", "extra"), ("unrecognized",)),
        (("tail", "{dir}", "-n", "-1"), ("-n",)),
        (("tail", "{dir}", "--nope"), ("--nope",)),
        (("stats", "{dir}", "--jsn"), ("--jsn",)),
        (("bench", "--events", "0"), ("--events",)),
        (("frobnicate", "{dir}"), ("invalid choice",)),
    ],
)
def test_usage_errors_exit_2_and_touch_nothing(
    tmp_path: Path, args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    data_dir = tmp_path / "d"
    with ep.Store.open(data_dir) as store:
        store.append(("a", "s"), "k", 1)
    before = snapshot(tmp_path)
    done = run_cli(*(arg.format(dir=data_dir) for arg in args), cwd=tmp_path)
    assert_usage_error(done, *words)
    assert done.stdout == ""
    assert snapshot(tmp_path) == before


def test_a_closed_stdout_ends_a_listing_quietly(tmp_path: Path) -> None:
    with ep.Store.open(tmp_path / "d") as store:
        store.append_batch([(("e", "s"), "k", "x" * 200) for _ in range(3000)])
    proc = subprocess.Popen(
        cli_command("inspect", str(tmp_path / "d")), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith("0\t")
    proc.stdout.close()  # as `| head -1` does
    assert proc.wait(timeout=SAFETY_NET_S) == 1
    assert "Traceback" not in proc.stderr.read()


def test_output_stays_plain_when_colour_is_forced_but_not_a_terminal(workload: Path) -> None:
    env = {**os.environ, "FORCE_COLOR": "1", "TERM": "xterm-256color", "COLUMNS": "80"}
    for args in (("inspect", str(workload)), ("stats", str(workload)), ("verify", str(workload))):
        done = run_cli(*args, env=env)  # run_cli asserts that no escape sequence was printed
        assert done.returncode == 0, done.stderr
        assert "┃" not in done.stdout and "━" not in done.stdout and "━" not in done.stderr


def test_an_output_encoding_without_unicode_gets_escapes_not_an_error(workload: Path) -> None:
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    plain = run_cli(
        "inspect", str(workload), "--entity", "acct:1", "--exact", "--kind", "note.added", env=env
    )
    assert plain.returncode == 0, plain.stderr
    # The payload's JSON text holds the characters; the ASCII stream writes them escaped.
    assert plain.stdout.endswith('\t"\\xfcn\\xefcode \\u2713"\n'), plain.stdout
    done = run_cli("inspect", str(workload), "--json", "--kind", "note.added", "--entity", "acct:1", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.isascii()
    assert [r["payload"] for r in json_lines(done.stdout)] == ["ünïcode ✓"]


# --- bench ----------------------------------------------------------------------------------------------

BENCH_SMALL = ("--events", "250", "--durable-events", "5", "--payload-bytes", "20")
BENCH_CASES = [
    ("append", "always", 5),
    ("append", "batch", 250),
    ("append", "never", 250),
    ("append_batch of 100", "batch", 250),
    ("query whole log", None, 755),
    ("cursor whole log", None, 755),
]


def test_bench_json_in_a_temporary_dir_leaves_nothing(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    done = run_cli("bench", *BENCH_SMALL, "--json", env={**os.environ, "TMPDIR": str(temp)}, cwd=cwd)
    assert done.returncode == 0, done.stderr
    cases = json_lines(done.stdout)
    assert [(c["case"], c["sync"], c["events"]) for c in cases] == BENCH_CASES
    for case in cases:
        assert set(case) == {"case", "sync", "events", "seconds", "events_per_second"}
        assert case["seconds"] > 0 and case["events_per_second"] > 0
    assert list(temp.iterdir()) == []  # the temporary store is gone
    assert list(cwd.iterdir()) == []


def test_bench_in_a_given_dir_keeps_a_verifiable_store(tmp_path: Path) -> None:
    data_dir = tmp_path / "bench"
    done = run_cli("bench", str(data_dir), *BENCH_SMALL)
    assert done.returncode == 0, done.stderr
    lines = [line.split("\t") for line in done.stdout.splitlines()]
    assert [(f[0], f[1], int(f[2])) for f in lines] == [(c, s or "-", n) for c, s, n in BENCH_CASES]
    assert all(float(f[3]) > 0 and float(f[4]) > 0 for f in lines)
    with ep.Store.open(data_dir, read_only=True) as store:
        assert store.head() == 755 - 1
        assert store.verify().ok
        assert len(store.query(R.all().with_kind("bench.tick"))) == 755


@pytest.mark.parametrize("kind", ["dir of other files", "a store", "file"])
def test_bench_refuses_a_dir_that_is_not_new_or_empty(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "target"
    if kind == "dir of other files":
        target.mkdir()
        (target / "notes.txt").write_text("mine\n")
    elif kind == "a store":
        with ep.Store.open(target) as store:
            store.append(("a", "s"), "k", 1)
    else:
        target.write_text("mine\n")
    before = snapshot(tmp_path)
    assert_usage_error(run_cli("bench", str(target), *BENCH_SMALL))
    assert snapshot(tmp_path) == before
