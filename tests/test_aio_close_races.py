"""eventpak.aio endings that race with work in flight: a store closed while a durable worker
is in its handler, and subscriptions ended (``aclose()``) while a cancelled ``__anext__``
still has a call on the pool, or after mixing ``async for`` with ``batches()``. Whatever
the timing, the checkpoint ends at what the body finished, never moves back, is never
written once its lease is let go, and the lease is free when the ending returns."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest
from aio_support import HeldPool, Runner, run_fixture  # noqa: F401 (the `run` fixture)

ALL = ep.Region.all()
WORK = ep.Region.entity("e")


@pytest.mark.parametrize("outcome", ["handled", "parked"])
def test_close_lets_a_durable_worker_in_its_handler_finish_and_save_its_batch(
    run: Runner[Any], data_dir: Path, outcome: str
) -> None:
    async def main() -> None:
        store = await ep.aio.open(data_dir)
        await store.append_batch([(("e", "s"), "k", i) for i in range(5)])
        in_handler, release = asyncio.Event(), asyncio.Event()
        saw_closing: list[bool] = []

        async def handler(batch: list[ep.Event], st: Any, witness: Any) -> None:
            in_handler.set()
            await release.wait()
            saw_closing.append(st.closed)
            # Until it returns, its own calls still work, as with the sync store's close.
            await st.append(("done", "s"), "handled", len(batch))
            if outcome == "parked":
                raise ValueError("poison")

        size, letters = (1, 1) if outcome == "parked" else (10, None)
        config = ep.CursorWorkerConfig(checkpoint_id="w", batch_size=size, dead_letter_after=letters)
        handle = store.worker(WORK, handler, config)
        await in_handler.wait()
        closing = asyncio.create_task(store.close(timeout=600))
        asyncio.get_running_loop().call_soon(release.set)  # once close has stopped the worker
        await closing
        await handle.join()  # it finished cleanly
        assert saw_closing == [True]
        assert handle.position == (0 if outcome == "parked" else 4)

    run(main())
    saved = ep.Cursor.load_checkpoint(data_dir, "w")
    with ep.Store.open(data_dir) as store:
        assert saved is not None and saved.started
        assert saved.position == (0 if outcome == "parked" else 4)
        assert len(store.query(ep.Region.entity("done"))) == 1
        parked = [d.event.global_sequence for d in store.dead_letters("w")]
        assert parked == ([0] if outcome == "parked" else [])


@pytest.mark.parametrize("first", [3, 1024], ids=["part-of-a-batch", "a-whole-batch"])
def test_mixing_events_and_batches_saves_what_the_body_finished(
    run: Runner[Any], data_dir: Path, first: int
) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir) as store:
            await store.append_batch([(("e", "s"), "k", i) for i in range(4000)])
            sub = store.subscribe(ALL, checkpoint_id="mix")
            for _ in range(first):
                await sub.__anext__()
            seen = 0
            async for batch in sub.batches():
                seen += 1
                if seen == 3:
                    finished = batch[0].global_sequence - 1  # this batch is left unfinished
                    break
            await sub.aclose()
            saved = ep.Cursor.load_checkpoint(data_dir, "mix")
            assert saved is not None and saved.position == finished
            again = store.subscribe(ALL, checkpoint_id="mix")  # the lease was released
            assert (await again.__anext__()).global_sequence == finished + 1
            await again.aclose()

    run(main())


def test_aclose_waits_for_the_save_of_a_cancelled_next(
    run: Runner[Any], data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        unretrieved: list[Any] = []
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: unretrieved.append(ctx))
        async with ep.aio.open(data_dir, sync="never") as store:
            await store.append_batch([(("e", "s"), "k", i) for i in range(1100)])
            sub = store.subscribe(ALL, checkpoint_id="c")
            for _ in range(1024):  # the body finishes the whole first batch
                await sub.__anext__()
            pool = HeldPool(store, lease_of="c")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0):
                    await sub.__anext__()  # asks for more: its fetch saves the first batch
            await pool.queued.wait()  # that save waits for a thread
            closing = asyncio.create_task(sub.aclose())
            pool.release_after_first_step(closing)
            await closing
            await pool.finished()
            assert pool.done_before_release is False  # aclose waited for the queued save
            assert pool.ran_without_lease == []  # nothing wrote once the lease was let go
            saved = ep.Cursor.load_checkpoint(data_dir, "c")
            assert saved is not None and saved.position == 1023
            again = store.subscribe(ALL, checkpoint_id="c")
            assert (await again.__anext__()).global_sequence == 1024
            await again.aclose()
        gc.collect()
        assert unretrieved == []

    with caplog.at_level(logging.WARNING, logger="eventpak"):
        run(main())
    assert caplog.records == []


def test_aclose_releases_the_lease_a_cancelled_next_was_taking(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir) as store:
            await store.append(("e", "s"), "k", 0)
            pool = HeldPool(store)
            sub = store.subscribe(ALL, checkpoint_id="c")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0):
                    await sub.__anext__()
            await pool.queued.wait()  # taking the lease waits for a thread
            closing = asyncio.create_task(sub.aclose())
            pool.release_after_first_step(closing)
            await closing
            assert pool.done_before_release is False  # aclose waited for the lease's taking
            probe = store.sync_store._native.take_worker_lease("c")
            assert probe is not None  # free as aclose() returns
            probe.release()
            await pool.finished()
            again = store.subscribe(ALL, checkpoint_id="c")  # free, with `sub` still referred to
            assert (await again.__anext__()).global_sequence == 0
            await again.aclose()
            del sub

    run(main())


def test_aclose_from_another_task_ends_the_loop_whose_fetch_it_ends(run: Runner[Any], data_dir: Path) -> None:
    # aclose() ends the fetch in progress: the loop waiting for it ends as a loop does
    # (StopAsyncIteration), not with a CancelledError its task never asked for.
    async def main() -> None:
        async with ep.aio.open(data_dir) as store:
            await store.append(("e", "s"), "k", 0)
            sub = store.subscribe(ALL, checkpoint_id="c")
            first = asyncio.Event()
            pool: list[HeldPool] = []

            async def consume() -> list[int]:
                got = []
                async for event in sub:
                    got.append(event.global_sequence)
                    pool.append(HeldPool(store))  # the next fetch's save waits for a thread
                    first.set()
                return got

            consumer = asyncio.create_task(consume())
            await first.wait()
            await pool[0].queued.wait()
            closing = asyncio.create_task(sub.aclose())
            pool[0].release_after_first_step(closing)
            await closing
            assert await asyncio.wait_for(consumer, 60) == [0]  # a hang fails here
            await pool[0].finished()
            saved = ep.Cursor.load_checkpoint(data_dir, "c")
            assert saved is not None and saved.position == 0  # it had asked for more

    run(main())


def test_a_cancelled_close_still_closes_and_every_close_waits_for_it(
    run: Runner[Any], data_dir: Path
) -> None:
    async def main() -> None:
        store = await ep.aio.open(data_dir)
        await store.append(("e", "s"), "k", 1)
        in_handler, release = asyncio.Event(), asyncio.Event()

        async def handler(batch: list[ep.Event], st: Any, witness: Any) -> None:
            in_handler.set()
            await release.wait()

        store.worker(WORK, handler)
        await in_handler.wait()
        first = asyncio.create_task(store.close())
        second = asyncio.create_task(store.close())
        await asyncio.sleep(0)  # both are waiting for the worker's batch now
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert not second.done() and not store.sync_store.closed
        release.set()
        await second  # returns only once the store is closed, though the first was cancelled
        assert store.sync_store.closed
        await store.close()  # idempotent
        with ep.Store.open(data_dir) as again:  # the data dir was released
            assert again.stats()["events"] == 1

    run(main())


def test_close_from_a_workers_handler_returns_and_the_store_closes_after_it(
    run: Runner[Any], data_dir: Path
) -> None:
    async def main() -> None:
        store = await ep.aio.open(data_dir)
        await store.append(("e", "s"), "shutdown", 1)
        returned = asyncio.Event()

        async def handler(batch: list[ep.Event], st: Any, witness: Any) -> None:
            await st.close()
            returned.set()

        handle = store.worker(WORK, handler)
        await returned.wait()
        await handle.join()
        await store.close()  # waits for the closing the handler started
        assert store.sync_store.closed

    run(main())


def test_close_inside_its_own_fence_block_does_not_wait_for_a_worker_blocked_on_that_fence(
    run: Runner[Any], data_dir: Path
) -> None:
    async def main() -> list[str]:
        # Were the fence left open, the worker's append would give up after fence_wait_ms
        # (FenceActive) and only then let the close go on: "Handled" would be missing.
        store = await ep.aio.open(data_dir, fence_wait_ms=60_000)
        await store.append(("e", "s"), "Trigger", 0)
        handling = asyncio.Event()

        async def handler(batch: list[ep.Event], st: Any, witness: Any) -> None:
            handling.set()
            await st.append(("out", "s"), "Handled", len(batch))  # waits for the fence

        store.worker(WORK, handler, ep.CursorWorkerConfig(batch_size=1))
        with pytest.raises(ep.StoreClosed):  # the block learns its fence did not commit
            async with store.fence() as fence:
                await fence.append(("fenced", "s"), "Inside", 1)
                await handling.wait()
                await store.close()
        return [fence.state]

    assert run(main()) == ["cancelled"]
    with ep.Store.open(data_dir) as reopened:
        assert [e.kind for e in reopened.query(ALL)] == ["Trigger", "Handled"]
