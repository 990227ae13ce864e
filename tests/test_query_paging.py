"""query(region, after=, limit=): strictly-after paging in commit order."""

from __future__ import annotations

import eventpak as ep
import pytest

R = ep.Region
N = 30


@pytest.fixture
def filled(store):
    for i in range(N):
        store.append((f"e{i % 3}", "s"), "even" if i % 2 == 0 else "odd", i)
    return store


def _seqs(events):
    return [e.global_sequence for e in events]


def test_query_without_after_starts_at_sequence_zero(filled):
    assert _seqs(filled.query(R.all())) == list(range(N))
    assert _seqs(filled.query(R.all(), after=None)) == list(range(N))


def test_after_is_strictly_after(filled):
    assert _seqs(filled.query(R.all(), after=0)) == list(range(1, N))
    assert _seqs(filled.query(R.all(), after=10)) == list(range(11, N))
    assert filled.query(R.all(), after=N - 1) == []


def test_after_beyond_the_end_is_empty(filled):
    assert filled.query(R.all(), after=N + 100) == []


def test_limit_caps_the_count(filled):
    assert _seqs(filled.query(R.all(), limit=5)) == [0, 1, 2, 3, 4]
    assert _seqs(filled.query(R.all(), limit=N + 10)) == list(range(N))


def test_limit_zero_returns_nothing(filled):
    assert filled.query(R.all(), limit=0) == []


def test_after_and_limit_together(filled):
    assert _seqs(filled.query(R.all(), after=7, limit=3)) == [8, 9, 10]


def test_after_and_limit_apply_to_matching_events(filled):
    region = R.entity("e1").with_kind("odd")
    matching = [i for i in range(N) if i % 3 == 1 and i % 2 == 1]
    assert _seqs(filled.query(region)) == matching
    after = matching[1]
    assert _seqs(filled.query(region, after=after, limit=2)) == matching[2:4]
    # `after` need not be the sequence of a matching event
    assert _seqs(filled.query(region, after=after + 1, limit=2)) == matching[2:4]


def test_query_results_are_in_commit_order(filled):
    for region in (R.all(), R.entity("e2"), R.all().with_kind("even")):
        seqs = _seqs(filled.query(region))
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == len(seqs)


@pytest.mark.parametrize("page_size", [1, 2, 3, 7, N, N + 1])
@pytest.mark.parametrize(
    "region",
    [R.all(), R.entity("e0"), R.all().with_kind("odd"), R.entity("e2").with_kind("even")],
    ids=lambda r: r.checkpoint_identity,
)
def test_paging_visits_every_matching_event_exactly_once(filled, region, page_size):
    expected = filled.query(region)
    seen = []
    after = None
    while True:
        page = filled.query(region, after=after, limit=page_size)
        assert len(page) <= page_size
        if not page:
            break
        seen.extend(page)
        after = page[-1].global_sequence
    assert [e.event_id for e in seen] == [e.event_id for e in expected]
    assert len({e.event_id for e in seen}) == len(seen)


def test_paging_sees_events_appended_between_pages(store):
    for i in range(5):
        store.append(("a", "s"), "k", i)
    first = store.query(R.all(), limit=5)
    store.append(("a", "s"), "k", 5)
    rest = store.query(R.all(), after=first[-1].global_sequence)
    assert [e.payload for e in first + rest] == list(range(6))
