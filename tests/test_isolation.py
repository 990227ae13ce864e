"""The bisection rule of dead-letter workers, driven without a worker: which deliveries come
in which order, what is parked with how many attempts, how far each step commits, and which
failures are charged to the restart budget or forgiven."""

from __future__ import annotations

from collections.abc import Callable

import eventpak as ep
import pytest
from eventpak.isolation import Isolation, Step


def _events(store: ep.Store, n: int) -> list[ep.Event]:
    store.append_batch([(("item", "s"), "k", i) for i in range(n)])
    return store.query(ep.Region.all())


class Run:
    """What one isolation did: deliveries (as payload ranges), steps, parked payloads."""

    def __init__(self) -> None:
        self.deliveries: list[list[int]] = []
        self.steps: list[Step] = []
        self.handled: list[int] = []

    @property
    def parked(self) -> list[tuple[int, int]]:
        return [(s.park.event.payload, s.park.attempts) for s in self.steps if s.park is not None]

    @property
    def charged(self) -> list[str]:
        return [str(e) for s in self.steps for e in s.charged]

    @property
    def forgiven(self) -> int:
        return sum(s.forgiven for s in self.steps)


def _drive(batch: list[ep.Event], n: int, fails: Callable[[int, int], bool]) -> Run:
    """Delivers ``batch`` as a worker would; ``fails(payload, seen)`` says whether the handler
    fails on that event the ``seen``-th time it is delivered (from 0)."""
    run = Run()
    seen: dict[int, int] = {}
    isolation = Isolation(batch, n)
    while (delivery := isolation.delivery) is not None:
        payloads = [e.payload for e in delivery]
        run.deliveries.append(payloads)
        failing = [p for p in payloads if fails(p, seen.get(p, 0))]
        for p in payloads:
            seen[p] = seen.get(p, 0) + 1
        if failing:
            step = isolation.failed(ValueError(f"bad {failing[0]}"))
        else:
            run.handled.extend(payloads)
            step = isolation.succeeded()
        run.steps.append(step)
    assert isolation.done
    return run


def _span(first: int, last: int) -> list[int]:
    return list(range(first, last + 1))


def test_one_poison_is_found_by_halving_and_parked_after_n_failures_alone(store: ep.Store) -> None:
    run = _drive(_events(store, 64), 2, lambda p, _seen: p == 40)
    assert run.deliveries == [
        _span(0, 63),
        _span(0, 63),  # the batch as pulled: n = 2 deliveries
        _span(0, 31),
        _span(32, 63),  # halves, in order
        _span(32, 47),
        _span(32, 39),
        _span(40, 47),
        _span(40, 43),
        [40, 41],
        [40],
        [40],  # a single event gets n deliveries
        [41],
        [42, 43],
        _span(44, 47),
        _span(48, 63),
    ]
    assert run.handled == [p for p in range(64) if p != 40]
    # attempts: 2 of the batch, one per part of 32, 16, 8, 4 and 2 events, 2 alone
    assert run.parked == [(40, 9)]
    assert run.charged == [] and run.forgiven == 9


def test_several_poisons_at_the_edges_and_inside(store: ep.Store) -> None:
    poison = {0, 31, 63}
    run = _drive(_events(store, 64), 3, lambda p, _seen: p in poison)
    assert run.handled == [p for p in range(64) if p not in poison]
    assert run.parked == [(0, 3 + 5 + 3), (31, 3 + 5 + 3), (63, 3 + 5 + 3)]
    assert run.charged == []


def test_commits_move_forward_through_handled_and_parked_events(store: ep.Store) -> None:
    run = _drive(_events(store, 8), 1, lambda p, _seen: p in {2, 7})
    commits = [s.commit.payload for s in run.steps if s.commit is not None]
    assert commits == sorted(commits) and commits[-1] == 7
    # a parked event is committed in the step that parks it, never before
    for step in run.steps:
        if step.park is not None:
            assert step.commit is not None and step.commit.payload == step.park.event.payload
    assert [p for p, _ in run.parked] == [2, 7]


def test_a_single_event_batch_is_parked_after_n_failures(store: ep.Store) -> None:
    run = _drive(_events(store, 1), 4, lambda _p, _seen: True)
    assert run.deliveries == [[0]] * 4 and run.parked == [(0, 4)]


def test_a_batch_that_fails_then_goes_through_is_charged_not_parked(store: ep.Store) -> None:
    run = _drive(_events(store, 4), 3, lambda p, seen: p == 2 and seen < 2)
    assert run.deliveries == [_span(0, 3)] * 3
    assert run.parked == [] and run.charged == ["bad 2", "bad 2"] and run.forgiven == 0
    assert run.steps[-1].charged and run.steps[-1].commit is not None  # charged when it goes through


def test_a_part_that_heals_during_bisection_is_charged_once_resolved(store: ep.Store) -> None:
    run = _drive(_events(store, 8), 2, lambda p, seen: p == 5 and seen < 3)
    assert run.deliveries == [_span(0, 7), _span(0, 7), _span(0, 3), _span(4, 7), [4, 5], [6, 7]]
    assert run.parked == [] and run.charged == ["bad 5"] * 3
    # the three failures held events 4..7: they are settled when 7 is handled
    assert [len(s.charged) for s in run.steps] == [0, 0, 0, 0, 0, 3]


def test_failures_beside_a_parked_event_are_forgiven_and_others_charged(store: ep.Store) -> None:
    # 0 always fails; 3 fails once, in a delivery that does not hold 0
    run = _drive(_events(store, 4), 2, lambda p, seen: p == 0 or (p == 3 and seen == 2))
    assert run.deliveries == [_span(0, 3), _span(0, 3), [0, 1], [0], [0], [1], [2, 3], [2], [3]]
    assert run.parked == [(0, 5)]
    assert run.forgiven == 5 and run.charged == ["bad 3"]


def test_isolation_refuses_what_it_cannot_drive(store: ep.Store) -> None:
    batch = _events(store, 2)
    with pytest.raises(ValueError, match="at least one event"):
        Isolation([], 1)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="at least 1"):
            Isolation(batch, bad)
    with pytest.raises(TypeError, match="must be an int"):
        Isolation(batch, True)
    isolation = Isolation(batch, 1)
    isolation.succeeded()
    assert isolation.done and isolation.delivery is None
    with pytest.raises(RuntimeError, match="done"):
        isolation.failed(ValueError("late"))
