"""Kill harness for the promise of docs/design.md, "Durability and recovery": after any crash,
every acknowledged
durable event is present, nothing is invented, no partial batch is visible, hash chains verify
and durable cursors resume right after their last checkpoint.

A child process (``tests/kill_writer.py``) writes to a store (single appends, batches, fences
that commit or cancel, ``sync()`` barriers, clean close/reopen cycles, a durable worker) and
reports on a pipe what it is about to do and what was acknowledged. The parent SIGKILLs it at
a moment drawn from a seeded RNG (after the k-th report line, plus a random delay of up to
2 ms; or during open and recovery), reopens the store and checks the recovered log against
the reports. Each data dir goes through several rounds, so recovered stores are crashed and
recovered again; each round is one kill point.

What the checks allow, precisely (``base`` = events in the log when the round started):

- The log holds ``base`` + the events of a prefix of the round's attempted ops, cut at an
  op boundary (an append, a batch or one fenced append is all-or-nothing). Every op that was
  acknowledged durable (``durable`` receipts, covered by a later ``sync()`` that returned,
  or part of a fence whose ``with`` block exited) lies inside that prefix; under
  ``sync="always"`` every receipt is durable. Receipts name the sequences the ops hold.
- Plain ops of the prefix are visible with exactly the attempted coordinate, kind and
  payload (and the receipt's id, hash, clock and timestamp). Events of a fence are visible
  only if the fence committed: all of them when its ``with`` block exited; all or none of
  them when the kill hit after the commit was requested but before it was acknowledged; none
  when the commit was never requested or the fence was cancelled. Hidden events keep their
  sequences (they are counted by ``stats()["events"]``, not by queries).
- Events recovered in earlier rounds are unchanged; ids rise, timestamps never fall; every
  entity's clock is dense from 0 and ``prev_hash`` is the previous visible event's hash.
- Causal links (about half of the events name a cause: an earlier acknowledged event, visible,
  hidden or in the open fence; an earlier item of the same batch; or a foreign id): every
  visible event has exactly the attempted ``causation_id``, and the attempted correlation id,
  or the one inherited through ``caused_by`` from a cause that is a visible event, or its own
  id. The causal indexes agree with a full scan of the log: ``effects`` and ``correlated`` of
  every visible event (and of every other correlation id in the log), and ``causes`` and
  ``descendants`` of the newest events and a spread of older ones, equal what the events'
  ``causation_id`` and ``correlation_id`` say; walks from an acknowledged event that is hidden
  or was lost raise ``EventNotFound``. This holds when the store is reopened with the index
  checkpoint (written at the last clean close, by the child or by the previous round's check;
  what came after it is scanned) and with ``enable_index_checkpoint=False``: each round checks
  both.
- Consume-transform-produce with tracking (op ``ctp``: the next inputs of the worker region
  after ``tracking_position("ctp")``, some turned into output events on ``ctp:out``, appended
  with ``tracking=ep.Tracking("ctp", <last input read>)``, possibly with no event at all): the
  recovered tracking position is the one of the last ``ctp`` op of the recovered prefix of
  ops (an op with no event may be in or out of it, as long as the prefix stays a prefix and
  holds every op acknowledged durable), never ahead of the output it committed with nor
  behind it; and over the whole log each input is turned into output at most once (the
  outputs' inputs strictly rise), every output's input is a visible event of the region at
  or before the tracking position. Both opens (index checkpoint and full scan) agree.
- Durable worker (checkpoint id ``kill-harness``, region ``Region.entity("acct")``): the child's
  deliveries are the region's visible events right after the previous checkpoint, in order,
  without gaps; the checkpoint after the kill is the previous one or the end of a delivered
  batch, at or after every batch end the child saw acknowledged; a worker started by the
  parent with the same id delivers exactly the region's events after that checkpoint.

Default: 40 data dirs x 5 rounds = 200 kill points. ``EVENTPAK_EXTENDED=1``: 250 x 8 = 2,000.
Seeds are printed and named in failures: ``EVENTPAK_KILL_SEED=<base seed>`` replays a whole
run, ``EVENTPAK_KILL_DIR_SEEDS=<seed>,<seed>`` replays only the named data dirs. (A seed fixes
the workload and the kill plan; where exactly a kill lands still depends on timing.)
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest
from shared_helpers import check_chains

EXTENDED = os.environ.get("EVENTPAK_EXTENDED") == "1"
DIRS, ROUNDS = (250, 8) if EXTENDED else (40, 5)
MIN_KILL_POINTS = 2000 if EXTENDED else 200
PARALLEL = 3
CHILD = Path(__file__).with_name("kill_writer.py")
CHECKPOINT_ID = "kill-harness"
REGION_PREFIX = "acct"
REGION = ep.Region.entity(REGION_PREFIX)
SAFETY_NET_S = 120.0  # fails a hung child or worker; never a pass/fail threshold

CTP_NAME, CTP_OUT = "ctp", "ctp:out"

PROFILES: dict[str, dict[str, float]] = {
    "appends": {"append": 1.0},
    "batches": {"batch": 1.0, "append": 0.2},
    "fences": {"fence": 1.0, "cancel": 0.6, "append": 0.5},
    "consumer": {"append": 1.0, "batch": 0.3, "ctp": 1.0, "reopen": 0.02},
    "mixed": {"append": 1.0, "batch": 1.0, "fence": 0.4, "cancel": 0.25, "ctp": 0.4, "reopen": 0.02},
}


# --- one round: the child and its reports ------------------------------------------------------


@dataclass
class Op:
    op_id: str
    op_type: str
    fence: str | None
    # entity, scope, kind, payload (bytes as hex), cause ([what, value, how] or None), correlation hex
    events: list[tuple[str, str, str, dict[str, Any], list[Any] | None, str | None]]
    receipts: list[list[Any]] | None = None  # [seq, id hex, clock, hash hex, timestamp, durable]
    synced: bool = False  # a sync() that started after this op returned has returned
    tracking: int | None = None  # a ctp op: the tracking position it records
    inputs: list[int] = field(default_factory=list)  # a ctp op: the inputs it read


@dataclass
class Report:
    ops: list[Op] = field(default_factory=list)
    fences: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    opens: list[tuple[int, int]] = field(default_factory=list)  # (n reported, ops attempted before)
    batches: list[list[int]] = field(default_factory=list)  # worker deliveries
    ckpt_acks: list[int] = field(default_factory=list)
    idle: bool = False

    @classmethod
    def parse(cls, lines: list[dict[str, Any]]) -> Report:
        report = cls()
        by_id: dict[str, Op] = {}
        sync_started_at = 0
        for msg in lines:
            t = msg["t"]
            if t == "att":
                op = Op(msg["op"], msg["type"], msg["fence"], [tuple(e) for e in msg["ev"]])
                op.tracking, op.inputs = msg.get("trk"), msg.get("in", [])
                report.ops.append(op)
                by_id[op.op_id] = op
            elif t == "ack":
                by_id[msg["op"]].receipts = msg["r"]
            elif t in ("fbeg", "fcommit", "fack", "fcancel", "fcancelled"):
                report.fences[msg["f"]].add(t)
            elif t == "open":
                report.opens.append((msg["n"], len(report.ops)))
            elif t == "sync":
                sync_started_at = len(report.ops)
            elif t == "synced":
                for op in report.ops[:sync_started_at]:
                    op.synced = True
            elif t == "del":
                report.batches.append(msg["s"])
            elif t == "ckpt":
                report.ckpt_acks.append(msg["p"])
            elif t == "idle":
                report.idle = True
        return report


@dataclass
class Trigger:
    after_line: int | None  # kill after this many report lines; None: after "start"
    delay: float  # then wait this long (the kill moment is the behaviour under test)

    def hit(self, msg: dict[str, Any], count: int) -> bool:
        if msg["t"] == "idle":
            return True
        if self.after_line is None:
            return msg["t"] == "start"
        return count >= self.after_line


def run_child(
    config: dict[str, Any], trigger: Trigger, stderr_path: Path
) -> tuple[list[dict[str, Any]], str]:
    """Runs the writer until the trigger fires, SIGKILLs it and returns every whole report line
    it wrote before it died."""
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(CHILD), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    hung = threading.Event()

    def safety_net() -> None:
        hung.set()
        proc.kill()

    watchdog = threading.Timer(SAFETY_NET_S, safety_net)
    watchdog.start()
    lines: list[dict[str, Any]] = []
    killed = False
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            if not raw.endswith(b"\n"):
                break  # cannot happen with atomic line writes; an incomplete report is no report
            msg = json.loads(raw)
            lines.append(msg)
            if not killed and trigger.hit(msg, len(lines)):
                if trigger.delay:
                    threading.Event().wait(trigger.delay)  # lets the child run into its next step
                proc.send_signal(signal.SIGKILL)
                killed = True
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
    err = stderr_path.read_text(errors="replace")
    assert not hung.is_set(), f"child hung for {SAFETY_NET_S}s; stderr:\n{err}"
    assert proc.returncode == -signal.SIGKILL, f"child ended with {proc.returncode}, not SIGKILL:\n{err}"
    return lines, err


# --- a data dir across rounds ------------------------------------------------------------------


@dataclass
class DirState:
    seed: int
    path: Path
    segment_max_bytes: int
    base_n: int = 0  # events in the log (hidden ones included) when the next round starts
    keys: list[tuple[Any, ...]] = field(default_factory=list)  # every visible event, as verified
    hidden: int = 0  # hidden events in the log
    checkpoint: int | None = None  # position in the worker's checkpoint file (None: no file)
    tracking: int | None = None  # the ctp consumer's tracking position, as verified


@dataclass
class Tally:
    kill_points: int = 0
    killed_in_open: int = 0
    killed_mid_op: int = 0
    commit_unacked: int = 0
    commit_unacked_visible: int = 0
    worker_rounds: int = 0
    torn_tails: int = 0
    removed_segments: int = 0
    hidden_events: int = 0
    linked_events: int = 0  # visible events of the rounds whose cause is a visible event here
    prior_item_links: int = 0
    foreign_causes: int = 0
    hidden_causes: int = 0
    inherited_correlations: int = 0
    causal_checks_loaded: int = 0  # causal checks of a store opened from the index checkpoint
    causal_checks_full_scan: int = 0  # ... and of one opened with enable_index_checkpoint=False
    tracked_rounds: int = 0  # rounds whose recovered log holds a tracking position
    tracking_only_commits: int = 0  # recovered ctp ops that committed a position and no event
    ctp_cut_mid_op: int = 0  # rounds killed with a ctp op attempted and not acknowledged
    profiles: Counter[str] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        for name, value in vars(other).items():
            if name == "profiles":
                self.profiles.update(value)
            else:
                setattr(self, name, getattr(self, name) + value)


def plan_round(rng: random.Random, state: DirState, round_no: int) -> tuple[dict[str, Any], Trigger, str]:
    profile = rng.choice(sorted(PROFILES))
    weights = dict(PROFILES[profile])
    sync = "always" if rng.random() < 0.75 else "batch"
    if sync == "batch":
        weights["sync"] = 0.15
    config = {
        "data_dir": str(state.path),
        "seed": rng.randrange(2**32),
        "round": round_no,
        "sync": sync,
        "segment_max_bytes": state.segment_max_bytes,
        "weights": weights,
        "worker": rng.random() < 0.4,
        "worker_batch": rng.randint(1, 16),
        "checkpoint_id": CHECKPOINT_ID,
        "region_prefix": REGION_PREFIX,
        "max_ops": 5000,
    }
    if rng.random() < 0.1:
        trigger = Trigger(None, rng.uniform(0, 0.004))  # lands in open / recovery or just after
    else:
        trigger = Trigger(rng.randint(1, 600), 0.0 if rng.random() < 0.4 else rng.uniform(0, 0.002))
    return config, trigger, profile


def check_events_and_chains(store: ep.Store, events: list[ep.Event], n: int) -> None:
    check_chains(events)
    seqs = [e.global_sequence for e in events]
    assert not seqs or seqs[-1] < n, f"visible sequence {seqs[-1]} beyond the log's {n} events"
    chains: dict[str, list[ep.Event]] = defaultdict(list)
    for e in events:
        chains[e.entity].append(e)
    for chain in chains.values():
        walked = store.walk_ancestors(chain[-1].event_id)
        assert [e.global_sequence for e in walked] == [e.global_sequence for e in reversed(chain)]


def check_causal_fields(
    e: ep.Event,
    cause: list[Any] | None,
    correlation: str | None,
    op_start: int,
    by_id: dict[uuid.UUID, ep.Event],
    by_seq: dict[int, ep.Event],
    tally: Tally,
) -> None:
    """The event's ``causation_id`` and ``correlation_id`` are what its append asked for."""
    expected_cause: uuid.UUID | None = None
    inherited: uuid.UUID | None = None
    if cause is not None:
        what, value, how = cause
        if what == "prior":
            cause_event: ep.Event | None = by_seq[op_start + value]  # the op is whole
            tally.prior_item_links += 1
        else:
            cause_event = by_id.get(uuid.UUID(hex=value))
            if what == "foreign":
                assert cause_event is None
                tally.foreign_causes += 1
            elif cause_event is None:
                tally.hidden_causes += 1
        expected_cause = cause_event.event_id if cause_event is not None else uuid.UUID(hex=value)
        if cause_event is not None:
            assert cause_event.global_sequence < e.global_sequence, f"event {e.global_sequence}: late cause"
            tally.linked_events += 1
            if how.startswith("caused_by"):
                inherited = cause_event.correlation_id
    assert e.causation_id == expected_cause, f"event {e.global_sequence}: causation_id differs ({cause})"
    if correlation is not None:
        expected_correlation = uuid.UUID(hex=correlation)
    elif inherited is not None:
        expected_correlation = inherited
        tally.inherited_correlations += 1
    else:
        expected_correlation = e.event_id
    assert e.correlation_id == expected_correlation, (
        f"event {e.global_sequence}: correlation_id differs (cause {cause}, correlation {correlation})"
    )


def check_round_log(
    state: DirState, report: Report, sync: str, events: list[ep.Event], n: int, tally: Tally
) -> tuple[int, int, list[uuid.UUID], range]:
    """Checks the round's part of the log against the reports; returns (visible, hidden) counts
    of the round's surviving events, the ids of acknowledged events that are not visible
    (hidden, or lost with an op the crash cut off), and the numbers of ops the recovered
    prefix may hold (several, when ops of no event lie at its end)."""
    ops = report.ops
    base = state.base_n
    cum = [0]
    for op in ops:
        cum.append(cum[-1] + len(op.events))
    written = n - base
    assert written >= 0, f"the log shrank from {base} to {n} events"
    assert written <= cum[-1], f"{written - cum[-1]} events appeared that were never attempted"
    near = [c for c in cum if abs(c - written) <= 12]
    assert written in cum, f"{written} new events cut an op in half (ops end at ...{near}...)"
    cut = cum.index(written)
    cut_hi = len(cum) - 1 - cum[::-1].index(written)  # ops of no event may follow the cut
    for reported_n, attempted in report.opens:
        assert reported_n == base + cum[attempted], "the child's store opened with a different log length"

    for i, op in enumerate(ops):
        if op.receipts is None:
            continue
        expected = list(range(base + cum[i], base + cum[i + 1]))
        assert [r[0] for r in op.receipts] == expected, f"op {op.op_id}: receipts name other sequences"
        # An op of no event (a tracking record alone) has no receipt to say it is durable:
        # under sync="always" it was fsynced before it returned.
        durable = all(r[5] for r in op.receipts) if op.receipts else sync == "always"
        if sync == "always":
            assert durable, f"op {op.op_id}: receipt under sync='always' is not durable"
        fence_acked = op.fence is not None and "fack" in report.fences[op.fence]
        if durable or op.synced or fence_acked:
            assert i < cut_hi, f"acknowledged durable op {op.op_id} ({op.op_type}) is missing after the crash"
    tally.killed_mid_op += any(op.receipts is None for op in ops)

    by_seq = {e.global_sequence: e for e in events}
    by_id = {e.event_id: e for e in events}
    fence_visible: dict[str, bool] = {}
    visible_model: set[int] = set()
    for i, op in enumerate(ops[:cut]):
        op_seqs = range(base + cum[i], base + cum[i + 1])
        if op.fence is None:
            visible = True
        else:
            flags = report.fences[op.fence]
            present = any(s in by_seq for s in op_seqs)
            if "fack" in flags:
                visible = True
            elif "fcommit" in flags:
                visible = fence_visible.get(op.fence, present)  # either, but the same for the whole fence
            else:
                visible = False
            assert fence_visible.setdefault(op.fence, visible) == visible, f"fence {op.fence} partly visible"
        for k, (s, attempted) in enumerate(zip(op_seqs, op.events, strict=True)):
            if not visible:
                assert s not in by_seq, (
                    f"event {s} of fence {op.fence} {sorted(report.fences[op.fence])} visible"
                )
                continue
            assert s in by_seq, f"event {s} of op {op.op_id} ({op.op_type}) is missing"
            e = by_seq[s]
            entity, scope, kind, payload, cause, correlation = attempted
            assert (e.entity, e.scope, e.kind) == (entity, scope, kind), f"event {s} is not what was appended"
            assert e.payload == {**payload, "b": bytes.fromhex(payload["b"])}, f"event {s}: payload differs"
            check_causal_fields(e, cause, correlation, op_seqs[0], by_id, by_seq, tally)
            if op.receipts is not None:
                _, event_id, clock, hash_hex, stamp, _ = op.receipts[k]
                got = (e.event_id.hex, e.entity_sequence, e.hash.hex(), e.timestamp_us)
                assert got == (event_id, clock, hash_hex, stamp), f"event {s} differs from its receipt"
            visible_model.add(s)
    for fence_id, visible in fence_visible.items():
        if visible:
            fence_ops = [i for i, op in enumerate(ops) if op.fence == fence_id]
            assert max(fence_ops) < cut, f"committed fence {fence_id} is missing events"
    for fence_id, flags in report.fences.items():
        if "fcommit" in flags and "fack" not in flags:
            tally.commit_unacked += 1
            tally.commit_unacked_visible += fence_visible.get(fence_id, False)
    round_visible = {e.global_sequence for e in events if e.global_sequence >= base}
    assert round_visible == visible_model, (
        f"unexpected visible sequences {sorted(round_visible - visible_model)}"
    )
    absent = [
        uuid.UUID(hex=r[1])
        for op in ops
        if op.receipts is not None
        for r in op.receipts
        if r[0] not in visible_model
    ]
    durable_ops = [
        i
        for i, op in enumerate(ops)
        if op.receipts is not None
        and (op.synced or (all(r[5] for r in op.receipts) if op.receipts else sync == "always"))
    ]
    lowest = max(cut, max(durable_ops, default=-1) + 1)
    return len(visible_model), written - len(visible_model), absent, range(lowest, cut_hi + 1)


def check_tracking(
    store: ep.Store, state: DirState, report: Report, prefixes: range, events: list[ep.Event], tally: Tally
) -> None:
    """The consumer's tracking position is the one of the last ctp op in the recovered prefix
    (whose length may be any of ``prefixes``), and its outputs turn each input into output at
    most once, each output's input at or before that position."""
    position = store.tracking_position(CTP_NAME)
    allowed = set()
    for k in prefixes:
        tracked = [op.tracking for op in report.ops[:k] if op.op_type == "ctp"]
        allowed.add(tracked[-1] if tracked else state.tracking)
    shown = sorted(allowed, key=str)
    assert position in allowed, f"tracking position {position}, the recovered prefix allows {shown}"
    for k in prefixes:
        ctp = [op for op in report.ops[:k] if op.op_type == "ctp"]
        if ctp and ctp[-1].tracking == position:
            tally.tracking_only_commits += not ctp[-1].events
            break
    tally.ctp_cut_mid_op += any(op.op_type == "ctp" and op.receipts is None for op in report.ops)
    by_seq = {e.global_sequence: e for e in events}
    inputs = [e.payload["in"] for e in events if e.entity == CTP_OUT]
    assert inputs == sorted(set(inputs)), f"an input was turned into output twice: {inputs[-20:]}"
    for seq in inputs:
        assert position is not None and seq <= position, f"output of input {seq} is past tracking {position}"
        assert seq in by_seq and REGION.matches(by_seq[seq].coordinate, by_seq[seq].kind), f"input {seq}"
    tally.tracked_rounds += position is not None
    state.tracking = position


def check_causal_indexes(store: ep.Store, events: list[ep.Event], absent: list[uuid.UUID]) -> None:
    """The causal walks agree with a full scan of the log (``events``: every visible event)."""
    by_id = {e.event_id: e for e in events}
    effects: dict[uuid.UUID, list[ep.Event]] = defaultdict(list)
    correlated: dict[uuid.UUID, list[ep.Event]] = defaultdict(list)
    for e in events:
        cause = by_id.get(e.causation_id) if e.causation_id is not None else None
        if cause is not None:
            effects[cause.event_id].append(e)
        correlated[e.correlation_id].append(e)
    for e in events:
        got = store.effects(e.event_id)
        assert got == effects.get(e.event_id, []), (
            f"effects of {e.global_sequence}: {[x.global_sequence for x in got]}, the log says "
            f"{[x.global_sequence for x in effects.get(e.event_id, [])]}"
        )
        got = store.correlated(e.event_id)
        assert got == correlated.get(e.event_id, []), (
            f"correlated({e.global_sequence}): {[x.global_sequence for x in got]}, the log says "
            f"{[x.global_sequence for x in correlated.get(e.event_id, [])]}"
        )
    for correlation, members in correlated.items():
        if correlation not in by_id:
            got = store.correlated(correlation)
            assert got == members, (
                f"correlated({correlation}): {[x.global_sequence for x in got]}, the log says "
                f"{[x.global_sequence for x in members]}"
            )
    # the longest correlation, paged, reassembles
    if correlated:
        longest = max(correlated.values(), key=len)
        pages: list[ep.Event] = []
        after = None
        while page := store.correlated(longest[0].correlation_id, after=after, limit=3):
            pages.extend(page)
            after = page[-1].global_sequence
        assert pages == longest, "correlated pages do not reassemble the correlation"
    # causes and descendants of the newest events and of a spread of older ones
    sample = events[-16:] + events[:: max(1, len(events) // 16)]
    for e in sample:
        chain = [e]
        while (c := chain[-1].causation_id) is not None and c in by_id:
            chain.append(by_id[c])
        assert store.causes(e.event_id) == chain, f"causes of {e.global_sequence} differ from the log"
        order: list[ep.Event] = []
        level = [e]
        while level:
            level = [f for x in level for f in effects.get(x.event_id, [])]
            order.extend(level)
        assert store.descendants(e.event_id) == order, f"descendants of {e.global_sequence} differ"
    for event_id in absent:
        for walk in (store.causes, store.effects, store.descendants):
            with pytest.raises(ep.EventNotFound):
                walk(event_id)
        assert store.correlated(event_id) == correlated.get(event_id, [])


def tally_causal_check(store: ep.Store, tally: Tally) -> None:
    how = store.stats()["index_checkpoint"]
    tally.causal_checks_loaded += how == "loaded"
    tally.causal_checks_full_scan += how == "disabled"


def check_worker(
    store: ep.Store,
    state: DirState,
    report: Report,
    events: list[ep.Event],
    batch_size: int,
    read_only: bool,
) -> None:
    """The child's deliveries, the checkpoint the kill left, and a resumed worker (a resumed
    cursor on a read-only store, which refuses checkpoint saves)."""
    matching = [e.global_sequence for e in events if REGION.matches(e.coordinate, e.kind)]
    start = 0 if state.checkpoint is None else matching.index(state.checkpoint) + 1
    delivered = [s for batch in report.batches for s in batch]
    assert delivered == matching[start : start + len(delivered)], (
        f"child worker deliveries {delivered[:20]}... are not the region's events after checkpoint "
        f"{state.checkpoint}, in order and without gaps"
    )
    saved = ep.Cursor.load_checkpoint(state.path, CHECKPOINT_ID)
    position = None if saved is None else saved.position
    allowed = {state.checkpoint} | {batch[-1] for batch in report.batches}
    assert position in allowed, (
        f"checkpoint {position} is neither {state.checkpoint} nor a delivered batch end"
    )
    if saved is not None:
        assert saved.started
        assert saved.region_identity == REGION.checkpoint_identity
    if report.ckpt_acks:
        assert position is not None and position >= max(report.ckpt_acks), (
            f"checkpoint {position} is behind acknowledged checkpoint {max(report.ckpt_acks)}"
        )
    state.checkpoint = position

    remaining = [s for s in matching if position is None or s > position]
    got: list[int] = []
    if read_only:
        cursor = store.cursor(REGION)
        assert cursor.resume(CHECKPOINT_ID) == (position is not None)
        while batch := cursor.poll_batch(batch_size):
            got.extend(e.global_sequence for e in batch)
        assert got == remaining, f"resumed cursor delivered {got[:10]}..., expected {remaining[:10]}..."
        return
    done = threading.Event()

    def handler(batch: list[ep.Event], _store: ep.Store, _witness: Any) -> ep.CursorWorkerAction:
        got.extend(e.global_sequence for e in batch)
        if remaining and got[-1] >= remaining[-1]:
            done.set()
            return ep.CursorWorkerAction.STOP
        return ep.CursorWorkerAction.CONTINUE

    config = ep.CursorWorkerConfig(batch_size=batch_size, checkpoint_id=CHECKPOINT_ID)
    handle = store.cursor_worker(REGION, handler, config)
    if remaining:
        assert done.wait(SAFETY_NET_S), f"resumed worker stalled after {got[-5:]}"
    handle.stop_and_join(SAFETY_NET_S)
    assert got == remaining, f"resumed worker delivered {got[:10]}..., expected {remaining[:10]}..."
    if remaining:
        saved = ep.Cursor.load_checkpoint(state.path, CHECKPOINT_ID)
        assert saved is not None and saved.position == remaining[-1]
        state.checkpoint = remaining[-1]


def verify_round(
    state: DirState,
    report: Report,
    config: dict[str, Any],
    verify_options: dict[str, Any],
    event_key: Callable[[ep.Event], tuple[Any, ...]],
    tally: Tally,
) -> None:
    if not (state.path / "segments").is_dir():
        # Killed before the store existed (no data dir, or one without segments/ yet): a
        # read-only open refuses a dir that holds no store, so verify with a writable one.
        with pytest.raises(ep.InvalidConfig):
            ep.Store.open(state.path, read_only=True)
        verify_options = {k: v for k, v in verify_options.items() if k != "read_only"}
    with ep.Store.open(state.path, **verify_options) as store:  # CorruptSegment here fails the run
        stats = store.stats()
        assert stats["writer_failure"] is None
        tally.torn_tails += stats["torn_tail_bytes"] > 0
        tally.removed_segments += len(stats["removed_segments"])
        n = stats["events"]
        events = store.query(ep.Region.all())
        old = [event_key(e) for e in events if e.global_sequence < state.base_n]
        assert old == state.keys, "events recovered in an earlier round changed or vanished"
        check_events_and_chains(store, events, n)
        _, hidden, absent, prefixes = check_round_log(state, report, config["sync"], events, n, tally)
        assert n == len(events) + state.hidden + hidden, "stats()['events'] != visible + hidden events"
        check_tracking(store, state, report, prefixes, events, tally)
        check_causal_indexes(store, events, absent)
        tally_causal_check(store, tally)
        read_only = verify_options.get("read_only", False)
        check_worker(store, state, report, events, config["worker_batch"], read_only)
        state.base_n = n
        state.hidden += hidden
        state.keys = [event_key(e) for e in events]
    tally.hidden_events += hidden
    # The causal indexes again, built the other way (from the index checkpoint, or by a scan).
    other = {
        "read_only": True,
        "enable_index_checkpoint": not verify_options.get("enable_index_checkpoint", True),
    }
    with ep.Store.open(state.path, **other) as store:
        events = store.query(ep.Region.all())
        assert [event_key(e) for e in events] == state.keys, "a second open reads another log"
        assert store.tracking_position(CTP_NAME) == state.tracking, "a second open reads another position"
        check_causal_indexes(store, events, absent)
        tally_causal_check(store, tally)


def run_dir(seed: int, root: Path, event_key: Callable[[ep.Event], tuple[Any, ...]]) -> Tally:
    rng = random.Random(seed)
    path = root / f"dir-{seed}"
    state = DirState(seed, path / "data", rng.choice([4096, 16384, 1 << 20]))
    path.mkdir()
    tally = Tally()
    for round_no in range(ROUNDS):
        config, trigger, profile = plan_round(rng, state, round_no)
        last = round_no == ROUNDS - 1
        verify_options = rng.choice(
            [{}, {}, {"enable_index_checkpoint": False}] + ([] if last else [{"read_only": True}])
        )
        options = f"{profile}, sync={config['sync']}, {trigger}, verify with {verify_options}"
        where = f"dir seed {seed} round {round_no} ({options})"
        try:
            lines, _ = run_child(config, trigger, path / f"stderr-{round_no}.txt")
            report = Report.parse(lines)
            assert not report.idle, "the child ran out of work before the kill"
            verify_round(state, report, config, verify_options, event_key, tally)
        except Exception as exc:
            raise AssertionError(f"{where}: {exc!r}") from exc
        tally.kill_points += 1
        tally.killed_in_open += not report.opens
        tally.worker_rounds += config["worker"]
        tally.profiles[profile] += 1
    try:  # the store recovered from its last crash takes new appends
        with ep.Store.open(state.path, sync="always") as store:
            receipt = store.append(("acct:0", "main"), "after-harness", None)
            assert receipt.global_sequence == state.base_n and receipt.durable
        with ep.Store.open(state.path) as store:
            assert store.query(ep.Region.all())[-1].event_id == receipt.event_id
    except Exception as exc:
        raise AssertionError(f"dir seed {seed} after the last round: {exc!r}") from exc
    return tally


def test_sigkilled_writers_keep_every_durability_promise(tmp_path, event_key):
    base_seed = int(os.environ.get("EVENTPAK_KILL_SEED") or random.SystemRandom().randrange(2**32))
    seeds_rng = random.Random(base_seed)
    seeds = [seeds_rng.randrange(2**40) for _ in range(DIRS)]
    if os.environ.get("EVENTPAK_KILL_DIR_SEEDS"):
        seeds = [int(s) for s in os.environ["EVENTPAK_KILL_DIR_SEEDS"].split(",")]
    print(f"kill harness: EVENTPAK_KILL_SEED={base_seed}, {len(seeds)} data dirs x {ROUNDS} rounds")

    failures: list[str] = []
    total = Tally()
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        futures = {seed: pool.submit(run_dir, seed, tmp_path, event_key) for seed in seeds}
        for seed, future in futures.items():
            try:
                total.add(future.result())
            except Exception as exc:
                failures.append(f"EVENTPAK_KILL_DIR_SEEDS={seed}: {exc}")
    print(f"kill harness: {total}")
    assert not failures, (
        f"{len(failures)} data dirs broke the promise (EVENTPAK_KILL_SEED={base_seed}):\n"
        + "\n".join(failures)
    )
    if not os.environ.get("EVENTPAK_KILL_DIR_SEEDS"):
        assert total.kill_points >= MIN_KILL_POINTS
        # the causal checks are not vacuous: links of every kind, indexes built both ways
        assert min(total.linked_events, total.prior_item_links, total.foreign_causes) > 0
        assert min(total.hidden_causes, total.inherited_correlations) > 0
        assert min(total.causal_checks_loaded, total.causal_checks_full_scan) > 0
        # tracking positions were recovered, some committed with no event
        assert min(total.tracked_rounds, total.tracking_only_commits) > 0
    # the harness is not vacuous: kills land in the middle of appends
    assert total.killed_mid_op > 0
