"""eventpak.aio: subscriptions (async for over new events), their durable checkpoints, and
waiting for commits with no thread and no wake-up while idle."""

from __future__ import annotations

import asyncio
import gc
import selectors
import threading
import time
from collections.abc import AsyncIterator, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest
from aio_support import Runner, native_threads, run_fixture  # noqa: F401 (the `run` fixture)
from shared_helpers import Children, children_fixture

ALL = ep.Region.all()


@pytest.fixture
def spawn() -> Iterator[Children]:
    yield from children_fixture()


def test_subscribe_delivers_history_then_each_new_commit(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir) as store:
            await store.append_batch([(("a", "s"), "Old", i) for i in range(3)])
            got: list[int] = []
            reached = {3: asyncio.Event(), 6: asyncio.Event()}

            async def consume() -> None:
                async for event in store.subscribe(ALL):
                    got.append(event.global_sequence)
                    if len(got) in reached:
                        reached[len(got)].set()
                    if len(got) == 6:
                        return

            consumer = asyncio.create_task(consume())
            await reached[3].wait()
            for i in range(3):  # each commit wakes the waiting subscription
                await store.append(("b", "s"), "New", i)
            await reached[6].wait()
            await consumer
            assert got == list(range(6))

            after = [e.global_sequence async for e in _take(store.subscribe(ALL, after=3), 2)]
            assert after == [4, 5]
            only_b = [e.entity async for e in _take(store.subscribe(ep.Region.entity("b")), 3)]
            assert only_b == ["b", "b", "b"]

    run(main())


def test_batches_yield_what_each_fetch_got(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir) as store:
            await store.append_batch([(("a", "s"), "k", i) for i in range(2500)])
            sizes = []
            async for batch in store.subscribe(ALL).batches():
                sizes.append(len(batch))
                if sum(sizes) == 2500:
                    break
            assert sum(sizes) == 2500 and len(sizes) >= 3 and max(sizes) <= 1024

    run(main())


def test_a_checkpointed_subscription_resumes_after_the_last_finished_batch(
    run: Runner[Any], data_dir: Path
) -> None:
    async def first_run() -> list[int]:
        async with ep.aio.open(data_dir) as store:
            await store.append_batch([(("a", "s"), "k", i) for i in range(100)])
            seen: list[int] = []
            sub = store.subscribe(ALL, checkpoint_id="mailer")
            async for event in sub:
                seen.append(event.global_sequence)
                if len(seen) == 100:
                    # The body finished the first batch: asking for more saves it. The second
                    # batch is then left in the middle: the loop ends on event 109, so the
                    # events it finished, through 108, are saved and 109 comes again.
                    await store.append_batch([(("a", "s"), "k", i) for i in range(100, 150)])
                if len(seen) == 110:
                    break
            await sub.aclose()
            return seen

    async def second_run() -> list[int]:
        async with ep.aio.open(data_dir) as store:
            return [e.global_sequence async for e in _take(store.subscribe(ALL, checkpoint_id="mailer"), 41)]

    assert run(first_run()) == list(range(110))
    assert run(second_run()) == list(range(109, 150))


def test_a_loop_left_with_break_saves_what_its_body_finished(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> list[int]:
        async with ep.aio.open(data_dir) as store:
            await store.append_batch([(("a", "s"), "k", i) for i in range(3)])
            # Positional, as `subscribe(region, after=None, checkpoint_id=None)` reads.
            async for event in store.subscribe(ALL, None, "sse"):
                if event.global_sequence == 2:
                    break  # the subscription is dropped here: it ends, saving through 1
            await store.append(("a", "s"), "k", 3)
            again = store.subscribe(ALL, checkpoint_id="sse")  # the lease was released
            return [e.global_sequence async for e in _take(again, 2)]

    assert run(main()) == [2, 3]


def test_a_checkpoint_has_one_live_subscription(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir) as store:
            await store.append(("a", "s"), "k", 0)
            first = store.subscribe(ALL, checkpoint_id="cp")
            assert (await first.__anext__()).global_sequence == 0
            with pytest.raises(ep.CheckpointInUse):
                await store.subscribe(ALL, checkpoint_id="cp").__anext__()
            await first.aclose()
            again = store.subscribe(ALL, checkpoint_id="cp")
            assert (await again.__anext__()).global_sequence == 0  # never committed past it
            del again  # dropped: its lease goes with it
            third = store.subscribe(ALL, checkpoint_id="cp")
            assert (await third.__anext__()).global_sequence == 0
            with pytest.raises(ep.InvalidCheckpointId):
                store.subscribe(ALL, checkpoint_id="bad/id")

    run(main())


def test_cancelling_a_waiting_subscription_and_closing_the_store_end_it_cleanly(
    run: Runner[Any], data_dir: Path
) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir) as store:
            waiting = asyncio.create_task(store.subscribe(ALL).__anext__())
            await asyncio.sleep(0.01)  # let it reach its wait (either way, cancel must work)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await store.append(("a", "s"), "k", 1)
            ended: list[int] = []

            async def consume() -> None:
                async for event in store.subscribe(ALL):
                    ended.append(event.global_sequence)

            consumer = asyncio.create_task(consume())
            await store.append(("a", "s"), "k", 2)
            while len(ended) < 2:
                await asyncio.sleep(0)
        await asyncio.wait_for(consumer, 10)  # closing the store ends the async for
        assert ended == [0, 1]

    run(main())


class CountingSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """Counts how often the event loop wakes up from waiting."""

    wakeups = 0

    def select(self, timeout: float | None = None) -> Any:
        ready = super().select(timeout)
        type(self).wakeups += 1
        return ready


def test_an_idle_subscription_makes_no_wake_ups_and_no_threads(data_dir: Path) -> None:
    loop = asyncio.SelectorEventLoop(CountingSelector())
    opened: list[ep.aio.AsyncStore] = []
    subscribed, done = threading.Event(), threading.Event()
    got: list[int] = []
    threads_before: list[tuple[int, int]] = []

    async def main() -> None:
        store = await ep.aio.open(data_dir)
        opened.append(store)
        await store.append(("a", "s"), "k", 0)
        threads_before.append((threading.active_count(), native_threads()))
        # 50 more subscriptions wait beside the one observed: one descriptor serves them all.
        others = [asyncio.create_task(_take_list(store.subscribe(ALL, after=0), 1)) for _ in range(50)]
        async for event in store.subscribe(ALL):
            got.append(event.global_sequence)
            subscribed.set()
            if len(got) == 2:
                break
        await asyncio.gather(*others)
        await store.close()
        done.set()

    runner = threading.Thread(target=loop.run_until_complete, args=(main(),))
    runner.start()
    try:
        assert subscribed.wait(30)
        # The first window lets the loop settle into its wait; the second must see no wake-up.
        time.sleep(1.0)
        settled = CountingSelector.wakeups
        time.sleep(1.0)
        assert CountingSelector.wakeups == settled, "the idle loop woke up"
        # 51 waiting subscriptions hold no thread: beside the store's own (its flusher),
        # at most its small pool exists.
        assert threading.active_count() <= threads_before[0][0] + 4
        assert native_threads() <= threads_before[0][1] + 4
        # Only a commit wakes it: appended from this thread, through the sync store.
        opened[0].sync_store.append(("b", "s"), "k", 1)
        assert done.wait(30)
    finally:
        if not done.is_set():
            loop.call_soon_threadsafe(loop.stop)
        runner.join(30)
        loop.close()
    assert got == [0, 1]


def test_commits_of_another_process_wake_a_shared_subscription(
    run: Runner[Any], data_dir: Path, spawn: Children
) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir, shared=True) as store:
            await store.append(("here", "s"), "k", 0)
            threads_before = native_threads()
            sub = store.subscribe(ALL)
            assert (await sub.__anext__()).entity == "here"
            writer = spawn(_append_from_another_process, str(data_dir), 20)
            entities = [(await sub.__anext__()).entity for _ in range(20)]
            assert entities == ["there"] * 20
            writer.join()
            # One relay thread per shared store turns other processes' commits into signals.
            assert native_threads() <= threads_before + 1 + 4

    run(main())


def test_a_killed_subscriber_resumes_from_its_checkpoint(data_dir: Path, spawn: Children) -> None:
    with ep.Store.open(data_dir, shared=True) as store:
        store.append_batch([(("a", "s"), "k", i) for i in range(100)])
        first = spawn(_subscriber, str(data_dir))
        assert first.take("batch") == list(range(100))
        store.append_batch([(("a", "s"), "k", i) for i in range(100, 200)])
        assert first.take("batch") == list(range(100, 200))  # asking for it saved the first
        first.kill()
        second = spawn(_subscriber, str(data_dir))
        store.append_batch([(("a", "s"), "k", i) for i in range(200, 300)])
        delivered: list[int] = []
        while not delivered or delivered[-1] < 299:
            delivered += second.take("batch")
        # At least once: from the last saved batch (the second may have been saved too).
        assert delivered[0] in (100, 200)
        assert delivered == list(range(delivered[0], 300))
        second.kill()


def _subscriber(conn: Connection, path: str) -> None:
    async def main() -> None:
        async with ep.aio.open(path, shared=True) as store:
            async for batch in store.subscribe(ALL, checkpoint_id="resumable").batches():
                conn.send(("batch", [e.global_sequence for e in batch]))

    asyncio.run(main())


def _append_from_another_process(conn: Connection, path: str, count: int) -> None:
    with ep.Store.open(path, shared=True) as store:
        for i in range(count):
            store.append(("there", "s"), "k", i)
    conn.send(("done", count))


async def _take(sub: ep.aio.Subscription, count: int) -> AsyncIterator[ep.Event]:
    """The first ``count`` events of ``sub`` (an async iterator), then it is closed."""
    taken = 0
    async for event in sub:
        yield event
        taken += 1
        if taken == count:
            break
    await sub.aclose()


async def _take_list(sub: ep.aio.Subscription, count: int) -> list[ep.Event]:
    return [event async for event in _take(sub, count)]


def test_a_next_cancelled_while_its_fetch_runs_loses_no_event(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir) as store:
            await store.append_batch([(("a", "s"), "k", i) for i in range(3000)])
            sub = store.subscribe(ALL, checkpoint_id="sse")
            async for first in sub.batches():
                assert [e.global_sequence for e in first] == list(range(1024))
                break
            fetching = asyncio.ensure_future(sub.__anext__())
            while sub.position is None or sub.position < 2047:
                await asyncio.sleep(0)  # until the cursor moved: the pull ran in its thread
            fetching.cancel()  # an SSE keep-alive timeout, say
            with pytest.raises(asyncio.CancelledError):
                await fetching
            rest = [e.global_sequence async for e in _take(sub, 3000 - 1024)]
            assert rest == list(range(1024, 3000))  # the cancelled fetch's batch comes next

    run(main())


def test_closing_the_store_while_a_worker_pulls_does_not_hang(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        store = await ep.aio.open(data_dir)
        seen = asyncio.Event()

        async def handler(batch: list[ep.Event], st: Any, witness: Any) -> None:
            seen.set()

        store.worker(ALL, handler)
        await store.append(("a:1", "s"), "k", {})
        await seen.wait()
        await asyncio.wait_for(store.close(), 60)  # a hang fails here, not a slow close

    for _ in range(5):
        run(main())


def test_a_read_only_store_refuses_a_subscription_with_a_checkpoint_id_at_once(
    run: Runner[Any], data_dir: Path
) -> None:
    with ep.Store.open(data_dir) as store:
        store.append_batch([(("e", "s"), "k", i) for i in range(1500)])

    async def main() -> None:
        async with await ep.aio.open(data_dir, read_only=True) as store:
            with pytest.raises(ep.ReadOnlyStore, match="checkpoint_id"):
                store.subscribe(ep.Region.all(), checkpoint_id="reader")
            # Without one it reads, from the start or from a position the caller keeps.
            seen = []
            async for event in store.subscribe(ep.Region.all(), after=1497):
                seen.append(event.payload)
                if len(seen) == 2:
                    break
            assert seen == [1498, 1499]
        assert not (data_dir / "cursors" / "reader.ckpt").exists()

    run(main())


def test_a_subscriber_cancelled_at_the_tail_ends_and_its_lease_goes_when_it_is_dropped(
    run: Runner[Any], data_dir: Path
) -> None:
    """A client that disconnects from a stream: its task is cancelled while the subscription
    pulls or waits for a commit. Once nothing is fetched for it, the fetch ends; the dropped
    subscription then lets its checkpoint's lease go, and the client can connect again."""

    async def main() -> None:
        async with ep.aio.open(data_dir) as store:
            await store.append(("other", "s"), "k", 0)

            async def client(user: int) -> None:
                async for _ in store.subscribe(ep.Region.entity(f"user{user}"), checkpoint_id=f"u{user}"):
                    pass

            for ready_steps in range(6):  # cancelled at different points of the first fetch
                tasks = [asyncio.create_task(client(i)) for i in range(10)]
                for _ in range(ready_steps):
                    await asyncio.sleep(0)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                del tasks
                # A fetch already on the pool finishes its pull first, then ends.
                deadline = time.monotonic() + 60
                while asyncio.all_tasks() != {asyncio.current_task()} and time.monotonic() < deadline:
                    gc.collect()
                    await asyncio.sleep(0.001)
                assert asyncio.all_tasks() == {asyncio.current_task()}, "a fetch task was left behind"
            await store.append(("user0", "s"), "k", "hello")
            async for event in store.subscribe(ep.Region.entity("user0"), checkpoint_id="u0"):
                assert event.payload == "hello"
                break

    run(main())
