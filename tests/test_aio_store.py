"""eventpak.aio: the async store's calls, errors, fences, cancellation and threads."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest
from aio_support import Runner, native_threads, run_fixture  # noqa: F401 (the `run` fixture)

ALL = ep.Region.all()


def test_open_append_read_close_round_trip(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir, sync="always") as store:
            assert isinstance(store.sync_store, ep.Store)
            receipt = await store.append(("acct-1", "bank"), "Deposited", {"amount": 5}, idempotency_key="k1")
            assert receipt.durable and receipt.global_sequence == 0
            more = await store.append_batch([(("acct-1", "bank"), "Withdrawn", {"amount": 2})])
            assert [r.global_sequence for r in more] == [1]
            event = await store.get(receipt.event_id)
            assert event.payload == {"amount": 5} and event.kind == "Deposited"
            assert [e.kind for e in await store.query(ALL)] == ["Deposited", "Withdrawn"]
            assert [e.global_sequence for e in await store.query(ALL, after=0, limit=5)] == [1]
            assert await store.head() == 1
            await store.sync()
            assert (await store.stats())["events"] == 2
            assert (await store.verify()).ok
            seen: list[tuple[int, int]] = []
            report = await store.backup(data_dir.parent / "backup", progress=lambda *p: seen.append(p))
            assert (report.through, report.events) == (1, 2) and seen and seen[-1][0] == seen[-1][1]
            again = await store.append(("acct-1", "bank"), "Deposited", {"amount": 5}, idempotency_key="k1")
            assert again == receipt  # the retry writes nothing
        assert store.closed

    run(main())
    for copy in (data_dir, data_dir.parent / "backup"):
        with ep.Store.open(copy) as sync_store:
            assert [e.kind for e in sync_store.query(ALL)] == ["Deposited", "Withdrawn"]


def test_awaiting_open_gives_the_store_and_close_releases_it(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        store = await ep.aio.open(data_dir)
        await store.append(("a", "s"), "k", 1)
        await store.close()
        await store.close()  # idempotent
        with pytest.raises(ep.StoreClosed):
            await store.append(("a", "s"), "k", 2)
        with pytest.raises(ep.StoreClosed):
            await store.query(ALL)

    run(main())
    with ep.Store.open(data_dir) as reopened:  # released: no StoreLocked
        assert reopened.head() == 0


def test_project_folds_through_the_async_store(run: Runner[Any], data_dir: Path) -> None:
    class Balance(ep.Projection[int]):
        name = "balance"
        kinds = ("Deposited",)

        def initial(self) -> int:
            return 0

        def apply(self, state: int, event: ep.Event) -> int:
            return state + int(event.payload["amount"])

    async def main() -> None:
        async with ep.aio.open(data_dir) as store:
            for amount in (3, 4):
                await store.append(("acct", "bank"), "Deposited", {"amount": amount})
            assert await store.project("acct", Balance()) == 7

    run(main())


def test_many_tasks_appending_share_fsyncs_and_each_gets_its_own_receipt(
    run: Runner[Any], data_dir: Path
) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir, sync="always") as store:
            receipts = await asyncio.gather(
                *(store.append((f"e{i % 7}", "s"), "k", {"i": i}) for i in range(500))
            )
            assert sorted(r.global_sequence for r in receipts) == list(range(500))
            assert all(r.durable for r in receipts)
            fsyncs = (await store.stats())["fsyncs"]
            assert fsyncs < 500  # rounds of many appends share one fsync
            payloads = sorted(e.payload["i"] for e in await store.query(ALL))
            assert payloads == list(range(500))

    run(main())


def test_refusals_are_typed_per_append_and_leave_other_tasks_appends_alone(
    run: Runner[Any], data_dir: Path
) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir) as store:
            await store.append(("acct", "s"), "Opened", {})
            results = await asyncio.gather(
                store.append(("acct", "s"), "Late", {}, expected_sequence=0),
                store.append(("other", "s"), "Fine", {"n": 1}),
                store.append(("other", "s"), "eventpak.denial", {}),
                store.append(("bad entity/", "s"), "Fine", {}),
                store.append(("other", "s"), "Fine", {"x": object()}),
                return_exceptions=True,
            )
            assert isinstance(results[0], ep.ConcurrencyConflict)
            assert isinstance(results[1], ep.AppendReceipt)
            assert isinstance(results[2], ep.InvalidKind)
            assert isinstance(results[3], ep.InvalidCoordinate)
            assert isinstance(results[4], ep.PayloadNotSerializable)
            assert [e.kind for e in await store.query(ALL)] == ["Opened", "Fine"]
            with pytest.raises(ep.BatchTooLarge):
                await store.append_batch([(("a", "s"), "k", 0)] * 200_000)
            assert await store.head() == 1

    run(main())


def test_a_read_only_async_store_refuses_appends(run: Runner[Any], data_dir: Path) -> None:
    ep.Store.open(data_dir).close()

    async def main() -> None:
        async with ep.aio.open(data_dir, read_only=True) as store:
            with pytest.raises(ep.ReadOnlyStore):
                await store.append(("a", "s"), "k", 1)
            assert await store.head() is None

    run(main())


def test_bad_options_raise_invalid_config_and_create_nothing(run: Runner[Any], tmp_path: Path) -> None:
    async def main() -> None:
        with pytest.raises(ep.InvalidConfig):
            await ep.aio.open(tmp_path / "d", sync="sometimes")  # type: ignore[arg-type]
        with pytest.raises(ep.InvalidConfig):
            async with ep.aio.open(tmp_path / "d", no_such_option=1):  # type: ignore[call-arg]
                pass

    run(main())
    assert not (tmp_path / "d").exists()


def test_a_fence_hides_its_events_until_the_block_ends(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir, fence_wait_ms=30_000) as store:
            entered, release = asyncio.Event(), asyncio.Event()
            outside: list[ep.AppendReceipt] = []

            async def other_task() -> None:
                await entered.wait()
                outside.append(await store.append(("b", "s"), "After", {}))

            waiting = asyncio.create_task(other_task())
            async with store.fence() as fence:
                assert fence.state == "open"
                await fence.append(("a", "s"), "Inside", {})
                await fence.append_batch([(("a", "s"), "Inside", {})])
                assert await store.query(ALL) == []  # invisible while open
                with pytest.raises(ep.FenceActive):
                    await store.append(("a", "s"), "Own", {})  # this task's own fence
                with pytest.raises(ep.FenceActive):  # at once, not after fence_wait_ms
                    async with store.fence():
                        pass
                assert fence.state == "open"
                entered.set()
                await asyncio.sleep(0)  # let the other task queue its append behind the fence
                assert outside == []
                release.set()
            await waiting
            assert fence.state == "committed"
            assert [e.kind for e in await store.query(ALL)] == ["Inside", "Inside", "After"]

            with pytest.raises(RuntimeError):
                async with store.fence() as failing:
                    await failing.append(("a", "s"), "Dropped", {})
                    raise RuntimeError("abort")
            assert failing.state == "cancelled"
            async with store.fence() as cancelled:
                await cancelled.append(("a", "s"), "Dropped", {})
                await cancelled.cancel()
            assert "Dropped" not in [e.kind for e in await store.query(ALL)]
            await store.append(("a", "s"), "Open again", {})

    run(main())


def test_a_fence_holders_reads_do_not_queue_behind_writes_waiting_for_its_fence(
    run: Runner[Any], data_dir: Path
) -> None:
    # More conditional appends wait for the fence than the store has threads for calls: each
    # blocks its thread until the fence ends. The holder's read, and so its fence, must not
    # wait for them (it did, until they gave up after fence_wait_ms with ep.FenceActive).
    boundary = ep.AppendCondition(ALL.with_tags(["seat:1"]))

    async def main() -> list[str]:
        async with ep.aio.open(data_dir, fence_wait_ms=60_000) as store:
            opened = await store.append(("hall", "s"), "Opened", {})

            async def claim(i: int) -> str:
                try:
                    await store.append((f"claim{i}", "s"), "Claimed", {}, tags=["seat:1"], condition=boundary)
                    return "claimed"
                except ep.AppendConditionFailed:
                    return "condition failed"
                except ep.FenceActive:
                    return "FenceActive"

            async with store.fence() as fence:
                await fence.append(("hall", "s"), "Prepared", {}, tags=["seat:1"])
                claims = [asyncio.create_task(claim(i)) for i in range(8)]
                await asyncio.sleep(0)  # one loop turn: each claim task submits its append
                assert (await store.get(opened.event_id)).kind == "Opened"
                assert [e.kind for e in await store.query(ALL)] == ["Opened"]
            return await asyncio.gather(*claims)

    # The fence's event matches every claim's boundary: each fails its condition once it ends.
    assert run(main()) == ["condition failed"] * 8


def test_a_fence_append_refuses_a_condition_or_tracking_saying_why(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir) as store:
            async with store.fence() as fence:
                with pytest.raises(TypeError, match="takes no condition: a fence's events commit with"):
                    await fence.append(("a", "s"), "k", {}, condition=ep.AppendCondition(ALL))  # type: ignore[call-arg]
                with pytest.raises(TypeError, match="takes no tracking"):
                    await fence.append(("a", "s"), "k", {}, tracking=ep.Tracking("in", 1))  # type: ignore[call-arg]
                with pytest.raises(TypeError, match=r"append_batch\(\) takes no condition: a fence's"):
                    batch = [(("a", "s"), "k", {})]
                    await fence.append_batch(batch, condition=ep.AppendCondition(ALL))  # type: ignore[arg-type]
                await fence.append(("a", "s"), "Kept", {})
            assert [e.kind for e in await store.query(ALL)] == ["Kept"]

    run(main())


def test_a_task_cancelled_while_it_enters_a_fence_leaves_no_fence_open(
    run: Runner[Any], data_dir: Path
) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir, fence_wait_ms=5_000) as store:
            # The fence thread is held, so the task's entry waits in its queue when cancelled;
            # released, the thread opens the fence for a task that will never use it.
            held = threading.Event()
            thread = store._take_fence_thread()  # the thread the next fence takes
            thread.submit(held.wait)
            store._return_fence_thread(thread)
            fences: list[Any] = []

            async def body() -> None:
                fences.append(store.fence())
                async with fences[0] as fence:
                    await fence.append(("a", "s"), "Never", {})

            task = asyncio.create_task(body())
            queue = thread._work_queue  # type: ignore[attr-defined]
            while queue.qsize() < 1:
                await asyncio.sleep(0)
            task.cancel()
            held.set()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert fences[0].state == "cancelled"
            receipt = await store.append(("b", "s"), "After", {})  # not held back by a fence
            async with store.fence() as fence:
                await fence.append(("b", "s"), "Fenced", {})
            assert [e.kind for e in await store.query(ALL)] == ["After", "Fenced"]
            assert receipt.global_sequence == 0

    run(main())


async def _fence_once_opened(store: ep.aio.AsyncStore, opened: asyncio.Event, kind: str) -> str:
    """Once ``opened`` is set, appends one ``kind`` event through a fence of its own; returns
    the fence's final state."""
    await opened.wait()
    async with store.fence() as fence:
        await fence.append(("b", "s"), kind, {})
    return fence.state


@pytest.mark.parametrize("wait_ms", [30_000, 50])
def test_a_second_task_s_fence_waits_for_the_first_up_to_fence_wait_ms(
    run: Runner[Any], data_dir: Path, wait_ms: int
) -> None:
    """As a second thread's fence does: it commits after the first, or gives up with
    ``FenceActive`` after ``fence_wait_ms`` while the first is still open."""
    gives_up = wait_ms == 50

    async def main() -> None:
        async with ep.aio.open(data_dir, fence_wait_ms=wait_ms) as store:
            opened = asyncio.Event()
            waiting = asyncio.create_task(_fence_once_opened(store, opened, "Second"))
            async with store.fence() as fence:
                await fence.append(("a", "s"), "First", {})
                opened.set()
                if gives_up:
                    with pytest.raises(ep.FenceActive):
                        await waiting  # after the engine's wait, with this fence still open
                else:
                    # Time for a second fence that meets this one as its own to fail at once
                    # (it used to); one that waits is still waiting when this fence commits.
                    await asyncio.wait({waiting}, timeout=0.2)
                    assert not waiting.done()
            if not gives_up:
                assert await waiting == "committed"
            async with store.fence() as fence:  # every fence thread serves the next fence
                await fence.append(("c", "s"), "Third", {})
            expected = ["First", "Third"] if gives_up else ["First", "Second", "Third"]
            assert [e.kind for e in await store.query(ALL)] == expected

    run(main())


def test_a_fence_used_after_its_store_closed_raises_store_closed(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        store = await ep.aio.open(data_dir)
        with pytest.raises(ep.StoreClosed):
            async with store.fence() as fence:
                await fence.append(("a", "s"), "Inside", {})
                await store.close()  # cancels the fence left open
                with pytest.raises(ep.StoreClosed):
                    await fence.append(("a", "s"), "Late", {})
        async with ep.aio.open(data_dir) as reopened:
            assert await reopened.query(ALL) == []

    run(main())


def test_cancelling_pending_appends_never_damages_the_store(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir, sync="always") as store:
            tasks = [
                asyncio.create_task(store.append(("e", "s"), "k", {"i": i}, idempotency_key=f"key-{i}"))
                for i in range(300)
            ]
            await asyncio.sleep(0)  # every task has queued its append
            for task in tasks[::3]:
                task.cancel()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            cancelled = [i for i, o in enumerate(outcomes) if isinstance(o, asyncio.CancelledError)]
            assert cancelled == list(range(0, 300, 3))
            assert all(isinstance(o, ep.AppendReceipt) for i, o in enumerate(outcomes) if i % 3)
            # The retry with the same key answers whether the cancelled append was written.
            written = {e.payload["i"] for e in await store.query(ALL)}
            for i in cancelled:
                retry = await store.append(("e", "s"), "k", {"i": i}, idempotency_key=f"key-{i}")
                assert (i in written) == (retry.global_sequence < len(written))
            assert sorted(e.payload["i"] for e in await store.query(ALL)) == list(range(300))
            assert (await store.verify()).ok

    run(main())


def test_cancelling_pending_reads_and_an_open_leaves_everything_usable(
    run: Runner[Any], data_dir: Path
) -> None:
    async def main() -> None:
        opening = asyncio.ensure_future(ep.aio.open(data_dir))
        await asyncio.sleep(0)
        opening.cancel()
        with pytest.raises(asyncio.CancelledError):
            await opening
        # A store the cancelled open still made is closed, so the dir is free again.
        async with ep.aio.open(data_dir) as store:
            await store.append_batch([(("a", "s"), "k", i) for i in range(1000)])
            query = asyncio.create_task(store.query(ALL))
            await asyncio.sleep(0)
            query.cancel()
            with pytest.raises(asyncio.CancelledError):
                await query
            assert len(await store.query(ALL)) == 1000

    run(main())


def test_awaits_create_no_thread_per_call(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir, sync="always") as store:
            await store.append(("a", "s"), "k", 0)
            await store.query(ALL)
            before_py, before_native = threading.active_count(), native_threads()
            for round_ in range(20):
                await asyncio.gather(*(store.append(("a", "s"), "k", round_) for _ in range(50)))
                await asyncio.gather(*(store.query(ALL, limit=5) for _ in range(20)))
                await store.head()
            # The pools' few threads are made once (at most 4 for reads, 4 for writes; one of
            # each ran before); nothing per await.
            assert threading.active_count() <= before_py + 3 + 3
            assert native_threads() <= before_native + 3 + 3
            assert threading.active_count() <= 1 + 4 + 4
            assert await store.head() == 1000

    run(main())
