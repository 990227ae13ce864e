"""Async workers with ``dead_letter_after``: the same bisection, parking and budget rules as
the thread workers, and ``handle.lag`` against a known backlog."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest
from aio_support import Runner, run_fixture  # noqa: F401 (the `run` fixture)

CP = "mailer"
ORDERS = ep.Region.entity("order")


class AsyncPoisonHandler:
    """Fails on every poison event; records what goes through; sets ``later`` on the event
    appended after the poison."""

    def __init__(self) -> None:
        self.handled: list[int] = []
        self.later = asyncio.Event()

    async def __call__(self, batch: list[ep.Event], store: Any, witness: ep.AtLeastOnce | None) -> None:
        assert witness == ep.AtLeastOnce(CP) and isinstance(store, ep.aio.AsyncStore)
        await asyncio.sleep(0)  # a real await inside the handler
        for event in batch:
            if event.payload.get("poison"):
                raise ValueError(f"poison {event.payload['i']}")
        self.handled.extend(e.global_sequence for e in batch)
        if any(e.kind == "later" for e in batch):
            self.later.set()


@pytest.mark.parametrize("poison", [{40}, {0, 63}, {5, 6, 50}], ids=["one", "first-and-last", "three"])
def test_poison_events_are_parked_and_the_worker_goes_on(
    run: Runner[Any], data_dir: Path, poison: set[int]
) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir) as store:
            await store.append_batch(
                [((f"order:{i}", "eu"), "placed", {"i": i, "poison": i in poison}) for i in range(64)]
            )
            handler = AsyncPoisonHandler()
            # Never restart, and a backoff that would outlast the test: parked failures use neither.
            policy = ep.RestartPolicy.never(backoff_ms=(600_000, 600_000))
            config = ep.CursorWorkerConfig(
                batch_size=64, checkpoint_id=CP, dead_letter_after=2, restart=policy
            )
            handle = store.worker(ORDERS, handler, config)
            later = await store.append(("order:later", "eu"), "later", {"i": 64})
            await asyncio.wait_for(handler.later.wait(), 60)
            assert handle.is_alive() and handle.restarts == 0
            assert handler.handled == [s for s in range(65) if s not in poison]
            await handle.stop_and_join(30)  # the batch in the handler is committed first
            assert handle.position == later.global_sequence and handle.lag == 0
            letters = store.sync_store.dead_letters(CP)
            assert [d.event.global_sequence for d in letters] == sorted(poison)
            for letter in letters:
                assert letter.error_type == "ValueError"
                assert letter.message == f"poison {letter.event.global_sequence}"
                assert "raise ValueError" in letter.traceback and letter.attempts >= 2
                assert letter.parked_at_us > 0
            # Parked failures are durable, and the worker never received its own dead letters.
            assert all(e.kind != "eventpak.dead_letter" for e in await store.query(ORDERS))

    run(main())
    with ep.Store.open(data_dir) as reopened:
        assert [d.event.global_sequence for d in reopened.dead_letters(CP)] == sorted(poison)


def test_a_transient_failure_is_charged_and_can_exhaust_the_budget(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir) as store:
            await store.append_batch([((f"order:{i}", "eu"), "placed", {"i": i}) for i in range(4)])
            calls = 0

            async def flaky(batch: list[ep.Event], st: Any, witness: Any) -> None:
                nonlocal calls
                calls += 1
                if calls == 1:
                    raise ConnectionError("first call only")

            config = ep.CursorWorkerConfig(
                checkpoint_id=CP, dead_letter_after=3, restart=ep.RestartPolicy.never()
            )
            handle = store.worker(ORDERS, flaky, config)
            with pytest.raises(ep.RestartBudgetExhausted) as raised:
                await handle.join(30)
            assert isinstance(raised.value.__cause__, ConnectionError)
            assert store.sync_store.dead_letters(CP) == []
            assert handle.position == 3  # what went through was committed before it stopped

    run(main())


def test_lag_counts_the_backlog_of_a_worker_blocked_in_its_handler(run: Runner[Any], data_dir: Path) -> None:
    async def main() -> None:
        async with ep.aio.open(data_dir) as store:
            await store.append_batch([((f"order:{i}", "eu"), "placed", {"i": i}) for i in range(10)])
            await store.append_batch([(("other", "eu"), "placed", {"i": i}) for i in range(5)])
            entered, release = asyncio.Event(), asyncio.Event()

            async def slow(batch: list[ep.Event], st: Any, witness: Any) -> None:
                entered.set()
                await release.wait()

            handle = store.worker(ORDERS, slow, ep.CursorWorkerConfig(batch_size=4, checkpoint_id="slow"))
            await entered.wait()
            assert handle.lag == 10  # the batch in the handler counts; the other entity does not
            release.set()
            await store.append(("order:x", "eu"), "placed", {})
            while handle.lag:
                await asyncio.sleep(0.01)
            infos = {i.checkpoint_id: i for i in store.sync_store.checkpoints()}
            assert infos["slow"].lag_events == 0 and infos["slow"].position == 15
            await handle.stop_and_join(30)

    run(main())
