"""An ``AsyncStore`` belongs to the event loop that opened it: a call from another loop is
refused with a clear ``RuntimeError`` before anything is queued, so nothing is written and
the store goes on serving its own loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest
from aio_support import Runner, run_fixture  # noqa: F401 (the `run` fixture)

ALL = ep.Region.all()
RULE = "belongs to the event loop that opened it"


def test_calls_from_another_loop_are_refused_before_anything_is_queued(
    run: Runner[Any], data_dir: Path
) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir) as store:

            async def handler(batch: list[ep.Event], st: Any, witness: Any) -> None:
                raise AssertionError("a refused worker never runs")

            calls: list[Callable[[], Awaitable[Any]]] = [
                lambda: store.append(("other", "s"), "k", {}),
                lambda: store.append_batch([(("other", "s"), "k", {})]),
                lambda: store.query(ALL),
                lambda: store.subscribe(ALL, checkpoint_id="c").__anext__(),
                lambda: store.close(),
            ]

            async def from_another_loop() -> None:
                for call in calls:
                    with pytest.raises(RuntimeError, match=RULE):
                        await call()
                with pytest.raises(RuntimeError, match=RULE):
                    store.worker(ALL, handler, ep.CursorWorkerConfig(checkpoint_id="w"))
                with pytest.raises(RuntimeError, match=RULE):
                    async with store.fence() as fence:
                        await fence.append(("other", "s"), "k", {})

            await asyncio.to_thread(asyncio.run, from_another_loop())  # this loop runs on
            # Queued after anything the other loop could have queued: its round ran first.
            await store.append(("mine", "s"), "k", {})
            assert [e.entity for e in await store.query(ALL)] == ["mine"]
            assert not store.closed
            again = store.subscribe(ALL, checkpoint_id="c")  # no lease was left taken
            assert (await again.__anext__()).entity == "mine"
            await again.aclose()

    run(main())
