"""eventpak.aio with tags, unions, append conditions and tracking records: ``tags=`` flows
through the shared append queue, ``condition=`` and ``tracking=`` go through the pool as
their own engine calls, and subscriptions and async workers take tag regions and unions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest
from aio_support import Runner, run_fixture  # noqa: F401 (the `run` fixture)

R = ep.Region
COURSE = R.all().with_tags(["course:c1"])


async def _take(subscription: ep.aio.Subscription, n: int) -> list[ep.Event]:
    got: list[ep.Event] = []
    async for event in subscription:
        got.append(event)
        if len(got) == n:
            break
    return got


def test_tags_flow_through_concurrent_appends_and_subscriptions(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir) as store:
            receipts = await asyncio.gather(
                *(store.append(("e", "s"), "k", i, tags=(f"n{i}", "course:c1")) for i in range(3)),
                store.append(("e", "s"), "k", 3),
                store.append(("e", "s"), "other", 4, tags=["student:s7"]),
            )
            assert len({r.global_sequence for r in receipts}) == 5
            tagged = await store.query(COURSE)
            assert sorted(e.payload for e in tagged) == [0, 1, 2]
            assert all(e.tags == (f"n{e.payload}", "course:c1") for e in tagged)
            union = R.any_of([COURSE, R.all().with_kind("other")])
            history = await _take(store.subscribe(union), 4)
            assert sorted(e.payload for e in history) == [0, 1, 2, 4]

            later = asyncio.create_task(_take(store.subscribe(union, after=receipts[-1].global_sequence), 2))
            await store.append(("e", "s"), "k", 5)  # not in the union
            await store.append(("e", "s"), "k", 6, tags=["course:c1"])
            await store.append(("e", "s"), "other", 7)
            assert [e.payload for e in await later] == [6, 7]

    run(main())


def test_async_workers_take_unions(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir) as store:
            seen: list[int] = []
            done = asyncio.Event()

            async def handler(batch: list[ep.Event], _store: Any, _witness: Any) -> ep.CursorWorkerAction:
                seen.extend(e.payload for e in batch)
                if len(seen) >= 3:
                    done.set()
                return ep.CursorWorkerAction.CONTINUE

            union = R.any_of([COURSE, R.entity("acct")])
            handle = store.worker(union, handler, ep.CursorWorkerConfig(checkpoint_id="aio-union"))
            await store.append(("acct", "s"), "k", 1)
            await store.append(("other", "s"), "k", 2)
            await store.append(("other", "s"), "k", 3, tags=["course:c1"])
            await store.append(("acct:7", "s"), "k", 4)
            await done.wait()
            await handle.stop_and_join()
            assert seen == [1, 3, 4]

    run(main())


def test_conditions_are_checked_atomically_through_the_pool(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir, sync="always") as store:
            first = await store.append(
                ("c", "s"), "k", 0, tags=["course:c1"], condition=ep.AppendCondition(COURSE)
            )
            assert first.durable
            with pytest.raises(ep.AppendConditionFailed) as failed:
                await store.append(
                    ("c", "s"), "k", 1, tags=["course:c1"], condition=ep.AppendCondition(COURSE)
                )
            assert failed.value.global_sequence == first.global_sequence
            items = [(("c", "s"), "k", 2)]
            after = ep.AppendCondition(COURSE, after=first.global_sequence)
            assert [r.global_sequence for r in await store.append_batch(items, condition=after)] == [1]
            # Racing tasks: one condition per claim, exactly one winner.
            claim = ep.AppendCondition(R.all().with_tags(["claim"]))
            outcomes = await asyncio.gather(
                *(store.append(("c", "s"), "claim", i, tags=["claim"], condition=claim) for i in range(5)),
                return_exceptions=True,
            )
            assert sum(isinstance(o, ep.AppendReceipt) for o in outcomes) == 1
            assert all(isinstance(o, (ep.AppendReceipt, ep.AppendConditionFailed)) for o in outcomes)
            assert len(await store.query(R.all().with_tags(["claim"]))) == 1

    run(main())


def test_tracking_records_through_the_async_store(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir) as store:
            assert await store.tracking_position("up") is None
            await store.append_batch([(("o", "s"), "k", 0)], tracking=ep.Tracking("up", 3))
            await store.append_batch([], tracking=ep.Tracking("up", 4))
            await store.append(("o", "s"), "k", 1, tracking=ep.Tracking("up", 5))
            with pytest.raises(ep.TrackingConflict):
                await store.append_batch([(("o", "s"), "k", 2)], tracking=ep.Tracking("up", 5))
            assert await store.tracking_position("up") == 5
            assert [e.payload for e in await store.query(R.all())] == [0, 1]

    run(main())
