"""eventpak.aio: async workers, their actions, restart policies, standby and shutdown."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest
from aio_support import Runner, native_threads, run_fixture  # noqa: F401 (the `run` fixture)

ALL = ep.Region.all()
A = ep.CursorWorkerAction


def _fast(policy: ep.RestartPolicy) -> ep.RestartPolicy:
    return ep.RestartPolicy(policy.max_restarts, policy.within_ms, backoff_ms=(0, 0))


def test_a_worker_feeds_its_handler_in_order_and_commits_durably(run: Runner[Any], data_dir: Path) -> None:
    async def first() -> tuple[list[int], int | None]:
        async with ep.aio.open(data_dir) as store:
            await store.append_batch([(("a", "s"), "k", i) for i in range(150)])
            seen: list[int] = []
            witnesses: list[ep.AtLeastOnce | None] = []
            reached = asyncio.Event()

            async def handler(batch: list[ep.Event], st: ep.aio.AsyncStore, witness: Any) -> None:
                assert st is store
                witnesses.append(witness)
                seen.extend(e.global_sequence for e in batch)
                await st.head()  # the handler may await the store it is given
                if len(seen) == 160:
                    reached.set()

            config = ep.CursorWorkerConfig(batch_size=64, checkpoint_id="projector")
            handle = store.worker(ALL, handler, config)
            assert handle.checkpoint_id == "projector" and handle.name.endswith("projector")
            await store.append_batch([(("b", "s"), "k", i) for i in range(10)])
            await reached.wait()
            await handle.stop_and_join(10)
            assert set(witnesses) == {ep.AtLeastOnce("projector")}
            return seen, handle.position

    async def second() -> list[int]:
        async with ep.aio.open(data_dir) as store:
            await store.append(("c", "s"), "k", 0)
            got: list[int] = []

            async def handler(batch: list[ep.Event], st: Any, witness: Any) -> ep.CursorWorkerAction:
                got.extend(e.global_sequence for e in batch)
                return A.STOP

            handle = store.worker(ALL, handler, ep.CursorWorkerConfig(checkpoint_id="projector"))
            await handle.join(10)
            return got

    seen, position = run(first())
    assert seen == list(range(160)) and position == 159
    assert run(second()) == [160]  # resumed after the durable checkpoint


def test_a_resumed_durable_worker_reports_its_checkpoint_as_its_position_from_the_start(
    run: Runner[Any], data_dir: Path
) -> None:
    async def main() -> list[tuple[int | None, int]]:
        async with ep.aio.open(data_dir) as store:
            await store.append_batch([(("a", "s"), "k", i) for i in range(10)])
            cursor = store.sync_store.cursor(ALL)
            cursor.poll_batch(100)
            cursor.commit("resumed")  # saved at 9

            async def handler(batch: list[ep.Event], st: Any, witness: Any) -> None:
                return None

            seen = []
            for _ in range(5):
                # Read before the worker's task ran: from the checkpoint, not None.
                handle = store.worker(ALL, handler, ep.CursorWorkerConfig(checkpoint_id="resumed"))
                seen.append((handle.position, handle.lag))
                handle.stop()
                await handle.join(10)
            return seen

    assert run(main()) == [(9, 0)] * 5


def test_a_workers_gap_observations_are_read_through_its_handle(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir) as store:
            async with store.fence() as fence:
                await fence.append_batch([(("a", "s"), "k", i) for i in range(2)])
                await fence.cancel()
            await store.append(("a", "s"), "k", 2)
            delivered = asyncio.Event()

            async def handler(batch: list[ep.Event], st: Any, witness: Any) -> None:
                delivered.set()

            config = ep.CursorWorkerConfig(gap_observation=ep.CursorGapConfig.enabled(4))
            handle = store.worker(ALL, handler, config)
            await delivered.wait()
            (gap,) = handle.take_gaps()
            assert (gap.expected_sequence, gap.delivered_sequence, gap.cancelled_ranges) == (0, 2, [(0, 2)])
            assert handle.take_gaps() == []
            await handle.stop_and_join(10)

    run(main())


def test_stop_and_rollback_actions(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir) as store:
            await store.append_batch([(("a", "s"), "k", i) for i in range(10)])
            calls: list[list[int]] = []

            async def rollback(batch: list[ep.Event], st: Any, witness: Any) -> ep.CursorWorkerAction:
                calls.append([e.global_sequence for e in batch])
                return A.STOP_WITH_ROLLBACK

            config = ep.CursorWorkerConfig(batch_size=4, checkpoint_id="cp")
            handle = store.worker(ALL, rollback, config)
            await handle.join(10)
            assert calls == [[0, 1, 2, 3]] and handle.position is None and not handle.is_alive()

            async def stop(batch: list[ep.Event], st: Any, witness: Any) -> ep.CursorWorkerAction:
                calls.append([e.global_sequence for e in batch])
                return A.STOP

            handle = store.worker(ALL, stop, config)  # the rollback saved nothing: from the start
            await handle.join(10)
            assert calls[1] == [0, 1, 2, 3] and handle.position == 3

            def plain(batch: list[ep.Event], st: Any, witness: Any) -> ep.CursorWorkerAction:
                calls.append([e.global_sequence for e in batch])  # a plain function works too
                return A.STOP

            handle = store.worker(ALL, plain, config)
            await handle.join(10)
            assert calls[2] == [4, 5, 6, 7]

    run(main())


def test_a_failing_handler_is_restarted_by_its_policy_then_stops(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir) as store:
            await store.append_batch([(("a", "s"), "k", i) for i in range(3)])
            deliveries: list[list[int]] = []

            async def flaky(batch: list[ep.Event], st: Any, witness: Any) -> None:
                deliveries.append([e.global_sequence for e in batch])
                raise ValueError(f"attempt {len(deliveries)}")

            handle = store.worker(
                ALL, flaky, ep.CursorWorkerConfig(restart=_fast(ep.RestartPolicy.bounded(2, 60_000)))
            )
            with pytest.raises(ep.RestartBudgetExhausted) as raised:
                await handle.join(10)
            assert isinstance(raised.value.__cause__, ValueError)
            assert str(raised.value.__cause__) == "attempt 3"
            assert deliveries == [[0, 1, 2]] * 3  # re-delivered from the last commit each time
            assert handle.restarts == 2 and str(handle.last_error) == "attempt 3"

            once: list[int] = []

            async def fails_once(batch: list[ep.Event], st: Any, witness: Any) -> ep.CursorWorkerAction:
                once.append(batch[0].global_sequence)
                if len(once) == 1:
                    raise KeyError("first time")
                return A.STOP

            handle = store.worker(
                ALL, fails_once, ep.CursorWorkerConfig(restart=_fast(ep.RestartPolicy.once()))
            )
            await handle.join(10)
            assert once == [0, 0] and handle.restarts == 1 and isinstance(handle.last_error, KeyError)

            async def wrong(batch: list[ep.Event], st: Any, witness: Any) -> str:
                return "done"

            handle = store.worker(ALL, wrong, ep.CursorWorkerConfig(restart=ep.RestartPolicy.never()))  # type: ignore[arg-type]
            with pytest.raises(ep.RestartBudgetExhausted) as raised:
                await handle.join(10)
            assert isinstance(raised.value.__cause__, TypeError)

    run(main())


def test_stop_ends_a_backoff_wait_and_an_idle_wait(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir) as store:
            await store.append(("a", "s"), "k", 0)
            failed = asyncio.Event()

            async def fails(batch: list[ep.Event], st: Any, witness: Any) -> None:
                failed.set()
                raise RuntimeError("boom")

            slow = ep.RestartPolicy.unlimited(backoff_ms=(600_000, 600_000))
            handle = store.worker(ALL, fails, ep.CursorWorkerConfig(restart=slow))
            await failed.wait()
            await handle.stop_and_join(30)  # the ten-minute backoff does not hold it
            assert handle.restarts == 0 and not handle.is_alive()

            idle = store.worker(ep.Region.entity("nobody"), fails, ep.CursorWorkerConfig())
            await asyncio.sleep(0)
            assert idle.is_active
            await idle.stop_and_join(30)
            with pytest.raises(TimeoutError):
                busy = store.worker(ep.Region.entity("nobody"), fails, ep.CursorWorkerConfig())
                await busy.join(0.05)
            busy.stop()
            await busy.join(30)

    run(main())


def test_a_handler_cannot_join_its_own_worker(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir) as store:
            await store.append(("a", "s"), "k", 0)
            refused: list[BaseException] = []
            handles: list[ep.aio.AsyncWorkerHandle] = []

            async def handler(batch: list[ep.Event], st: Any, witness: Any) -> None:
                try:
                    await handles[0].stop_and_join()
                except RuntimeError as exc:
                    refused.append(exc)
                handles[0].stop()

            handles.append(store.worker(ALL, handler, ep.CursorWorkerConfig()))
            await handles[0].join(10)
            assert len(refused) == 1 and "cannot join itself" in str(refused[0])

    run(main())


def test_one_worker_per_checkpoint_and_a_standby_takes_over(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir) as store:
            await store.append_batch([(("a", "s"), "k", i) for i in range(5)])
            by_worker: dict[str, list[int]] = {"first": [], "second": []}
            first_done = asyncio.Event()

            def handler_for(name: str) -> Any:
                async def handler(batch: list[ep.Event], st: Any, witness: Any) -> None:
                    by_worker[name].extend(e.global_sequence for e in batch)
                    if name == "first":
                        first_done.set()

                return handler

            config = ep.CursorWorkerConfig(checkpoint_id="single")
            first = store.worker(ALL, handler_for("first"), config)
            with pytest.raises(ep.CheckpointInUse):
                store.worker(ALL, handler_for("second"), config)
            standby = store.worker(
                ALL, handler_for("second"), ep.CursorWorkerConfig(checkpoint_id="single", standby=True)
            )
            await first_done.wait()
            assert first.is_active and not standby.is_active
            await first.stop_and_join(10)
            await store.append(("b", "s"), "k", 5)
            while not by_worker["second"]:
                await asyncio.sleep(0.01)  # the standby retries the lease four times a second
            assert standby.is_active
            assert by_worker == {"first": [0, 1, 2, 3, 4], "second": [5]}
            await standby.stop_and_join(10)

    run(main())


def test_close_stops_workers_and_idle_workers_hold_no_thread(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> list[ep.aio.AsyncWorkerHandle]:
        store = await ep.aio.open(data_dir)
        await store.append(("a", "s"), "k", 0)
        await store.query(ALL)
        before = threading.active_count(), native_threads()
        started = asyncio.Event()

        async def handler(batch: list[ep.Event], st: Any, witness: Any) -> None:
            started.set()

        handles = [store.worker(ALL, handler, ep.CursorWorkerConfig()) for _ in range(30)]
        await started.wait()
        for _ in range(5):
            await asyncio.sleep(0)
        assert threading.active_count() <= before[0] + 4 and native_threads() <= before[1] + 4
        await store.close()
        with pytest.raises(ep.StoreClosed):
            store.worker(ALL, handler, ep.CursorWorkerConfig())
        return handles

    handles = run(main())
    assert not any(h.is_alive() for h in handles)
