"""Workers with ``dead_letter_after``: poison events are found by bisection, parked once as
durable ``eventpak.dead_letter`` events, and the worker goes on; parked failures cost no
restart and wait no backoff; bad configs are refused before anything happens."""

from __future__ import annotations

import threading
from pathlib import Path

import eventpak as ep
import pytest
from conftest import wait_until
from eventpak.dead_letters import DEAD_LETTER_KIND, dead_letter_entity

CP = "mailer"
ORDERS = ep.Region.entity("order")


def _append(store: ep.Store, n: int, poison: set[int] | frozenset[int] = frozenset()) -> list[int]:
    receipts = store.append_batch(
        [((f"order:{i}", "eu"), "placed", {"i": i, "poison": i in poison}) for i in range(n)]
    )
    return [r.global_sequence for r in receipts]


class Handler:
    """Fails on every poison event; records the events of each delivery that goes through."""

    def __init__(self) -> None:
        self.handled: list[int] = []
        self.kinds: set[str] = set()
        self.later = threading.Event()

    def __call__(self, batch: list[ep.Event], _store: ep.Store, witness: ep.AtLeastOnce | None) -> None:
        assert witness == ep.AtLeastOnce(CP)
        self.kinds.update(e.kind for e in batch)
        for e in batch:
            if isinstance(e.payload, dict) and e.payload.get("poison"):
                raise ValueError(f"poison {e.payload['i']}")
        self.handled.extend(e.global_sequence for e in batch)
        if any(e.kind == "later" for e in batch):
            self.later.set()


def _config(n: int = 2, **options: object) -> ep.CursorWorkerConfig:
    return ep.CursorWorkerConfig(checkpoint_id=CP, dead_letter_after=n, **options)  # type: ignore[arg-type]


def _run_until_later(store: ep.Store, handler: Handler, config: ep.CursorWorkerConfig) -> int:
    """Starts the worker on what is in the store, appends a later event, waits until the
    handler has it, then stops the worker; returns the later event's sequence."""
    handle = store.cursor_worker(ORDERS, handler, config)
    later = store.append(("order:later", "eu"), "later", {}).global_sequence
    assert handler.later.wait(30), "the worker did not go on past its dead letters"
    assert handle.is_alive() and handle.restarts == 0
    handle.stop_and_join(timeout=30)
    return later


@pytest.mark.parametrize("poison", [{40}, {0}, {63}, {5, 6, 50}], ids=["middle", "first", "last", "three"])
def test_poison_events_are_parked_once_and_every_good_event_handled_in_order(
    open_store, data_dir: Path, poison: set[int]
) -> None:
    store = open_store()
    seqs = _append(store, 64, poison)
    handler = Handler()
    later = _run_until_later(store, handler, _config(2))

    good = [s for i, s in enumerate(seqs) if i not in poison]
    assert handler.handled == [*good, later]
    letters = store.dead_letters(CP)
    assert [d.event.global_sequence for d in letters] == [seqs[i] for i in sorted(poison)]
    for letter, i in zip(letters, sorted(poison), strict=True):
        assert letter.event.payload == {"i": i, "poison": True}
        assert letter.error_type == "ValueError" and letter.message == f"poison {i}"
        assert letter.traceback.startswith("Traceback") and f"ValueError: poison {i}" in letter.traceback
        assert "in __call__" in letter.traceback
        # 2 deliveries of the batch, one part each of 32, 16, 8, 4 and 2 events, 2 alone
        assert letter.attempts == 2 + 5 + 2
        assert letter.parked_at_us >= letter.event.timestamp_us
    # the position is durable past the parked events
    checkpoint = ep.Cursor.load_checkpoint(data_dir, CP)
    assert checkpoint is not None and checkpoint.position == later

    store.close()
    reopened = open_store(read_only=True)
    again = reopened.dead_letters(CP)
    assert again == letters


def test_a_dead_letter_is_a_reserved_event_caused_by_the_parked_one(store: ep.Store) -> None:
    seqs = _append(store, 3, {1})
    _run_until_later(store, Handler(), _config(1))
    poison = store.query(ORDERS)[1]
    assert poison.global_sequence == seqs[1]
    [record] = store.effects(poison.event_id)
    assert record.kind == DEAD_LETTER_KIND == "eventpak.dead_letter"
    assert record.coordinate == ep.Coordinate(dead_letter_entity(CP), "eventpak")
    assert record.correlation_id == poison.correlation_id
    assert set(record.payload) == {
        "event_id",
        "global_sequence",
        "checkpoint_id",
        "error_type",
        "message",
        "traceback",
        "attempts",
        "parked_at_us",
    }
    assert (record.payload["event_id"], record.payload["global_sequence"]) == (str(poison.event_id), seqs[1])
    assert record.payload["checkpoint_id"] == CP
    with pytest.raises(ep.InvalidKind):
        store.append(("x", "y"), DEAD_LETTER_KIND, {})


def test_a_worker_never_receives_its_own_dead_letters(store: ep.Store, data_dir: Path) -> None:
    _append(store, 4, {2})
    handler = Handler()
    handle = store.cursor_worker(ep.Region.all(), handler, _config(1))
    later = store.append(("order:later", "eu"), "later", {}).global_sequence
    assert handler.later.wait(30)
    # its dead letter came after the poison: the worker moves past it without receiving it
    wait_until(lambda: handle.lag == 0, 30, "the worker to move past its dead letter")
    handle.stop_and_join(timeout=30)
    assert DEAD_LETTER_KIND not in handler.kinds
    assert len(store.dead_letters(CP)) == 1
    checkpoint = ep.Cursor.load_checkpoint(data_dir, CP)
    assert checkpoint is not None and checkpoint.position == store.head()
    assert store.dead_letters(CP)[0].event.global_sequence < later


def test_other_workers_get_dead_letters_only_when_their_region_names_the_kind(store: ep.Store) -> None:
    _append(store, 2, {0})
    _run_until_later(store, Handler(), _config(1))
    [letter] = store.dead_letters(CP)
    marker = store.append(("order:x", "eu"), "placed", {}).global_sequence
    regions = {"all": ep.Region.all(), "reserved": ep.Region.all().with_kind_prefix("eventpak.")}
    seen: dict[str, list[str]] = {name: [] for name in regions}
    done = {name: threading.Event() for name in regions}
    handles = []
    for name, region in regions.items():

        def record(batch: list[ep.Event], _s: ep.Store, _w: object, name: str = name) -> None:
            seen[name].extend(e.kind for e in batch)
            if any(e.global_sequence == marker or e.kind == DEAD_LETTER_KIND for e in batch):
                done[name].set()

        handles.append(store.cursor_worker(region, record, ep.CursorWorkerConfig(checkpoint_id=f"w-{name}")))
    assert done["reserved"].wait(30) and done["all"].wait(30)
    for handle in handles:
        handle.stop_and_join(timeout=30)
    assert DEAD_LETTER_KIND not in seen["all"] and seen["all"][-1] == "placed"
    assert seen["reserved"] == [DEAD_LETTER_KIND]
    assert letter.event.payload == {"i": 0, "poison": True}


def test_parked_failures_do_not_spend_a_never_policy(store: ep.Store) -> None:
    _append(store, 8, {3})
    handler = Handler()
    _run_until_later(store, handler, _config(2, restart=ep.RestartPolicy.never()))
    assert len(store.dead_letters(CP)) == 1


def test_isolation_does_not_wait_the_restart_backoff(store: ep.Store) -> None:
    # A ten-minute backoff: had any failure of the isolation waited it, the later event
    # would not be handled within the wait of _run_until_later.
    policy = ep.RestartPolicy.bounded(1, 60_000, backoff_ms=(600_000, 600_000))
    _append(store, 16, {7, 8})
    handler = Handler()
    _run_until_later(store, handler, _config(3, restart=policy))
    assert [d.event.payload["i"] for d in store.dead_letters(CP)] == [7, 8]


def test_when_every_event_fails_every_event_is_parked_and_the_worker_goes_on(store: ep.Store) -> None:
    seqs = _append(store, 4)

    def down(_batch: list[ep.Event], _s: ep.Store, _w: object) -> None:
        raise ConnectionError("the mail server is down")

    handle = store.cursor_worker(ORDERS, down, _config(2, restart=ep.RestartPolicy.never()))
    wait_until(lambda: len(store.dead_letters(CP)) == 4, 30, "every event to be parked")
    later = store.append(("order:later", "eu"), "placed", {}).global_sequence
    wait_until(lambda: len(store.dead_letters(CP)) == 5, 30, "the later event to be parked")
    assert handle.is_alive() and handle.restarts == 0
    handle.stop_and_join(timeout=30)
    letters = store.dead_letters(CP)
    assert [d.event.global_sequence for d in letters] == [*seqs, later]
    # each of the four: 2 deliveries of the batch, its half, 2 alone; the later one: 2 alone
    assert [d.attempts for d in letters] == [5, 5, 5, 5, 2]
    assert {d.error_type for d in letters} == {"ConnectionError"}


def test_a_failure_that_goes_away_on_retry_is_charged_as_a_restart(store: ep.Store) -> None:
    failures = [1]

    def flaky(batch: list[ep.Event], _s: ep.Store, _w: object) -> None:
        if failures[0]:
            failures[0] -= 1
            raise TimeoutError("slow")
        if any(e.kind == "later" for e in batch):
            done.set()

    done = threading.Event()
    _append(store, 4)
    handle = store.cursor_worker(ORDERS, flaky, _config(3))
    store.append(("order:later", "eu"), "later", {})
    assert done.wait(30)
    handle.stop_and_join(timeout=30)
    assert handle.restarts == 1 and store.dead_letters(CP) == []


def test_a_charged_failure_beyond_the_budget_stops_the_worker_after_committing(
    store: ep.Store, data_dir: Path
) -> None:
    failures = [1]

    def flaky(_batch: list[ep.Event], _s: ep.Store, _w: object) -> None:
        if failures[0]:
            failures[0] -= 1
            raise TimeoutError("slow")

    seqs = _append(store, 4)
    handle = store.cursor_worker(ORDERS, flaky, _config(2, restart=ep.RestartPolicy.never()))
    with pytest.raises(ep.RestartBudgetExhausted) as exhausted:
        handle.join(timeout=30)
    assert isinstance(exhausted.value.__cause__, TimeoutError)
    checkpoint = ep.Cursor.load_checkpoint(data_dir, CP)
    assert checkpoint is not None and checkpoint.position == seqs[-1]
    assert store.dead_letters(CP) == []


def test_parking_the_same_event_again_writes_no_second_dead_letter(store: ep.Store) -> None:
    _append(store, 4, {1})
    _run_until_later(store, Handler(), _config(1))
    assert store.reset_checkpoint(CP)  # the next worker starts over and meets the poison again
    handler = Handler()
    handle = store.cursor_worker(ORDERS, handler, _config(1))
    wait_until(lambda: handle.lag == 0, 30, "the second run to catch up")
    handle.stop_and_join(timeout=30)
    assert [d.event.payload for d in store.dead_letters(CP)] == [{"i": 1, "poison": True}]
    assert len(handler.handled) == 4  # three orders and the later event, handled again


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "2"])
def test_bad_dead_letter_after_is_refused_and_nothing_is_touched(
    store: ep.Store, data_dir: Path, bad: object
) -> None:
    _append(store, 2, {0})
    before = sorted(p.relative_to(data_dir) for p in data_dir.rglob("*"))
    with pytest.raises(ep.InvalidConfig, match="dead_letter_after"):
        store.cursor_worker(ORDERS, Handler(), ep.CursorWorkerConfig(checkpoint_id=CP, dead_letter_after=bad))  # type: ignore[arg-type]
    with pytest.raises(ep.InvalidConfig, match="needs a checkpoint_id"):
        ep.CursorWorkerConfig(dead_letter_after=2)
    assert sorted(p.relative_to(data_dir) for p in data_dir.rglob("*")) == before
    assert not (data_dir / "cursors").exists()
    assert store.stats()["events"] == 2 and store.dead_letters(CP) == []
    with pytest.raises(ep.InvalidCheckpointId):
        store.dead_letters("a/b")


def test_a_failure_too_large_for_one_event_is_parked_cut_to_fit(open_store) -> None:
    store = open_store(max_event_bytes=4096)
    seqs = _append(store, 2, {1})

    def verbose(batch: list[ep.Event], _s: ep.Store, _w: object) -> None:
        if any(e.payload["poison"] for e in batch):
            raise ValueError("x" * 20_000 + " the end")

    handle = store.cursor_worker(ORDERS, verbose, _config(1))
    wait_until(lambda: handle.lag == 0, 30, "the poison event to be parked")
    handle.stop_and_join(timeout=30)
    [letter] = store.dead_letters(CP)
    assert letter.event.global_sequence == seqs[1]
    assert letter.message.startswith("xxx") and len(letter.message) < 4096
    # the traceback keeps its end: the exception line
    assert letter.traceback.endswith(" the end\n")
