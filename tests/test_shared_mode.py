"""Shared mode across real processes: several processes open one data dir with ``shared=True``.

What is promised (``Store.open(path, shared=True)``): one dense global sequence across
processes; entity clocks, hash chains, compare-and-set and idempotency keys hold across
processes as within one; read-your-writes across processes; cursors in any process wake on any
process's commit; an exclusive and a shared open refuse each other with ``ep.StoreLocked``; a
``read_only=True, shared=True`` reader tails the others' writes; a fence belongs to its process
(the others' plain appends wait for it, up to ``fence_wait_ms``), and a fence whose owner died is
cancelled by the next writer.

Every child is a spawned process (tests/shared_helpers.py); children meet at barriers and talk
to the test over pipes, never through sleeps.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest
from shared_helpers import (
    CTX,
    SAFETY_NET_S,
    Children,
    R,
    check_store,
    children_fixture,
    finish_all,
    open_shared,
    receipt_row,
    row,
    rows,
    wait_blocked,
)


@pytest.fixture
def spawn() -> Iterator[Children]:
    yield from children_fixture()


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "data")


# --- 1. many appenders: one dense log, the same in every view ---------------------------------

SHARED_ENTITIES = ("acct:0", "acct:1", "acct:2", "acct:3")


def child_append_mix(conn: Connection, path: str, me: int, ops: int, barrier: Barrier) -> None:
    """Appends ``ops`` operations (single appends and batches, to entities every process
    writes and to one of its own), then, once every process is done, reports its receipts and
    its view of the whole log."""
    rng = random.Random(me)
    store = open_shared(path)
    barrier.wait(SAFETY_NET_S)  # everyone appends at once
    receipts: list[tuple[int, str, int, str]] = []
    attempted: dict[str, Any] = {}
    for op in range(ops):
        count = 1 if rng.random() < 0.7 else rng.randint(2, 5)
        items = []
        for i in range(count):
            entity = rng.choice([*SHARED_ENTITIES, f"own:{me}"])
            tag = f"{me}.{op}.{i}"
            payload = {"tag": tag, "n": rng.randint(0, 2**40), "s": "é€" * rng.randint(0, 3)}
            attempted[tag] = (entity, payload)
            items.append(((entity, "main"), "k", payload))
        if count == 1:
            receipts.append(receipt_row(store.append(*items[0])))
        else:
            receipts.extend(receipt_row(r) for r in store.append_batch(items))
    barrier.wait(SAFETY_NET_S)  # every append of every process returned
    view = rows(check_store(store))
    conn.send(("done", (receipts, attempted, view)))
    conn.recv()  # the test read every view: close
    store.close()


@pytest.mark.parametrize("sync", ["batch", "always"])
def test_concurrent_appenders_make_one_dense_log_seen_alike_everywhere(
    spawn: Children, path: str, sync: str
) -> None:
    n, ops = 4, 150
    open_shared(path, sync=sync).close()  # the store exists before the children race
    barrier = CTX.Barrier(n)
    children = [spawn(child_append_mix, path, me, ops, barrier, name=f"appender-{me}") for me in range(n)]
    reports = [c.recv("done") for c in children]

    receipts = [r for rs, _, _ in reports for r in rs]
    seqs = sorted(r[0] for r in receipts)
    assert seqs == list(range(len(receipts))), "global sequences are not dense and unique"
    views = [view for _, _, view in reports]
    for me, view in enumerate(views):
        assert len(view) == len(receipts), f"process {me} sees {len(view)} of {len(receipts)} events"
        assert view == views[0], f"process {me} sees another log than process 0"
    by_seq = {r[0]: r for r in views[0]}
    for seq, event_id, clock, hash_hex in receipts:
        got = by_seq[seq]
        assert (got[1], got[5], got[7]) == (event_id, clock, hash_hex), (
            f"event {seq} differs from its receipt"
        )
    for c in children:
        c.send("close")
        c.join()

    attempted = {tag: value for _, a, _ in reports for tag, value in a.items()}
    with ep.Store.open(path) as store:
        events = check_store(store)
        assert rows(events) == views[0], "the reopened log differs from the live views"
        tags = [e.payload["tag"] for e in events]
        assert sorted(tags) == sorted(attempted), "events lost or invented"
        for e in events:
            entity, payload = attempted[e.payload["tag"]]
            assert (e.entity, e.payload) == (entity, payload), (
                f"event {e.global_sequence} is not what was sent"
            )
        # each process's events are in the log in the order it appended them
        for me in range(n):
            mine = [tuple(map(int, t.split(".")[1:])) for t in tags if t.startswith(f"{me}.")]
            assert mine == sorted(mine), f"process {me}'s appends are out of order"
        per_entity = Counter(e.entity for e in events)
        assert all(per_entity[e] > 0 for e in SHARED_ENTITIES)


# --- 2. compare-and-set and idempotency keys across processes ----------------------------------


def child_cas_rounds(conn: Connection, path: str, me: int, rounds: int, barrier: Barrier) -> None:
    """Each round: every process reads the counter's next clock, then all append with it as
    ``expected_sequence`` at once."""
    store = open_shared(path)
    outcomes: list[tuple[str, int, Any]] = []
    for rnd in range(rounds):
        barrier.wait(SAFETY_NET_S)
        expected = store.next_sequence("counter")
        barrier.wait(SAFETY_NET_S)
        try:
            receipt = store.append(
                ("counter", "main"), "inc", {"by": me, "round": rnd}, expected_sequence=expected
            )
            outcomes.append(("won", expected, receipt_row(receipt)))
        except ep.ConcurrencyConflict as exc:
            assert (exc.entity, exc.expected) == ("counter", expected)
            assert exc.actual == expected + 1, f"conflict reports clock {exc.actual}, expected {expected + 1}"
            outcomes.append(("lost", expected, None))
    store.close()
    conn.send(("done", outcomes))


def test_cas_race_has_exactly_one_winner_per_expected_sequence(spawn: Children, path: str) -> None:
    n, rounds = 4, 40
    open_shared(path).close()
    barrier = CTX.Barrier(n)
    children = [spawn(child_cas_rounds, path, me, rounds, barrier, name=f"cas-{me}") for me in range(n)]
    outcomes = finish_all(children)
    for rnd in range(rounds):
        this_round = [o[rnd] for o in outcomes]
        assert {o[1] for o in this_round} == {rnd}, f"round {rnd}: processes read different clocks"
        winners = [o for o in this_round if o[0] == "won"]
        assert len(winners) == 1, f"round {rnd}: {len(winners)} winners for expected sequence {rnd}"
        assert winners[0][2][2] == rnd
    with ep.Store.open(path) as store:
        events = check_store(store)
        assert [e.entity_sequence for e in events] == list(range(rounds))
        won_by = {o[1]: me for me, per in enumerate(outcomes) for o in per if o[0] == "won"}
        assert [e.payload for e in events] == [{"by": won_by[r], "round": r} for r in range(rounds)]


def child_cas_free(conn: Connection, path: str, me: int, target: int, barrier: Barrier) -> None:
    """Increments the counter by compare-and-set until its clock reaches ``target``."""
    store = open_shared(path)
    barrier.wait(SAFETY_NET_S)
    won: list[int] = []
    conflicts = 0
    while (expected := store.next_sequence("counter")) < target:
        try:
            r = store.append(
                ("counter", "main"), "inc", {"by": me, "exp": expected}, expected_sequence=expected
            )
            assert r.entity_sequence == expected
            won.append(expected)
        except ep.ConcurrencyConflict as exc:
            assert exc.actual > expected
            conflicts += 1
    store.close()
    conn.send(("done", (won, conflicts)))


def test_cas_free_for_all_never_double_allocates_a_clock(spawn: Children, path: str) -> None:
    n, target = 4, 300
    open_shared(path).close()
    barrier = CTX.Barrier(n)
    children = [spawn(child_cas_free, path, me, target, barrier, name=f"cas-{me}") for me in range(n)]
    results = finish_all(children)
    won = sorted(s for w, _ in results for s in w)
    assert won == list(range(target)), "a clock value was won twice or never"
    print(f"CAS free-for-all: conflicts per process {[c for _, c in results]}")
    with ep.Store.open(path) as store:
        events = check_store(store)
        assert [(e.entity_sequence, e.payload["exp"]) for e in events] == [(s, s) for s in range(target)]


def child_idempotent(conn: Connection, path: str, me: int, keys: int, barrier: Barrier) -> None:
    """Every process appends the same keyed events at once (single appends and a batch)."""
    store = open_shared(path)
    got: list[list[tuple[int, str, int, str]]] = []
    for k in range(keys):
        barrier.wait(SAFETY_NET_S)
        r = store.append(("idem", "main"), "once", {"k": k}, idempotency_key=f"key-{k}")
        got.append([receipt_row(r)])
    barrier.wait(SAFETY_NET_S)
    batch = [
        ep.AppendRequest((f"idem:{i}", "main"), "once", {"batch": i}, idempotency_key=f"batch-{i}")
        for i in range(3)
    ]
    got.append([receipt_row(r) for r in store.append_batch(batch)])
    barrier.wait(SAFETY_NET_S)
    # the same key with another payload is refused, whichever process wrote it first
    try:
        store.append(("idem", "main"), "once", {"k": 0, "other": me}, idempotency_key="key-0")
    except ep.IdempotencyConflict:
        conflict = True
    else:
        conflict = False
    store.close()
    conn.send(("done", (got, conflict)))


def test_same_idempotency_key_from_many_processes_writes_one_event(spawn: Children, path: str) -> None:
    n, keys = 4, 25
    open_shared(path).close()
    barrier = CTX.Barrier(n)
    children = [spawn(child_idempotent, path, me, keys, barrier, name=f"idem-{me}") for me in range(n)]
    results = finish_all(children)
    for k in range(keys + 1):
        per_process = [got[k] for got, _ in results]
        assert all(p == per_process[0] for p in per_process), f"key set {k}: receipts differ: {per_process}"
    assert all(conflict for _, conflict in results), "a reused key with another payload was accepted"
    with ep.Store.open(path) as store:
        events = check_store(store)
        assert [e.payload for e in events] == [{"k": k} for k in range(keys)] + [
            {"batch": i} for i in range(3)
        ]
        assert [e.global_sequence for e in events] == list(range(keys + 3))


# --- 3. read-your-writes across processes ------------------------------------------------------


def child_ping_pong(conn: Connection, path: str, me: int, rounds: int, peer: Connection, sync: str) -> None:
    """Two processes take turns: append, tell the other; the other must see it at once."""
    store = open_shared(path, sync=sync)
    cursor = store.cursor(R.entity("pp"))
    seen = 0
    for rnd in range(rounds):
        if rnd % 2 == me:
            r = store.append((f"pp:{me}", "main"), "ping", {"round": rnd})
            peer.send((r.event_id.hex, r.global_sequence, r.entity_sequence))
        else:
            event_id, seq, clock = peer.recv()
            # every read API, right away: no wait, no retry
            assert store.get(event_id).payload == {"round": rnd}, f"round {rnd}: get missed it"
            after = store.query(R.all(), after=seq - 1 if seq else None)
            assert [e.global_sequence for e in after] == [seq], f"round {rnd}: query saw {after}"
            assert store.head() == seq, f"round {rnd}: head {store.head()}, expected {seq}"
            assert store.next_sequence(f"pp:{1 - me}") == clock + 1
            polled = cursor.poll_batch(100)
            assert [e.global_sequence for e in polled][-1:] == [seq], f"round {rnd}: cursor missed it"
            seen += 1
    store.close()
    conn.send(("done", seen))


@pytest.mark.parametrize("sync", ["never", "batch", "always"])
def test_an_append_is_visible_in_another_process_as_soon_as_it_returned(
    spawn: Children, path: str, sync: str
) -> None:
    rounds = 60
    open_shared(path).close()
    a_end, b_end = CTX.Pipe()
    a = spawn(child_ping_pong, path, 0, rounds, a_end, sync, name="ping")
    b = spawn(child_ping_pong, path, 1, rounds, b_end, sync, name="pong")
    assert a.recv("done") + b.recv("done") == rounds
    a.join()
    b.join()


# --- 4. cursors in one process see every process's commits ------------------------------------


def child_appender(conn: Connection, path: str, me: int, ops: int, go: Any) -> None:
    """Waits for ``go``, then appends ``ops`` operations (some batches) to its own entity."""
    rng = random.Random(me)
    store = open_shared(path)
    conn.send(("ready", None))
    assert go.wait(SAFETY_NET_S)
    n = 0
    for _ in range(ops):
        if rng.random() < 0.3:
            batch = [((f"w{me}", "main"), "k", {"w": me, "i": n + i}) for i in range(rng.randint(2, 4))]
            n += len(store.append_batch(batch))
        else:
            store.append((f"w{me}", "main"), "k", {"w": me, "i": n})
            n += 1
    store.close()
    conn.send(("done", n))


def child_tail(conn: Connection, path: str, region_prefix: str | None, read_only: bool) -> None:
    """Opens a cursor, says ready, then delivers with blocking pulls until told how many
    events to expect; reports what it got in order."""
    store = open_shared(path, read_only=read_only)
    if read_only:
        try:
            store.append(("x", "main"), "k", None)
        except ep.ReadOnlyStore:
            pass
        else:
            raise AssertionError("a read-only shared store accepted an append")
    region = R.all() if region_prefix is None else R.entity(region_prefix)
    cursor = store.cursor(region)
    conn.send(("ready", None))
    got: list[tuple[int, Any]] = []
    expected: int | None = None
    while expected is None or len(got) < expected:
        got.extend((e.global_sequence, e.payload) for e in cursor.pull_batch(50, 1.0))
        if expected is None and conn.poll():
            expected = conn.recv()
    assert cursor.poll() is None, "more events than expected"
    view = rows(store.query(region))
    store.close()
    conn.send(("done", (got, view)))


def test_a_cursor_delivers_every_process_s_commits_in_order_without_gaps(spawn: Children, path: str) -> None:
    open_shared(path).close()
    tail = spawn(child_tail, path, None, False, name="tail")
    tail.recv("ready")
    go = CTX.Event()
    appenders = [spawn(child_appender, path, me, 120, go, name=f"appender-{me}") for me in range(3)]
    for a in appenders:
        a.recv("ready")
    go.set()
    counts = [a.recv("done") for a in appenders]
    tail.send(sum(counts))
    got, view = tail.recv("done")
    tail.join()
    seqs = [s for s, _ in got]
    assert seqs == list(range(sum(counts))), "the cursor skipped, repeated or reordered events"
    for me, count in enumerate(counts):
        mine = [p["i"] for _, p in got if p["w"] == me]
        assert mine == list(range(count)), f"process {me}'s events out of order at the cursor"
    with ep.Store.open(path) as store:
        assert rows(check_store(store)) == view


def child_waiting_cursor(conn: Connection, path: str, rounds: int) -> None:
    """Each round: says it is about to wait, then waits for one event with a blocking pull
    whose timeout is far beyond the test's safety net: only a wake-up can end it in time."""
    store = open_shared(path)
    cursor = store.cursor(R.all())
    for _ in range(rounds):
        conn.send(("waiting", None))
        batch = cursor.pull_batch(10, 3600.0)
        conn.send(("woke", [e.global_sequence for e in batch]))
    store.close()


def child_append_on_order(conn: Connection, path: str) -> None:
    store = open_shared(path)
    conn.send(("ready", None))
    while (order := conn.recv()) is not None:
        conn.send(("appended", store.append((order, "main"), "k", order).global_sequence))
    store.close()


def test_a_blocked_cursor_wakes_on_another_process_s_append(spawn: Children, path: str) -> None:
    rounds = 5
    open_shared(path).close()
    appender = spawn(child_append_on_order, path, name="appender")
    appender.recv("ready")
    waiter = spawn(child_waiting_cursor, path, rounds, name="waiter")
    for rnd in range(rounds):
        waiter.recv("waiting")
        wait_blocked(waiter.pid, "cursor.pull_batch")
        appender.send(f"e{rnd}")
        seq = appender.recv("appended")
        # A wake-up ends the hour-long wait; without one, recv's safety net fails the test.
        assert waiter.recv("woke") == [seq], "the blocked pull returned without the new event"
    appender.send(None)
    appender.join()
    waiter.join()


def child_worker(conn: Connection, path: str) -> None:
    """A cursor worker (no checkpoint); once told how many events to expect, waits until it
    handled that many, stops and reports what it handled."""
    store = open_shared(path)
    got: list[int] = []
    progress = threading.Condition()

    def handler(batch: list[ep.Event], _store: ep.Store, _witness: Any) -> None:
        with progress:
            got.extend(e.global_sequence for e in batch)
            progress.notify_all()

    handle = store.cursor_worker(R.all(), handler)
    conn.send(("ready", None))
    expected = conn.recv()
    with progress:
        assert progress.wait_for(lambda: len(got) >= expected, SAFETY_NET_S), f"worker stalled at {got[-3:]}"
    handle.stop_and_join(SAFETY_NET_S)
    store.close()
    conn.send(("done", got))


def test_a_cursor_worker_handles_another_process_s_events(spawn: Children, path: str) -> None:
    open_shared(path).close()
    worker = spawn(child_worker, path, name="worker")
    worker.recv("ready")
    go = CTX.Event()
    appenders = [spawn(child_appender, path, me, 30, go, name=f"appender-{me}") for me in range(3)]
    for a in appenders:
        a.recv("ready")
    go.set()
    total = sum(a.recv("done") for a in appenders)
    worker.send(total)
    assert worker.recv("done") == list(range(total)), "the worker skipped, repeated or reordered events"
    worker.join()


class Balance(ep.Projection[int]):
    name = "balance"
    kinds = ("deposit",)

    def initial(self) -> int:
        return 0

    def apply(self, state: int, event: ep.Event) -> int:
        return state + int(event.payload)


def child_deposit(conn: Connection, path: str, amounts: list[int]) -> None:
    store = open_shared(path)
    for amount in amounts:
        store.append(("acct:p", "main"), "deposit", amount)
    store.close()
    conn.send(("done", None))


def test_projections_fold_every_process_s_events(spawn: Children, path: str) -> None:
    store = open_shared(path, projection_cache=ep.NoCache())
    assert store.project("acct:p", Balance()) is None
    amounts = [[1, 2, 3], [10, 20], [100]]
    for i, a in enumerate(amounts):
        spawn(child_deposit, path, a, name=f"deposit-{i}").recv("done")
        assert store.project("acct:p", Balance()) == sum(sum(x) for x in amounts[: i + 1])
    changed = store.project_if_changed("acct:p", Balance(), None)
    assert changed is not None and changed[1] == 136
    store.close()


class CachedBalance(Balance):
    name = "cached-balance"
    incremental = True


def child_deposit_and_project(conn: Connection, path: str, cache_dir: str, amounts: list[int]) -> None:
    store = open_shared(path, projection_cache=ep.NativeCache(cache_dir))
    for amount in amounts:
        store.append(("acct:c", "main"), "deposit", amount)
        conn.send(("projected", store.project("acct:c", CachedBalance())))
    store.close()
    conn.send(("done", None))


def test_a_projection_cache_shared_by_processes_folds_every_process_s_events(
    spawn: Children, path: str, tmp_path: Path
) -> None:
    """Processes sharing the data dir also share one ``NativeCache`` directory: each brings the
    states the others cached forward by the events it did not see, never serving a stale one."""
    cache_dir = str(tmp_path / "cache")
    store = open_shared(path, projection_cache=ep.NativeCache(cache_dir))
    expected = 0
    for i, amounts in enumerate([[1, 2], [10], [100, 200]]):
        child = spawn(child_deposit_and_project, path, cache_dir, amounts, name=f"projector-{i}")
        for amount in amounts:
            expected += amount
            assert child.recv("projected") == expected
        child.recv("done")
        child.join()
        assert store.project("acct:c", CachedBalance()) == expected
        store.append(("acct:c", "main"), "deposit", 1000)
        expected += 1000
        assert store.project("acct:c", CachedBalance()) == expected
    store.close()


# --- 5. exclusive and shared opens refuse each other; a read-only shared reader ----------------


def child_hold(conn: Connection, path: str, options: dict[str, Any]) -> None:
    """Opens the store with ``options`` and holds it until told to close."""
    store = ep.Store.open(path, **options)
    conn.send(("open", None))
    conn.recv()
    store.close()
    conn.send(("closed", None))


def test_a_shared_open_is_refused_while_an_exclusive_store_is_open(spawn: Children, path: str) -> None:
    holder = spawn(child_hold, path, {}, name="exclusive-holder")
    holder.recv("open")
    for options in ({}, {"read_only": True}):
        with pytest.raises(ep.StoreLocked) as info:
            open_shared(path, **options)
        exc = info.value
        assert exc.mode == "exclusive"
        assert exc.path == path
        assert exc.pid == holder.pid
        assert "shared=True in every process" in str(exc)
        assert f"process {holder.pid}" in str(exc) and "exclusive mode" in str(exc)
    holder.send("close")
    holder.recv("closed")
    open_shared(path).close()  # free again


def test_an_exclusive_open_is_refused_while_shared_stores_are_open(spawn: Children, path: str) -> None:
    holders = [spawn(child_hold, path, {"shared": True}, name=f"shared-holder-{i}") for i in range(2)]
    for h in holders:
        h.recv("open")
    for read_only in (False, True):
        with pytest.raises(ep.StoreLocked) as info:
            ep.Store.open(path, read_only=read_only)
        exc = info.value
        assert exc.mode == "shared"
        assert exc.path == path
        assert exc.pid is None or exc.pid in {h.pid for h in holders}
        assert "shared=True in every process" in str(exc)
        assert "shared mode" in str(exc)
    # joining the shared holders works, in this process too
    open_shared(path).close()
    for h in holders:
        h.send("close")
        h.recv("closed")
    ep.Store.open(path).close()  # the last shared store closed: exclusive works again


def test_a_read_only_shared_reader_tails_every_writer_in_order(spawn: Children, path: str) -> None:
    with ep.Store.open(path) as store:  # a store with history, closed: the reader starts the session
        store.append_batch([(("w9", "main"), "k", {"w": 9, "i": i}) for i in range(3)])
    reader = spawn(child_tail, path, None, True, name="reader")
    reader.recv("ready")
    go = CTX.Event()
    writers = [spawn(child_appender, path, me, 80, go, name=f"writer-{me}") for me in range(2)]
    for w in writers:
        w.recv("ready")
    go.set()
    counts = [w.recv("done") for w in writers]
    reader.send(3 + sum(counts))
    got, view = reader.recv("done")
    reader.join()
    assert [s for s, _ in got] == list(range(3 + sum(counts))), "the reader skipped or reordered events"
    for me, count in enumerate(counts):
        assert [p["i"] for _, p in got if p["w"] == me] == list(range(count))
    with ep.Store.open(path) as store:
        assert rows(check_store(store)) == view


# --- 6. fences across processes ----------------------------------------------------------------


def child_fence(conn: Connection, path: str, options: dict[str, Any]) -> None:
    """Opens a fence and obeys: ``("append", n)`` appends n events through it and reports
    their receipts, ``"commit"`` / ``"cancel"`` / ``"raise"`` ends it, ``"hold"`` keeps it open
    until the process is killed."""
    store = open_shared(path, **options)

    class Cancel(Exception):
        pass

    try:
        with store.fence() as fence:
            conn.send(("open", None))
            while True:
                order = conn.recv()
                if isinstance(order, tuple):
                    _, n = order
                    items = [(("fenced", "main"), "f", {"fenced": i}) for i in range(n)]
                    conn.send(("fenced", [receipt_row(r) for r in fence.append_batch(items)]))
                elif order == "cancel":
                    fence.cancel()
                    break
                elif order == "raise":
                    raise Cancel
                elif order == "commit":
                    break
                else:  # "hold": wait for the kill
                    conn.send(("holding", None))
                    conn.recv()
    except Cancel:
        pass
    conn.send(("ended", fence.state))
    conn.recv()
    store.close()
    conn.send(("closed", None))


def child_plain_append(conn: Connection, path: str, options: dict[str, Any]) -> None:
    """On each order: says it is appending, appends one plain event, reports the receipt (or
    the error) with the monotonic clock at return and its view of the log."""
    store = open_shared(path, **options)
    conn.send(("ready", None))
    while (order := conn.recv()) is not None:
        started = time.monotonic()
        conn.send(("appending", started))
        try:
            if order == "fence":
                with store.fence() as fence:
                    r = fence.append(("plain", "main"), "p", "in-own-fence")
            else:
                r = store.append(("plain", "main"), "p", order)
        except ep.FenceActive:
            conn.send(("refused", time.monotonic()))
            continue
        conn.send(("appended", (receipt_row(r), time.monotonic(), rows(store.query(R.all())))))
    store.close()
    conn.send(("closed", None))


def test_a_plain_append_waits_for_another_process_s_fence_and_follows_it(spawn: Children, path: str) -> None:
    observer = open_shared(path)  # this process is a member too
    observer.append(("before", "main"), "k", 0)
    fencer = spawn(child_fence, path, {}, name="fencer")
    fencer.recv("open")
    fencer.send(("append", 2))
    first = fencer.recv("fenced")
    plain = spawn(child_plain_append, path, {"fence_wait_ms": 600_000}, name="plain")
    plain.recv("ready")
    plain.send("after-fence")
    plain.recv("appending")
    wait_blocked(plain.pid, "an append behind the fence")
    fencer.send(("append", 2))  # the fence goes on while the append waits
    second = fencer.recv("fenced")
    fenced = [r[0] for r in first + second]
    assert fenced == [1, 2, 3, 4]
    assert not plain.has_message(), "the plain append returned while the fence was open"
    assert [e.global_sequence for e in observer.query(R.all())] == [0], "fenced events visible"
    with pytest.raises(ep.EventNotFound):
        observer.get(first[0][1])
    cursor = observer.cursor(R.all(), after=0)
    assert cursor.poll() is None
    fencer.send("commit")
    assert fencer.recv("ended") == "committed"
    receipt, _, view = plain.recv("appended")
    assert receipt[0] == 5, "the waiting append did not come after the fence's events"
    assert [r[0] for r in view] == [0, 1, 2, 3, 4, 5]
    assert [e.global_sequence for e in cursor.poll_batch(10)] == [1, 2, 3, 4, 5]
    assert [e.payload for e in observer.query(R.all())] == [0] + [{"fenced": i} for i in (0, 1, 0, 1)] + [
        "after-fence"
    ]
    for child in (fencer, plain):
        child.send(None)
        child.recv("closed")
        child.join()
    observer.close()
    with ep.Store.open(path) as store:
        assert rows(check_store(store)) == view


@pytest.mark.parametrize("how", ["cancel", "raise"])
def test_another_process_s_cancelled_fence_stays_hidden_everywhere(
    spawn: Children, path: str, how: str
) -> None:
    observer = open_shared(path)
    cursor = observer.cursor(R.all())
    fencer = spawn(child_fence, path, {}, name="fencer")
    fencer.recv("open")
    fencer.send(("append", 3))
    fenced = fencer.recv("fenced")
    fencer.send(how)
    assert fencer.recv("ended") == "cancelled"
    plain = spawn(child_plain_append, path, {}, name="plain")
    plain.recv("ready")
    plain.send("after")
    plain.recv("appending")
    receipt, _, view = plain.recv("appended")
    assert receipt[0] == 3, "the cancelled fence's sequences were reused"
    assert [r[0] for r in view] == [3]
    for r in fenced:
        with pytest.raises(ep.EventNotFound):
            observer.get(r[1])
    assert [e.global_sequence for e in cursor.pull_batch(10, SAFETY_NET_S)] == [3]
    assert observer.stats()["events"] == 4 and observer.stats()["visible_events"] == 1
    for child in (fencer, plain):
        child.send(None)
        child.recv("closed")
        child.join()
    observer.close()
    with ep.Store.open(path) as store:
        assert rows(check_store(store)) == view
        assert store.stats()["events"] == 4


def test_an_append_behind_another_process_s_fence_gives_up_after_fence_wait_ms(
    spawn: Children, path: str
) -> None:
    fencer = spawn(child_fence, path, {}, name="fencer")
    fencer.recv("open")
    fencer.send(("append", 1))
    fencer.recv("fenced")
    plain = spawn(child_plain_append, path, {"fence_wait_ms": 200}, name="plain")
    plain.recv("ready")
    for order in ("plain", "fence"):  # a plain append, and a second fence
        plain.send(order)
        started = plain.recv("appending")
        refused_at = plain.recv("refused")
        assert refused_at - started >= 0.2, "FenceActive came before fence_wait_ms passed"
    fencer.send("commit")
    assert fencer.recv("ended") == "committed"
    plain.send("now")  # the fence is over: the same process appends at once
    plain.recv("appending")
    receipt, _, _ = plain.recv("appended")
    assert receipt[0] == 1
    for child in (fencer, plain):
        child.send(None)
        child.recv("closed")
        child.join()


def test_a_killed_fence_owner_never_blocks_the_others_and_its_events_stay_hidden(
    spawn: Children, path: str
) -> None:
    fence_wait_ms = 5_000
    observer = open_shared(path)
    observer.append(("before", "main"), "k", 0)
    fencer = spawn(child_fence, path, {}, name="fencer")
    fencer.recv("open")
    fencer.send(("append", 3))
    fenced = fencer.recv("fenced")
    fencer.send("hold")
    fencer.recv("holding")
    plain = spawn(child_plain_append, path, {"fence_wait_ms": fence_wait_ms}, name="plain")
    plain.recv("ready")
    plain.send("after-death")
    started = plain.recv("appending")
    wait_blocked(plain.pid, "an append behind the fence")
    death = fencer.kill()
    receipt, returned, view = plain.recv("appended")  # not "refused": it resumed
    # The contract bound: it went through before its fence_wait_ms ran out (measured from its
    # start), and so within fence_wait_ms of the owner's death.
    assert returned - started < fence_wait_ms / 1000
    assert returned - death < fence_wait_ms / 1000
    assert receipt[0] == 4, "the dead fence's sequences were reused"
    assert [r[0] for r in view] == [0, 4]
    for r in fenced:
        with pytest.raises(ep.EventNotFound):
            observer.get(r[1])
    assert [e.global_sequence for e in observer.query(R.all())] == [0, 4]
    # the dead owner's fence lock is free: another process fences and commits
    plain.send("fence")
    plain.recv("appending")
    receipt, _, view = plain.recv("appended")
    assert receipt[0] == 5 and [r[0] for r in view] == [0, 4, 5]
    plain.send(None)
    plain.recv("closed")
    plain.join()
    # a process that joins now sees the fence hidden too
    late = spawn(child_plain_append, path, {}, name="late")
    late.recv("ready")
    late.send("late")
    late.recv("appending")
    receipt, _, view = late.recv("appended")
    assert [r[0] for r in view] == [0, 4, 5, 6]
    late.send(None)
    late.recv("closed")
    late.join()
    observer.close()
    for checkpoint in (True, False):
        with ep.Store.open(path, enable_index_checkpoint=checkpoint) as store:
            assert rows(check_store(store)) == view
            assert store.stats()["events"] == 7


@pytest.mark.parametrize("session", ["ends with the owner", "outlives the owner"])
def test_a_fence_after_a_killed_fence_owner_cancels_the_dead_fence(
    spawn: Children, path: str, session: str
) -> None:
    # With a member that outlives the owner, the next fencer joins a live session; without,
    # it starts a new one and recovers what the dead owner left.
    member = open_shared(path) if session == "outlives the owner" else None
    fencer = spawn(child_fence, path, {}, name="dead-fencer")
    fencer.recv("open")
    fencer.send(("append", 2))
    dead = fencer.recv("fenced")
    fencer.send("hold")
    fencer.recv("holding")
    fencer.kill()
    # nobody appended since: the next thing is a fence, in another process
    second = spawn(child_fence, path, {"fence_wait_ms": 5_000}, name="fencer")
    second.recv("open")
    second.send(("append", 2))
    live = second.recv("fenced")
    assert [r[0] for r in dead + live] == [0, 1, 2, 3]
    second.send("commit")
    assert second.recv("ended") == "committed"
    second.send(None)
    second.recv("closed")
    second.join()
    if member is not None:
        assert [e.global_sequence for e in member.query(R.all())] == [2, 3]
        member.close()
    with ep.Store.open(path) as store:
        events = check_store(store)
        assert [e.global_sequence for e in events] == [2, 3]
        assert [row(e)[1] for e in events] == [r[1] for r in live]
        assert store.stats()["events"] == 4
