"""Append conditions (a dynamic consistency boundary): ``condition=ep.AppendCondition(region,
after)`` fails with ``ep.AppendConditionFailed`` naming the first matching event when a
visible event of the region was committed after ``after``, and the check and the write are
one atomic step: racing threads and processes get exactly one winner per conflict. A keyed
batch already committed returns its original receipts before the condition is looked at."""

from __future__ import annotations

import threading
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier
from pathlib import Path

import eventpak as ep
import pytest
from shared_helpers import CTX, SAFETY_NET_S, Children, children_fixture, finish_all, open_shared

R = ep.Region
COURSE = R.all().with_tags(["course:c1"])


@pytest.fixture
def spawn() -> list[Children]:
    yield from children_fixture()  # type: ignore[misc]


def _course_event(store: ep.Store, n: int, **options: object) -> ep.AppendReceipt:
    return store.append(("course:c1", "s"), "enrolled", n, tags=("course:c1",), **options)  # type: ignore[arg-type]


def test_after_none_fails_on_any_matching_event_and_names_the_first(store: ep.Store) -> None:
    condition = ep.AppendCondition(COURSE)
    assert condition.after is None and condition.fail_if_events_match == COURSE
    first = _course_event(store, 0, condition=condition)  # nothing matched yet
    store.append(("other", "s"), "noise", 1)
    _course_event(store, 2)
    with pytest.raises(ep.AppendConditionFailed) as failed:
        _course_event(store, 3, condition=condition)
    assert failed.value.global_sequence == first.global_sequence == 0
    with pytest.raises(ep.AppendConditionFailed) as failed:
        store.append_batch([(("x", "s"), "k", 4)], condition=condition)
    assert failed.value.global_sequence == 0
    assert store.stats()["events"] == 3  # nothing of the refused appends was written


def test_after_counts_only_later_events(store: ep.Store) -> None:
    for n in range(3):
        _course_event(store, n)  # 0, 1, 2
    store.append(("other", "s"), "noise", 3)  # 3
    assert _course_event(store, 4, condition=ep.AppendCondition(COURSE, after=2)).global_sequence == 4
    with pytest.raises(ep.AppendConditionFailed) as failed:
        _course_event(store, 5, condition=ep.AppendCondition(COURSE, after=2))
    assert failed.value.global_sequence == 4  # the first match after 2, not 0
    with pytest.raises(ep.AppendConditionFailed) as failed:
        _course_event(store, 5, condition=ep.AppendCondition(COURSE, after=0))
    assert failed.value.global_sequence == 1
    # A region the later events do not match passes.
    other = ep.AppendCondition(R.all().with_tags(["course:c2"]), after=0)
    assert store.append(("x", "s"), "k", 6, condition=other).global_sequence == 5


def test_unions_conditions_and_kinds(store: ep.Store) -> None:
    store.append(("student:s7", "s"), "enrolled", 0, tags=("student:s7",))
    boundary = R.any_of([COURSE, R.all().with_tags(["student:s7"]).with_kind("left")])
    head = store.head()
    assert store.append(("x", "s"), "k", 1, condition=ep.AppendCondition(boundary, after=head))
    store.append(("student:s7", "s"), "enrolled", 2, tags=("student:s7",))  # not in the boundary
    assert store.append(("x", "s"), "k", 3, condition=ep.AppendCondition(boundary, after=head))
    store.append(("student:s7", "s"), "left", 4, tags=("student:s7",))
    with pytest.raises(ep.AppendConditionFailed) as failed:
        store.append(("x", "s"), "k", 5, condition=ep.AppendCondition(boundary, after=head))
    assert failed.value.global_sequence == 4


def test_a_batch_is_written_whole_or_not_at_all(store: ep.Store) -> None:
    items = [ep.AppendRequest(("course:c1", "s"), "enrolled", n, tags=("course:c1",)) for n in range(3)]
    receipts = store.append_batch(items, condition=ep.AppendCondition(COURSE))
    assert [r.global_sequence for r in receipts] == [0, 1, 2]
    with pytest.raises(ep.AppendConditionFailed):
        store.append_batch(items, condition=ep.AppendCondition(COURSE, after=1))
    assert store.stats()["events"] == 3
    # No items: the condition alone is checked, and nothing is written either way.
    assert store.append_batch([], condition=ep.AppendCondition(COURSE, after=2)) == []
    with pytest.raises(ep.AppendConditionFailed):
        store.append_batch([], condition=ep.AppendCondition(COURSE, after=1))
    assert store.stats()["events"] == 3


def test_hidden_and_fenced_events_do_not_count(store: ep.Store) -> None:
    with pytest.raises(RuntimeError), store.fence() as fence:
        fence.append(("course:c1", "s"), "enrolled", 0, tags=("course:c1",))
        raise RuntimeError("cancelled")
    assert _course_event(store, 1, condition=ep.AppendCondition(COURSE)).global_sequence == 1


def test_a_keyed_batch_already_committed_returns_its_receipts_before_the_condition(store: ep.Store) -> None:
    condition = ep.AppendCondition(COURSE, after=None)
    items = [
        ep.AppendRequest(("course:c1", "s"), "enrolled", n, tags=("course:c1",), idempotency_key=f"k{n}")
        for n in range(2)
    ]
    original = store.append_batch(items, condition=condition)
    # The condition would fail now (the batch's own events match it): the retry still
    # returns the original receipts and writes nothing.
    assert store.append_batch(items, condition=condition) == original
    single = _course_event(store, 9, condition=None, idempotency_key="single")
    assert _course_event(store, 9, condition=condition, idempotency_key="single") == single
    assert store.stats()["events"] == 3
    # Not committed yet: the condition is checked (and fails).
    with pytest.raises(ep.AppendConditionFailed):
        _course_event(store, 10, condition=condition, idempotency_key="new")


def test_expected_sequence_and_conditions_both_hold(store: ep.Store) -> None:
    store.append(("acct", "s"), "k", 0)
    with pytest.raises(ep.ConcurrencyConflict):
        store.append(("acct", "s"), "k", 1, expected_sequence=0, condition=ep.AppendCondition(COURSE))
    receipt = store.append(("acct", "s"), "k", 1, expected_sequence=1, condition=ep.AppendCondition(COURSE))
    assert receipt.entity_sequence == 1


def test_condition_arguments_are_checked(store: ep.Store) -> None:
    with pytest.raises(TypeError, match=r"fail_if_events_match must be an ep\.Region"):
        ep.AppendCondition("course:c1")  # type: ignore[arg-type]
    with pytest.raises(ep.InvalidArgument):
        ep.AppendCondition(COURSE, after=-1)
    with pytest.raises(TypeError, match=r"condition must be an ep\.AppendCondition"):
        store.append(("a", "s"), "k", 1, condition=COURSE)  # type: ignore[arg-type]
    assert store.stats()["events"] == 0


def test_racing_threads_get_exactly_one_winner_per_conflicting_pair(open_store: object) -> None:
    store = open_store(sync="never")  # type: ignore[operator]
    rounds, threads = 60, 4
    barrier = threading.Barrier(threads)
    outcomes: list[list[str]] = [[] for _ in range(threads)]

    def contend(me: int) -> None:
        for rnd in range(rounds):
            region = R.all().with_tags([f"round:{rnd}"])
            barrier.wait()
            # Every thread read the same state (nothing of this round yet), then decides.
            condition = ep.AppendCondition(region, after=None)
            try:
                store.append(("r", "s"), "claim", {"by": me}, tags=(f"round:{rnd}",), condition=condition)
                outcomes[me].append("won")
            except ep.AppendConditionFailed:
                outcomes[me].append("lost")

    workers = [threading.Thread(target=contend, args=(me,)) for me in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for rnd in range(rounds):
        assert [o[rnd] for o in outcomes].count("won") == 1, f"round {rnd}"
        assert len(store.query(R.all().with_tags([f"round:{rnd}"]))) == 1


def child_conditional_claims(conn: Connection, path: str, me: int, rounds: int, barrier: Barrier) -> None:
    """Claims each round's tag with a condition that fails once anyone claimed it."""
    store = open_shared(path)
    outcomes = []
    for rnd in range(rounds):
        barrier.wait(SAFETY_NET_S)
        condition = ep.AppendCondition(R.all().with_tags([f"round:{rnd}"]))
        try:
            claim = {"by": me, "round": rnd}
            store.append(("r", "s"), "claim", claim, tags=(f"round:{rnd}",), condition=condition)
            outcomes.append("won")
        except ep.AppendConditionFailed as failed:
            outcomes.append(failed.global_sequence)
    store.close()
    conn.send(("done", outcomes))


def test_racing_processes_in_shared_mode_get_exactly_one_winner(spawn: Children, tmp_path: Path) -> None:
    path, n, rounds = str(tmp_path / "shared"), 3, 25
    open_shared(path).close()
    barrier = CTX.Barrier(n)
    children = [
        spawn(child_conditional_claims, path, me, rounds, barrier, name=f"claim-{me}") for me in range(n)
    ]
    outcomes = finish_all(children)
    with ep.Store.open(path) as store:
        for rnd in range(rounds):
            claims = store.query(R.all().with_tags([f"round:{rnd}"]))
            assert len(claims) == 1, f"round {rnd}"
            this_round = [o[rnd] for o in outcomes]
            assert this_round.count("won") == 1, f"round {rnd}: {this_round}"
            winner = this_round.index("won")
            assert claims[0].payload == {"by": winner, "round": rnd}
            # Each loser was told which event beat it.
            assert all(o in ("won", claims[0].global_sequence) for o in this_round)
        assert store.verify().ok


def test_a_conditions_repr_spells_after_as_python_does() -> None:
    assert repr(ep.AppendCondition(COURSE, after=5)) == f"AppendCondition({COURSE!r}, after=5)"
    assert repr(ep.AppendCondition(COURSE)) == f"AppendCondition({COURSE!r}, after=None)"
