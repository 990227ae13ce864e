"""eventpak.aio endings that race with work in flight: a store closed while a durable worker
is in its handler, and subscriptions ended (``aclose()``) while a cancelled ``__anext__``
still has a call on the pool, or after mixing ``async for`` with ``batches()``. Whatever
the timing, the checkpoint ends at what the body finished, never moves back, is never
written once its lease is let go, and the lease is free when the ending returns."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest
from aio_support import Runner, run_fixture  # noqa: F401 (the `run` fixture)

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
