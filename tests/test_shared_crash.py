"""Shared mode under SIGKILL: writer processes killed at random instants never block the
others and never cost an acknowledged event.

Several writer processes (tests/shared_crash_writer.py) share one data dir with
``sync="always"`` and append without pause: single appends (some keyed), batches,
compare-and-set appends on shared counters, fences that commit or cancel. The test SIGKILLs a
random writer at a random instant (after its k-th next report line, plus a random delay of up
to 2 ms; or while it opens the store), replaces it with a fresh process, and goes on. Kills land
anywhere: mid-append holding the write lock, mid-fsync, with a fence open, during open. A
replacement first retries its predecessor's unacknowledged keyed append with the same key.
Meanwhile this process holds a ``read_only=True, shared=True`` store whose cursor tails the log.

At the end, the rules of the kill harness (tests/test_kill_harness.py), across processes:

- no writer is blocked: every live writer makes progress after the last kill (and each kill
  waited for the victim's progress, so a writer stuck behind a dead one fails the run);
- nothing acknowledged is lost: every acknowledged event is present with its receipt's
  sequence, id, clock and hash and its exact payload (receipts are durable: sync="always");
- nothing is invented: every visible event is one some writer attempted, with its exact
  coordinate, kind and payload, at most once (a retried keyed append included); an append or
  batch is all or nothing; a compare-and-set that lost wrote nothing;
- fences: events of a fence whose block exited are visible; of a cancelled fence, of a fence
  whose owner died before requesting the commit, hidden; all or none of a fence whose owner
  died after requesting it;
- one dense log: no sequence is given to two events; visible plus hidden events make up
  ``stats()["events"]``; ids rise, timestamps never fall, entity clocks are dense and hash
  chains link; ``verify().ok``;
- every live process's view (each surviving writer's, and this process's) is the same log, and
  so is the log after reopen (with the index checkpoint and without); the cursor delivered the
  visible events exactly, in order.

``EVENTPAK_SHARED_KILLS`` sets the number of kills (default 100; ``make test-extended``: 1000).
``EVENTPAK_SHARED_SEED`` replays a run's kill plan (where a kill lands still depends on timing).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest
from shared_helpers import (
    SAFETY_NET_S,
    R,
    Row,
    check_chains,
    digest,
    open_shared,
    rows,
)

KILLS = int(os.environ.get("EVENTPAK_SHARED_KILLS") or 100)
WRITERS = 3
CHILD = Path(__file__).with_name("shared_crash_writer.py")
PROGRESS = ("ack", "conflict", "fack", "fcancelled")


# --- the writers -------------------------------------------------------------------------------


class WriterProc:
    """One writer process: its report lines, read by a thread as they come."""

    def __init__(self, name: str, config: dict[str, Any], changed: threading.Condition, logs: Path) -> None:
        self.name = name
        self.changed = changed
        self.lines: list[dict[str, Any]] = []
        self.eof = False
        self.killed = False
        self.stderr_path = logs / f"{name}.stderr"
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, str(CHILD), json.dumps(config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
        self.reader = threading.Thread(target=self._read, name=f"read-{name}", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            if not raw.endswith(b"\n"):
                break  # cannot happen with atomic line writes; a partial report is no report
            msg = json.loads(raw)
            with self.changed:
                self.lines.append(msg)
                self.changed.notify_all()
        with self.changed:
            self.eof = True
            self.changed.notify_all()

    def progress(self) -> int:
        return sum(1 for m in self.lines if m["t"] in PROGRESS)

    def has(self, t: str) -> bool:
        return any(m["t"] == t for m in self.lines)

    def failure(self) -> str:
        return (
            f"writer {self.name} (exit {self.proc.poll()}):\n{self.stderr_path.read_text(errors='replace')}"
        )

    def wait_for(self, predicate: Any, what: str) -> None:
        """Waits (on the report lines) until ``predicate(self)``; fails if the writer ended or
        made no such progress within the safety net: a writer blocked by a dead one."""
        deadline = time.monotonic() + SAFETY_NET_S
        with self.changed:
            while not predicate(self):
                if self.eof:
                    pytest.fail(f"writer {self.name} ended while waiting for {what}: {self.failure()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"writer {self.name} blocked: no {what} in {SAFETY_NET_S} s")
                self.changed.wait(left)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.killed = True
        self.reader.join(SAFETY_NET_S)
        assert self.proc.returncode == -signal.SIGKILL, self.failure()
        self.close_pipes()

    def command(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{text}\n".encode())
        self.proc.stdin.flush()

    def close_pipes(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


def plain_acks(lines: list[dict[str, Any]]) -> list[list[Any]]:
    """The receipts of a writer's acknowledged appends outside fences (retries left out: a
    retry may be answered with an event written before)."""
    lines = list(lines)  # a snapshot: the reader thread appends to the list
    atts = {m["op"]: m for m in lines if m["t"] == "att"}
    return [
        r
        for m in lines
        if m["t"] == "ack" and atts[m["op"]]["fence"] is None and atts[m["op"]]["type"] != "retry"
        for r in m["r"]
    ]


def last_unacked_keyed(lines: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The writer's last attempted op, if it is a keyed append left without an answer."""
    atts = [m for m in lines if m["t"] == "att"]
    if not atts:
        return None
    last = atts[-1]
    answered = any(m["t"] in ("ack", "conflict") and m["op"] == last["op"] for m in lines)
    if last["key"] is None or answered or last["type"] not in ("append", "retry"):
        return None
    return {"key": last["key"], "ev": last["ev"]}


# --- the log, as the writers reported it -------------------------------------------------------


@dataclass
class Op:
    op_id: str
    op_type: str
    writer: str
    fence: str | None
    key: str | None
    events: list[list[Any]]  # [entity, scope, kind, payload]
    receipts: list[list[Any]] | None = None  # [seq, id hex, clock, hash hex, durable]
    conflict: bool = False


@dataclass
class Reports:
    ops: list[Op] = field(default_factory=list)
    fences: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    by_writer: dict[str, list[Op]] = field(default_factory=lambda: defaultdict(list))

    def add(self, writer: str, lines: list[dict[str, Any]]) -> None:
        by_id: dict[str, Op] = {}
        for msg in lines:
            t = msg["t"]
            if t == "att":
                op = Op(msg["op"], msg["type"], writer, msg["fence"], msg["key"], msg["ev"])
                self.ops.append(op)
                self.by_writer[writer].append(op)
                by_id[op.op_id] = op
            elif t == "ack":
                by_id[msg["op"]].receipts = msg["r"]
            elif t == "conflict":
                by_id[msg["op"]].conflict = True
            elif t in ("fbeg", "fcommit", "fack", "fcancel", "fcancelled"):
                self.fences[msg["f"]].add(t)


@dataclass
class Tally:
    kills: int = 0
    killed_in_open: int = 0
    killed_mid_op: int = 0
    killed_in_fence: int = 0
    retries: int = 0
    unacked_present: int = 0
    unacked_absent: int = 0
    hidden: int = 0
    conflicts: int = 0
    acked_events: int = 0


def check_log(store: ep.Store, reports: Reports, tally: Tally) -> list[ep.Event]:
    """Checks the log of ``store`` against what the writers reported; returns its events."""
    events = store.query(R.all())
    stats = store.stats()
    n = stats["events"]
    check_chains(events)
    assert store.verify().ok, "verify found problems"
    assert stats["visible_events"] == len(events)
    by_seq = {e.global_sequence: e for e in events}
    tags = Counter(e.payload["tag"] for e in events)
    duplicated = [t for t, c in tags.items() if c > 1]
    assert not duplicated, f"events appended once are in the log twice: {duplicated[:5]}"

    # nothing invented: each visible event is one that was attempted, exactly
    attempted: dict[str, list[Any]] = {}
    for op in reports.ops:
        for ev in op.events:
            attempted[ev[3]["tag"]] = ev
    for e in events:
        sent = attempted.get(e.payload["tag"])
        assert sent is not None, f"event {e.global_sequence} was never attempted: {e.payload}"
        assert [e.entity, e.scope, e.kind, e.payload] == sent, (
            f"event {e.global_sequence} differs from its append"
        )

    # no sequence given to two events, in any process
    owner: dict[int, str] = {}
    for op in reports.ops:
        for r in op.receipts or []:
            assert owner.setdefault(r[0], r[1]) == r[1], f"sequence {r[0]} was acknowledged for two events"
            assert r[0] < n, f"acknowledged sequence {r[0]} beyond the log's {n} events"

    def fence_visible(fence_id: str) -> bool | None:
        flags = reports.fences[fence_id]
        if "fack" in flags:
            return True
        if "fcommit" in flags and "fcancel" not in flags:
            return None  # the owner died after asking for the commit: all or none
        return False

    fence_seen: dict[str, bool] = {}
    hidden_seqs: set[int] = set()
    for op in reports.ops:
        present = [ev[3]["tag"] in tags for ev in op.events]
        if op.receipts is None:
            if op.conflict:
                tally.conflicts += 1
                assert not any(present), f"compare-and-set {op.op_id} lost but wrote"
                continue
            # no answer: the writer died in the call (a retry may have written it since)
            assert all(present) or not any(present), f"op {op.op_id} is partly in the log"
            if op.fence is not None:
                assert not any(present), (
                    f"event of {op.op_id}, unacknowledged in fence {op.fence}, is visible"
                )
            tally.unacked_present += all(present) and bool(present)
            tally.unacked_absent += not any(present)
            continue
        assert len(op.receipts) == len(op.events)
        if op.fence is None:
            visible: bool | None = True
        else:
            visible = fence_visible(op.fence)
            if visible is None:
                visible = fence_seen.setdefault(op.fence, all(present))
            assert fence_seen.setdefault(op.fence, visible) == visible, f"fence {op.fence} partly visible"
        for r, ev, is_present in zip(op.receipts, op.events, present, strict=True):
            seq, event_id, clock, hash_hex, durable = r
            assert durable, f"op {op.op_id}: a receipt under sync='always' is not durable"
            if not visible:
                assert not is_present and seq not in by_seq, f"event {seq} of fence {op.fence} is visible"
                hidden_seqs.add(seq)
                with pytest.raises(ep.EventNotFound):
                    store.get(event_id)
                continue
            tally.acked_events += 1
            found = by_seq.get(seq)
            assert found is not None, f"acknowledged event {seq} ({op.op_id}, {op.op_type}) is missing"
            assert found.payload == ev[3], f"event {seq} is not what {op.op_id} appended"
            got = (found.event_id.hex, found.entity_sequence, found.hash.hex())
            assert got == (event_id, clock, hash_hex), f"event {seq} differs from its receipt"
    # each writer's acknowledged appends are in the log in the order it made them
    for writer, ops in reports.by_writer.items():
        seqs = [r[0] for op in ops if op.receipts and op.op_type != "retry" for r in op.receipts]
        assert seqs == sorted(seqs), f"writer {writer}'s appends are out of order"
    hidden = n - len(events)
    assert hidden_seqs <= set(range(n)) - set(by_seq), "hidden events counted as visible"
    assert len(hidden_seqs) <= hidden
    tally.hidden = hidden
    return events


# --- the run -----------------------------------------------------------------------------------


class Run:
    def __init__(self, path: Path, logs: Path, seed: int, segment_max_bytes: int) -> None:
        self.path = path
        self.segment_max_bytes = segment_max_bytes
        self.logs = logs
        self.rng = random.Random(seed)
        self.changed = threading.Condition()
        self.generation = 0
        self.all: list[WriterProc] = []
        self.live: list[WriterProc] = []
        self.tally = Tally()

    def spawn(self, slot: int, retry: dict[str, Any] | None) -> WriterProc:
        name = f"s{slot}g{self.generation}"
        self.generation += 1
        config = {
            "data_dir": str(self.path),
            "name": name,
            "seed": self.rng.randrange(2**32),
            "retry": retry,
            "segment_max_bytes": self.segment_max_bytes,
        }
        writer = WriterProc(name, config, self.changed, self.logs)
        self.all.append(writer)
        self.tally.retries += retry is not None
        return writer

    def kill(self, writer: WriterProc) -> None:
        writer.kill()
        self.tally.kills += 1
        lines = writer.lines
        self.tally.killed_in_open += not writer.has("open")
        answered = {m["op"] for m in lines if m["t"] in ("ack", "conflict")}
        self.tally.killed_mid_op += any(m["t"] == "att" and m["op"] not in answered for m in lines)
        fences = Counter(m["f"] for m in lines if m["t"] in ("fbeg", "fack", "fcancelled"))
        self.tally.killed_in_fence += any(c == 1 for c in fences.values())

    def kill_slot(self, slot: int) -> WriterProc:
        """Kills the writer in ``slot`` at a random instant."""
        victim = self.live[slot]
        if self.rng.random() < 0.1:
            # during open and recovery, if it is still there (or just after)
            victim.wait_for(lambda w: w.has("start"), "start")
            threading.Event().wait(self.rng.uniform(0, 0.004))
        else:
            victim.wait_for(lambda w: w.has("open"), "open")
            need = len(victim.lines) + self.rng.randint(1, 25)
            victim.wait_for(lambda w: len(w.lines) >= need, "report lines")
            if self.rng.random() < 0.6:
                threading.Event().wait(self.rng.uniform(0, 0.002))  # the kill instant is under test
        self.kill(victim)
        return victim

    def respawn(self, slot: int, victim: WriterProc) -> None:
        """Starts a fresh writer in ``slot``, retrying the victim's unanswered keyed append."""
        self.live[slot] = self.spawn(slot, last_unacked_keyed(victim.lines))

    def stop_all(self) -> None:
        """Ends every writer still running and leaves each one's report lines beside its stderr
        (``logs/<name>.jsonl``), for a failure's post-mortem."""
        for writer in self.all:
            if writer.proc.poll() is None:
                writer.proc.kill()
                writer.proc.wait()
            writer.close_pipes()
            with open(self.logs / f"{writer.name}.jsonl", "w") as out:
                out.writelines(json.dumps(m, ensure_ascii=False) + "\n" for m in writer.lines)


def run_crash_loop(
    tmp_path: Path, writers: int, kills: int, tail: bool, segment_max_bytes: int, reader_first: bool = False
) -> None:
    seed = int(os.environ.get("EVENTPAK_SHARED_SEED") or random.SystemRandom().randrange(2**32))
    print(
        f"shared crash loop: EVENTPAK_SHARED_SEED={seed}, {writers} writers, {kills} kills, "
        f"segment_max_bytes={segment_max_bytes}, in {tmp_path}"
    )
    path = tmp_path / "data"
    logs = tmp_path / "logs"
    logs.mkdir()
    ep.Store.open(path).close()
    run = Run(path, logs, seed, segment_max_bytes)
    observer = open_shared(path, read_only=True) if tail else None
    delivered: list[int] = []
    stop_tail = threading.Event()
    tail_errors: list[BaseException] = []

    def tail_log() -> None:
        assert observer is not None
        cursor = observer.cursor(R.all())
        try:
            while not stop_tail.is_set():
                delivered.extend(e.global_sequence for e in cursor.pull_batch(512, 0.2))
            while batch := cursor.poll_batch(512):
                delivered.extend(e.global_sequence for e in batch)
        except BaseException as exc:
            tail_errors.append(exc)

    tailer = threading.Thread(target=tail_log, name="tail", daemon=True)
    if tail:
        tailer.start()
    try:
        run.live = [run.spawn(slot, None) for slot in range(writers)]
        # what a reader that opened first after a kill showed: its first view, a later view and
        # what its cursor delivered after the first view; each must agree with the final log
        reader_views: list[tuple[list[Row], list[Row], list[int]]] = []
        while run.tally.kills < kills:
            slot = run.rng.randrange(writers)
            victim = run.kill_slot(slot)
            if not reader_first:
                run.respawn(slot, victim)
                continue
            # the writer was alone: this read-only reader starts the next session, over whatever
            # the dead writer left (it cannot repair; the next writer does)
            with open_shared(path, read_only=True) as reader:
                first = reader.query(R.all())
                check_chains(first)
                cursor = reader.cursor(R.all(), after=first[-1].global_sequence if first else None)
                run.respawn(slot, victim)
                fresh = run.live[slot]
                fresh.wait_for(lambda w: len(plain_acks(w.lines)) >= 2, "appends after joining a reader")
                acked = plain_acks(fresh.lines)
                later = rows(reader.query(R.all()))
                # read-your-writes for the reader: what the writer was told is in its view
                assert {r[1] for r in acked} <= {r[1] for r in later}, "the reader misses acknowledged events"
                got = [e.global_sequence for e in cursor.poll_batch(100_000)]
                reader_views.append((rows(first), later, got))
        # nobody is blocked: every live writer (the replacements too) makes progress now
        marks = {w.name: w.progress() for w in run.live}
        for w in run.live:
            w.wait_for(lambda w: w.progress() >= marks[w.name] + 5, "progress after the last kill")
        for w in run.live:
            w.command("stop")
        for w in run.live:
            w.wait_for(lambda w: w.has("stopped"), "stopped")
        stop_tail.set()
        if tail:
            tailer.join(SAFETY_NET_S)
        assert not tail_errors, f"the tailing cursor failed: {tail_errors[0]!r}"
        for w in run.live:
            w.command("report")
        for w in run.live:
            w.wait_for(lambda w: w.has("view"), "view")
        views = [next(m for m in w.lines if m["t"] == "view") for w in run.live]
        live_view: tuple[int, str] | None = None
        if observer is not None:
            events = observer.query(R.all())
            live_view = (len(events), digest(rows(events)))
        for w, view in zip(run.live, views, strict=True):
            assert view["ok"], f"verify in writer {w.name} found problems"
            mine = (view["n"], view["digest"])
            assert live_view is None or mine == live_view, (
                f"writer {w.name} sees another log than this process"
            )
            assert mine == (views[0]["n"], views[0]["digest"]), f"writer {w.name} sees another log"
        for w in run.live:
            w.command("close")
        for w in run.live:
            w.wait_for(lambda w: w.has("closed"), "closed")
            assert w.proc.wait(SAFETY_NET_S) == 0, w.failure()
            w.reader.join(SAFETY_NET_S)
        for w in run.all:
            assert w.killed or w in run.live, f"a writer ended by itself: {w.failure()}"
        if observer is not None:
            observer.close()

        reports = Reports()
        for w in run.all:
            reports.add(w.name, w.lines)
        with ep.Store.open(path) as store:
            events = check_log(store, reports, run.tally)
            final = rows(events)
            assert (len(final), digest(final)) == (views[0]["n"], views[0]["digest"]), (
                "the reopened log differs from the live views"
            )
        with ep.Store.open(path, read_only=True, enable_index_checkpoint=False) as store:
            assert rows(store.query(R.all())) == final, "a full scan reads another log"
        if tail:
            assert delivered == [r[0] for r in final], "the tailing cursor's deliveries differ from the log"
        for first_view, later_view, got in reader_views:
            assert final[: len(first_view)] == first_view, "a reader showed events that are not in the log"
            assert final[: len(later_view)] == later_view, "a reader's later view differs from the log"
            start = len(first_view)
            assert got == [r[0] for r in final[start : start + len(got)]], "a reader's cursor differs"
            assert later_view[start:], "the reader saw nothing of the next writer"
        ids = [uuid.UUID(hex=r[1]) for r in final]
        assert len(set(ids)) == len(ids)
    finally:
        stop_tail.set()
        run.stop_all()
    print(f"shared crash loop: {run.tally}, {len(final)} visible events")
    assert run.tally.kills >= kills
    assert run.tally.killed_mid_op > 0, "no kill landed inside an append"
    assert run.tally.acked_events > 0


def test_sigkilled_shared_writers_never_block_the_others_nor_lose_acknowledged_events(tmp_path: Path) -> None:
    # small segments: writers rotate often, and kills land in rotations too
    run_crash_loop(tmp_path, WRITERS, KILLS, tail=True, segment_max_bytes=32 * 1024)


def test_a_writer_killed_alone_is_repaired_by_the_next_opener(tmp_path: Path) -> None:
    """With a single writer, each replacement is the first process of a new shared session:
    it recovers (cutting the dead writer's torn tail) as the session's first opener."""
    run_crash_loop(tmp_path, 1, max(20, KILLS // 5), tail=False, segment_max_bytes=8 * 1024)


# A writer killed at an exact instant (right after saving ``hidden.ranges``, before telling the
# others) is covered deterministically by ``rust/eventpak-core/tests/shared_death.rs``.


def test_a_read_only_reader_first_after_a_killed_writer_leaves_the_repair_to_the_next_writer(
    tmp_path: Path,
) -> None:
    """A writer killed alone; then a ``read_only=True, shared=True`` reader is the first to
    open: it reads what the dead writer left without repairing it, and the writer that joins
    its session repairs and goes on, while the reader tails it."""
    run_crash_loop(
        tmp_path, 1, max(10, KILLS // 10), tail=False, segment_max_bytes=8 * 1024, reader_first=True
    )
