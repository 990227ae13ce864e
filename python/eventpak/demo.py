"""The ``eventpak demo`` job: append, query, project and reopen a demo store."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from . import ConcurrencyConflict, Coordinate, Event, NativeCache, Projection, Region, Store

__all__ = ["DemoFailed", "run_demo"]

T = TypeVar("T")


class DemoFailed(Exception):
    """The demo found the store behaving wrongly; the message says how."""


def _timed(label: str, count: int, work: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = work()
    elapsed = time.perf_counter() - start
    rate = f"{count / elapsed:>12,.0f} events/s" if count else ""
    print(f"  {label:<44} {elapsed * 1000:>9.1f} ms {rate}")
    return result


class Balance(Projection[int]):
    """An account's balance: deposits minus withdrawals."""

    name = "demo.balance"
    version = 1
    kinds = ("deposit", "withdraw")
    incremental = True

    def __init__(self) -> None:
        super().__init__()
        self.applied = 0

    def initial(self) -> int:
        return 0

    def apply(self, state: int, event: Event) -> int:
        self.applied += 1
        amount: int = event.payload["amount"]
        return state + amount if event.kind == "deposit" else state - amount


def _project(store: Store, label: str, entity: str) -> int:
    balance = Balance()
    value = _timed(label, 0, lambda: store.project(entity, balance))
    print(f"    balance of {entity}: {value} ({balance.applied} events applied)")
    return 0 if value is None else int(value)


def run_demo(data_dir: str, accounts: int, events: int) -> None:
    rng = random.Random(7)
    scopes = ("eu", "us")
    coords = [Coordinate(f"acct:{n}", scopes[n % 2]) for n in range(accounts)]

    def item(i: int) -> tuple[Coordinate, str, dict[str, object]]:
        # Event i goes to account i % accounts: with events >= accounts, every account gets one.
        kind = "deposit" if rng.random() < 0.6 else "withdraw"
        payload = {"amount": rng.randint(1, 500), "currency": "EUR", "ref": f"tx-{i}", "note": "demo"}
        return coords[i % accounts], kind, payload

    print(f"eventpak demo in {data_dir}")
    cache_dir = f"{data_dir}/projection-cache"
    with Store.open(data_dir, sync="batch", projection_cache=NativeCache(cache_dir)) as store:
        before = store.stats()["events"]
        if before:
            print(f"  the store already holds {before:,} events; appending more")
        singles = events // 10
        opened = [(c, "account.opened", {"owner": f"owner-{n}"}) for n, c in enumerate(coords)]
        _timed(
            f"open {accounts:,} accounts (one batch each 500)",
            accounts,
            lambda: [store.append_batch(opened[i : i + 500]) for i in range(0, accounts, 500)],
        )
        _timed(
            f"append {singles:,} events one by one",
            singles,
            lambda: [store.append(*item(i)) for i in range(singles)],
        )
        rest = events - singles
        batch = [item(singles + i) for i in range(rest)]
        _timed(
            f"append {rest:,} events in batches of 1,000",
            rest,
            lambda: [store.append_batch(batch[i : i + 1000]) for i in range(0, rest, 1000)],
        )
        _timed("sync (fsync barrier)", 0, store.sync)

        coord = coords[0]
        head = len(store.query(Region.entity(coord.entity)))
        store.append(coord, "deposit", {"amount": 1}, expected_sequence=head)
        try:
            store.append(coord, "deposit", {"amount": 1}, expected_sequence=head)
        except ConcurrencyConflict as conflict:
            print(
                "  compare-and-set refused a stale write: "
                f"expected {conflict.expected}, actual {conflict.actual}"
            )
        first = store.append(coord, "deposit", {"amount": 5}, idempotency_key="demo-payment-1")
        again = store.append(coord, "deposit", {"amount": 5}, idempotency_key="demo-payment-1")
        print(
            f"  idempotent retry returned the original receipt: {first == again} "
            f"(seq {again.global_sequence})"
        )

        sample = coords[min(42, accounts - 1)].entity
        one = _timed("query one account (Region.entity)", 0, lambda: store.query(Region.entity(sample)))
        balance = sum(
            e.payload["amount"] * (1 if e.kind == "deposit" else -1)
            for e in one
            if e.kind != "account.opened"
        )
        print(f"    {sample} has {len(one)} events, balance {balance}")
        eu = _timed(
            "query scope eu, kind deposit", 0, lambda: store.query(Region.scope("eu").with_kind("deposit"))
        )
        print(f"    {len(eu):,} deposits in eu")
        cold = _project(store, "project its balance (cold replay)", sample)
        _project(store, "project it again (cache hit, nothing applied)", sample)
        total = store.stats()["events"]
        every = _timed(
            "read every event, payloads decoded",
            total,
            lambda: [e.payload for e in store.query(Region.all())],
        )
        if len(every) != total:
            raise DemoFailed(f"read {len(every):,} events back, expected {total:,}")
    reopened = _timed(
        "close, then reopen from the index checkpoint",
        0,
        lambda: Store.open(data_dir, projection_cache=NativeCache(cache_dir)),
    )
    with reopened as store:
        stats = store.stats()
        print(
            f"  reopened: {stats['events']:,} events, {stats['entities']:,} entities, "
            f"{stats['segments']} segment(s), {stats['bytes'] / 1e6:.1f} MB, "
            f"index checkpoint {stats['index_checkpoint']}"
        )
        served = _project(store, "project after reopen (served from the cache)", sample)
        if stats["events"] != total or served != cold:
            raise DemoFailed(f"the reopened store differs: {stats['events']:,} events, balance {served}")
