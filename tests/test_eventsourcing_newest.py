"""The newest event of a table (``max_notification_id``, the ``head`` of a DCB read): found in
the index, the same answer as the last hit of ``store.query``, reading no event."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("eventsourcing")

import eventpak as ep
from eventpak.eventsourcing import EventpakFactory
from eventpak.eventsourcing._recorders import last_matching_sequence
from eventsourcing.dcb.api import DCBEvent, DCBQuery, DCBQueryItem
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import Environment


def _window_search(store: ep.Store, region: ep.Region) -> int | None:
    """What ``last_matching_sequence`` did before: queries back from the head in windows
    growing eightfold (an oracle: slow when the region's newest event is far back)."""
    head = store.head()
    if head is None:
        return None
    window = 1
    while True:
        after = head - window
        events = store.query(region, after=after if after >= 0 else None)
        if events:
            return events[-1].global_sequence
        if after < 0:
            return None
        window *= 8


def _last_hit(store: ep.Store, region: ep.Region) -> int | None:
    events = store.query(region)
    return events[-1].global_sequence if events else None


A, B = ep.Region.scope("a"), ep.Region.scope("b")
REGIONS = {
    "all": ep.Region.all(),
    "scope a": A,
    "scope b": B,
    "scope with no event": ep.Region.scope("none"),
    "kind": A.with_kind("x"),
    "kinds": A.with_kinds(["x", "z"]),
    "kind prefix": ep.Region.all().with_kind_prefix("y"),
    "tag": A.with_tags(["t1"]),
    "tags": A.with_tags(["t1", "t2"]),
    "tag nothing carries": A.with_tags(["nobody"]),
    "entity": ep.Region.entity("a:1", exact=True),
    "entity namespace": ep.Region.entity("a"),
    "clock range": ep.Region.entity("a:1", exact=True).with_clock_range(0, 1),
    "union": ep.Region.any_of([A.with_tags(["t2"]), B.with_kind("y")]),
    "union of disjoint tags": ep.Region.any_of([A.with_tags(["t1"]), A.with_tags(["t3"])]),
    "union matching nothing": ep.Region.any_of([A.with_kind("none"), B.with_tags(["nobody"])]),
    "only hidden events": ep.Region.scope("hidden"),
    "only removed events": ep.Region.scope("old"),
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ep.Store]:
    with ep.Store.open(tmp_path / "data", segment_max_bytes=4096) as store:
        yield store


def _fill(store: ep.Store) -> None:
    for i in range(40):  # removed by the compaction below
        store.append(("old:1", "old"), "x", {"i": i}, tags=["t1"])
    for i in range(30):
        scope = "a" if i % 3 else "b"
        kind = ("x", "y", "z")[i // 2 % 3]
        tags = [["t1"], ["t1", "t2"], ["t3"], []][i % 4]
        store.append((f"{scope}:{i % 2}", scope), kind, {"i": i}, tags=tags)
    with pytest.raises(RuntimeError), store.fence() as fence:  # cancelled: hidden for good
        fence.append(("a:1", "a"), "x", {}, tags=["t1", "t2"])
        fence.append(("hidden:1", "hidden"), "z", {})
        raise RuntimeError("cancel")
    for i in range(5):  # the hidden events are not the newest of the log
        store.append((f"c:{i}", "c"), "y", {}, tags=["t1"])
    report = store.compact(ep.Retention(predicate=lambda e: e.scope == "old"))
    assert report.removed == 40


@pytest.mark.parametrize("name", sorted(REGIONS))
def test_the_newest_event_of_a_region_is_the_last_query_hit(store: ep.Store, name: str) -> None:
    region = REGIONS[name]
    assert last_matching_sequence(store, region) is None  # an empty store
    _fill(store)
    expected = _last_hit(store, region)
    assert last_matching_sequence(store, region) == expected == _window_search(store, region)
    with store.fence() as fence:  # an open fence's events are not visible yet
        fence.append(("a:0", "a"), "y", {}, tags=["t1", "t2", "t3"])
        fence.append(("b:1", "b"), "y", {}, tags=["t2"])
        assert last_matching_sequence(store, region) == expected == _last_hit(store, region)
    # Committed: now they are, where they match.
    assert last_matching_sequence(store, region) == _last_hit(store, region) == _window_search(store, region)


def test_a_dcb_read_matching_nothing_reads_no_event_to_find_its_head(tmp_path: Path) -> None:
    factory = EventpakFactory(Environment("Shop", {"EVENTPAK_DATA_DIR": str(tmp_path / "data")}))
    try:
        dcb, app = factory.dcb_recorder(), factory.application_recorder()
        dcb.append([DCBEvent(type="Placed", data=b"", tags=[f"order:{i}"]) for i in range(500)])
        app.insert_events([StoredEvent(f"o{i}", 1, "Created", b"x") for i in range(200)])
        store = factory.store
        read: list[int] = []
        query = store.query

        def counted(*args: Any, **kwargs: Any) -> list[ep.Event]:
            events = query(*args, **kwargs)
            read.append(len(events))
            return events

        store.query = counted  # type: ignore[method-assign]
        try:
            response = dcb.read(DCBQuery(items=[DCBQueryItem(types=["Placed"], tags=["order:none"])]))
            assert list(response) == []
            assert response.head == 500  # the newest DCB event's position, behind 200 others
            assert app.max_notification_id() == 700
        finally:
            del store.query
        assert sum(read) == 0  # the DCB events in between were never materialised
    finally:
        factory.close()
