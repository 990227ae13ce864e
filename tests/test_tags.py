"""Tags and unions of regions: ``tags=`` on appends, ``event.tags`` as given, regions that
require tags (``with_tags``) and unions (``Region.any_of``) through every read path (query
with after and limit, cursors, workers, projections, checkpoint lag), across reopen with and
without the index checkpoint, and bad tags refused with nothing written."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest
from conftest import wait_until

R = ep.Region
COURSE = R.all().with_tags(["course:c1"])
STUDENT = R.all().with_tags(["student:s7"])


def _enrol(store: ep.Store) -> None:
    """Eight events: 0 c1 (kind created), 1 c1/s7 (enrolled), 2 untagged, 3 s7 (left), 4 s7/c2
    (enrolled), 5 c1/s7 (left), then a batch of 6 c1 (renamed) and an untagged event 7."""
    store.append(("course:c1", "s"), "created", {}, tags=("course:c1",))
    store.append(("student:s7", "s"), "enrolled", {}, tags=("course:c1", "student:s7"))
    store.append(("other", "s"), "noise", {})
    store.append(("student:s7", "s"), "left", {}, tags=["student:s7"])
    store.append(("student:s7", "s"), "enrolled", {}, tags=("student:s7", "course:c2"))
    store.append(("student:s7", "s"), "left", {}, tags=("course:c1", "student:s7"))
    store.append_batch(
        [
            ep.AppendRequest(("course:c1", "s"), "renamed", {}, tags=("course:c1",)),
            (("other", "s"), "noise", {}),
        ]
    )


def _seqs(events: list[ep.Event]) -> list[int]:
    return [e.global_sequence for e in events]


def test_event_tags_are_kept_as_given_in_order(store: ep.Store) -> None:
    store.append(("a", "s"), "k", 1, tags=("z", "a", "m|=/ é"))
    store.append_batch([ep.AppendRequest(("a", "s"), "k", 2, tags=["second", "first"])])
    store.append(("a", "s"), "k", 3)
    events = store.query(R.all())
    assert [e.tags for e in events] == [("z", "a", "m|=/ é"), ("second", "first"), ()]
    assert all(type(e.tags) is tuple for e in events)
    again = pickle.loads(pickle.dumps(events[0]))
    assert again.tags == ("z", "a", "m|=/ é") and again == events[0]


def test_with_tags_requires_every_tag_and_combines_with_other_filters(store: ep.Store) -> None:
    _enrol(store)
    assert _seqs(store.query(COURSE)) == [0, 1, 5, 6]
    assert _seqs(store.query(COURSE.with_tags(["student:s7"]))) == [1, 5]
    assert _seqs(store.query(R.all().with_tags(["student:s7", "course:c1"]))) == [1, 5]
    assert _seqs(store.query(STUDENT.with_kind("left"))) == [3, 5]
    assert _seqs(store.query(R.entity("course:c1").with_tags(["course:c1"]))) == [0, 6]
    assert _seqs(store.query(R.all().with_tags(["course:c3"]))) == []
    assert _seqs(store.query(R.all().with_tags(["Course:c1"]))) == []  # matched literally
    assert R.all().with_tags([]) == R.all()


def test_query_after_and_limit_page_through_tags_and_unions(store: ep.Store) -> None:
    _enrol(store)
    assert _seqs(store.query(COURSE, after=1)) == [5, 6]
    assert _seqs(store.query(COURSE, after=0, limit=2)) == [1, 5]
    union = R.any_of([COURSE, STUDENT.with_kind("left"), R.entity("other")])
    assert _seqs(store.query(union)) == [0, 1, 2, 3, 5, 6, 7]
    assert _seqs(store.query(union, after=2, limit=3)) == [3, 5, 6]
    paged, after = [], None
    while batch := store.query(union, after=after, limit=2):
        paged += _seqs(batch)
        after = batch[-1].global_sequence
    assert paged == [0, 1, 2, 3, 5, 6, 7]


def test_unions_are_canonical_and_refuse_filters_of_their_own() -> None:
    a, b = COURSE, R.scope("eu").with_kind("x")
    assert R.any_of([a, b]) == R.any_of([b, a, a]) == R.any_of([R.any_of([a]), R.any_of([b, a])])
    assert R.any_of([a]) == a
    assert R.any_of([a, b]).members == sorted([a, b], key=lambda r: r.checkpoint_identity)
    assert a.members == [] and a.tags == ["course:c1"]
    with pytest.raises(ep.InvalidRegion):
        R.any_of([])
    with pytest.raises(ep.InvalidRegion):
        R.any_of([a, b]).with_kind("y")
    with pytest.raises(TypeError):
        R.any_of([a, "course:c1"])  # type: ignore[list-item]
    assert R.any_of([a, b]).matches(("e", "eu"), "x") and not R.any_of([a, b]).matches(("e", "us"), "x")
    assert a.matches(("e", "s"), "k", tags=["course:c1", "more"]) and not a.matches(("e", "s"), "k")


def test_identities_are_injective_and_read_back_for_checkpoint_lag(store: ep.Store) -> None:
    _enrol(store)
    regions = {
        "course": COURSE,
        "both": COURSE.with_tags(["student:s7"]),
        "comma": R.all().with_tags(["course:c1,student:s7"]),
        "union": R.any_of([COURSE, STUDENT.with_kind("left")]),
        "union-other": R.any_of([COURSE, STUDENT]),
    }
    identities = {name: r.checkpoint_identity for name, r in regions.items()}
    assert len(set(identities.values())) == len(regions)
    assert identities["course"] == "entity=*|scope=*|kind=*|clock=*|tags=course:c1"
    assert identities["comma"] == "entity=*|scope=*|kind=*|clock=*|tags=course:c1%2Cstudent:s7"
    assert identities["union"].startswith("any=2|entity=")
    for name, region in regions.items():
        cursor = store.cursor(region)
        cursor.poll_batch(1)
        cursor.commit(name)
    lag = {c.checkpoint_id: (c.region_identity, c.lag_events) for c in store.checkpoints()}
    for name, region in regions.items():
        expected = max(len(store.query(region)) - 1, 0)  # "comma" matches nothing
        assert lag[name] == (identities[name], expected), name


def test_cursors_deliver_tags_and_unions_and_resume_from_checkpoints(store: ep.Store) -> None:
    _enrol(store)
    union = R.any_of([COURSE, R.entity("other")])
    cursor = store.cursor(union)
    assert _seqs(cursor.poll_batch(3)) == [0, 1, 2]
    cursor.commit("union")
    store.append(("other", "s"), "noise", {})
    store.append(("x", "s"), "k", {}, tags=["course:c1"])
    again = store.cursor(union)
    assert again.resume("union")
    assert _seqs(again.pull_batch(10, 5.0)) == [5, 6, 7, 8, 9]
    with pytest.raises(ep.CursorCheckpointRegionMismatch):
        store.cursor(COURSE).resume("union")
    assert _seqs(store.cursor(COURSE, after=5).poll_batch(10)) == [6, 9]


def test_cursor_workers_handle_tagged_events_and_unions(store: ep.Store) -> None:
    _enrol(store)
    seen: list[int] = []
    lock = threading.Lock()

    def handler(batch: list[ep.Event], _store: ep.Store, _witness: Any) -> ep.CursorWorkerAction:
        with lock:
            seen.extend(e.global_sequence for e in batch)
        return ep.CursorWorkerAction.CONTINUE

    config = ep.CursorWorkerConfig(batch_size=2, checkpoint_id="tagged")
    handle = store.cursor_worker(R.any_of([STUDENT.with_kind("left"), COURSE]), handler, config)
    store.append(("late", "s"), "k", {}, tags=("student:s7",))
    store.append(("late", "s"), "left", {}, tags=("student:s7",))

    def done() -> bool:
        with lock:
            return len(seen) == 6

    wait_until(done, what="the worker handled every matching event")
    handle.stop_and_join()
    assert seen == [0, 1, 3, 5, 6, 9]
    assert handle.position == 9


class Enrolments(ep.Projection[list[int]]):
    name = "enrolments"
    version = 1
    kinds = ("enrolled", "left", "created")

    def initial(self) -> list[int]:
        return []

    def apply(self, state: list[int], event: ep.Event) -> list[int]:
        return [*state, event.global_sequence]


def test_projections_fold_tag_and_union_targets(open_store: Any, tmp_path: Path) -> None:
    store = open_store(projection_cache=ep.NativeCache(tmp_path / "cache"))
    _enrol(store)
    assert store.project(COURSE, Enrolments()) == [0, 1, 5]  # kind "renamed" is not relevant
    union = R.any_of([COURSE, R.all().with_tags(["course:c2"])])
    assert store.project(union, Enrolments()) == [0, 1, 4, 5]
    store.append(("s", "s"), "enrolled", {}, tags=("course:c2",))
    assert store.project(union, Enrolments()) == [0, 1, 4, 5, 8]
    assert store.project(R.all().with_tags(["nobody"]), Enrolments()) is None


@pytest.mark.parametrize("checkpoint", [True, False], ids=["index-checkpoint", "full-scan"])
def test_tags_survive_reopen(open_store: Any, data_dir: Path, checkpoint: bool) -> None:
    store = open_store()
    _enrol(store)
    with store.fence() as fence:
        fence.append(("fenced", "s"), "enrolled", {}, tags=("course:c1",))
    fence = store.fence()
    with pytest.raises(RuntimeError), fence:
        fence.append(("cancelled", "s"), "enrolled", {}, tags=("course:c1",))
        raise RuntimeError("cancel the fence")
    before = {name: _seqs(store.query(r)) for name, r in [("c", COURSE), ("s", STUDENT)]}
    tags_before = [e.tags for e in store.query(R.all())]
    store.close()
    if not checkpoint:
        (data_dir / "index.ckpt").unlink()
    again = open_store()
    assert again.stats()["index_checkpoint"] == ("loaded" if checkpoint else "missing")
    assert {name: _seqs(again.query(r)) for name, r in [("c", COURSE), ("s", STUDENT)]} == before
    assert before["c"] == [0, 1, 5, 6, 8]  # the cancelled fence's event stays hidden
    assert [e.tags for e in again.query(R.all())] == tags_before
    assert again.verify().ok
    again.append(("new", "s"), "k", {}, tags=("course:c1",))
    assert _seqs(again.query(COURSE, after=8)) == [10]


@pytest.mark.parametrize(
    "tags",
    [
        [""],
        ["ok", "bad\x00"],
        ["tab\tbad"],
        ["\x7f"],
        ["x" * 256],
        ["dup", "dup"],
        [str(i) for i in range(65)],
    ],
    ids=["empty", "nul", "tab", "del", "too-long", "twice", "too-many"],
)
def test_bad_tags_are_refused_and_nothing_is_written(store: ep.Store, tags: list[str]) -> None:
    store.append(("a", "s"), "k", 0)
    with pytest.raises(ep.InvalidTag) as refused:
        store.append(("a", "s"), "k", 1, tags=tags)
    assert isinstance(refused.value, ValueError) and refused.value.reason
    with pytest.raises(ep.InvalidTag):
        store.append_batch([(("a", "s"), "k", 2), ep.AppendRequest(("a", "s"), "k", 3, tags=tags)])
    assert store.stats()["events"] == 1 and store.head() == 0
    if len(set(tags)) == len(tags) <= 64:  # a region takes any number of tags, twice or not
        with pytest.raises(ep.InvalidTag):
            R.all().with_tags(tags)


def test_the_longest_and_the_most_tags_are_accepted(store: ep.Store) -> None:
    many = [f"t{i}" for i in range(64)]
    store.append(("a", "s"), "k", 1, tags=many)
    store.append(("a", "s"), "k", 2, tags=["é" * 127 + "x"])  # 255 bytes
    assert store.query(R.all().with_tags(["t63", "t0"]))[0].tags == tuple(many)
    assert len(store.query(R.all().with_tags(["é" * 127 + "x"]))) == 1


def test_tags_must_be_a_sequence_of_str(store: ep.Store) -> None:
    with pytest.raises(TypeError, match="tags must be a sequence of str"):
        store.append(("a", "s"), "k", 1, tags="course:c1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"tags\[1\] must be a str"):
        store.append(("a", "s"), "k", 1, tags=("a", 2))  # type: ignore[arg-type]
    assert store.stats()["events"] == 0


def test_keyed_replays_compare_tags(store: ep.Store) -> None:
    first = store.append(("a", "s"), "k", 1, tags=("t",), idempotency_key="key")
    assert store.append(("a", "s"), "k", 1, tags=("t",), idempotency_key="key") == first
    with pytest.raises(ep.IdempotencyConflict):
        store.append(("a", "s"), "k", 1, tags=("other",), idempotency_key="key")
    assert store.stats()["events"] == 1


def test_region_pickles_with_tags_and_members() -> None:
    for region in (COURSE, R.any_of([COURSE, R.entity("acct").with_kind("k")])):
        again = pickle.loads(pickle.dumps(region))
        assert again == region and again.checkpoint_identity == region.checkpoint_identity
