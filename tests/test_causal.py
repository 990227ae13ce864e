"""The causal graph: ``caused_by`` / ``causation_id`` / ``ep.PriorItem`` at append, and the
walks ``causes``, ``effects``, ``descendants`` and ``correlated``.

Covered: how each form of cause sets ``causation_id`` and ``correlation_id``; refused links
(typed error, nothing written); causes outside the store; walk limits, depths and paging;
hidden (cancelled fence) events; the same answers after reopening with the index checkpoint,
without it and with it deleted; ``ep.PriorItem`` as a value; and a hypothesis property that
checks every walk against a model computed in Python (60 examples; 600 with
``EVENTPAK_EXTENDED=1``).
"""

from __future__ import annotations

import os
import pickle
import random
import shutil
import tempfile
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

R = ep.Region
FORMS = ("event", "receipt", "uuid", "str")
FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXTENDED = os.environ.get("EVENTPAK_EXTENDED", "") not in ("", "0")


def _ids(events: list[ep.Event]) -> list[uuid.UUID]:
    return [e.event_id for e in events]


def _seqs(events: list[ep.Event]) -> list[int]:
    return [e.global_sequence for e in events]


def _as_cause(store: ep.Store, receipt: ep.AppendReceipt, form: str) -> Any:
    """The receipt's event in one of the forms ``caused_by`` takes."""
    if form == "event":
        return store.get(receipt.event_id)
    if form == "receipt":
        return receipt
    if form == "uuid":
        return receipt.event_id
    assert form == "str"
    return str(receipt.event_id)


def _log(store: ep.Store) -> tuple[int, int | None, list[tuple[Any, ...]]]:
    """Everything a refused append must leave as it was: the log length (hidden events
    included), the head and every visible event."""
    events = [
        (e.event_id, e.global_sequence, e.entity_sequence, e.causation_id, e.correlation_id, e.hash)
        for e in store.query(R.all())
    ]
    return store.stats()["events"], store.head(), events


# --- caused_by: causation and correlation ------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_caused_by_sets_the_causation_id_and_inherits_the_correlation(store, coord, form):
    saga = uuid.uuid4()
    cause = store.append(coord("order:1"), "OrderPlaced", 1, correlation_id=saga)
    receipt = store.append(coord("payment:1"), "PaymentCharged", 2, caused_by=_as_cause(store, cause, form))
    effect = store.get(receipt.event_id)
    assert effect.causation_id == cause.event_id
    assert effect.correlation_id == saga


@pytest.mark.parametrize("form", FORMS)
def test_caused_by_a_root_puts_the_effect_in_the_roots_own_correlation(store, coord, form):
    root = store.append(coord("order:1"), "OrderPlaced", 1)
    receipt = store.append(coord("payment:1"), "PaymentCharged", 2, caused_by=_as_cause(store, root, form))
    effect = store.get(receipt.event_id)
    assert effect.causation_id == root.event_id
    assert effect.correlation_id == root.event_id
    assert _ids(store.correlated(root.event_id)) == [root.event_id, receipt.event_id]


@pytest.mark.parametrize("form", FORMS)
def test_explicit_correlation_id_wins_over_the_inherited_one(store, coord, form):
    cause = store.append(coord("a"), "k", 1, correlation_id=uuid.uuid4())
    explicit = uuid.uuid4()
    receipt = store.append(
        coord("b"), "k", 2, caused_by=_as_cause(store, cause, form), correlation_id=explicit
    )
    effect = store.get(receipt.event_id)
    assert effect.causation_id == cause.event_id
    assert effect.correlation_id == explicit
    assert _ids(store.correlated(explicit)) == [receipt.event_id]


def test_causation_id_alone_does_not_inherit_the_correlation(store, coord):
    cause = store.append(coord("a"), "k", 1, correlation_id=uuid.uuid4())
    receipt = store.append(coord("b"), "k", 2, causation_id=cause.event_id)
    effect = store.get(receipt.event_id)
    assert effect.causation_id == cause.event_id
    assert effect.correlation_id == receipt.event_id


def test_caused_by_is_inherited_along_a_chain(store, coord):
    saga = uuid.uuid4()
    receipt = store.append(coord("a"), "k", 0, correlation_id=saga)
    chain = [receipt]
    for i, form in enumerate(FORMS * 2):
        receipt = store.append(coord(f"e{i}"), "k", i, caused_by=_as_cause(store, receipt, form))
        chain.append(receipt)
    assert [e.correlation_id for e in store.query(R.all())] == [saga] * len(chain)
    assert _ids(store.correlated(saga)) == [r.event_id for r in chain]


@pytest.mark.parametrize("form", ["receipt", "uuid", "str"])
def test_caused_by_an_id_of_another_store_keeps_the_new_events_own_correlation(
    open_store, tmp_path, coord, form
):
    other = open_store(tmp_path / "other")
    foreign = other.append(coord("x"), "k", 1, correlation_id=uuid.uuid4())
    store = open_store()
    receipt = store.append(coord("a"), "k", 2, caused_by=_as_cause(other, foreign, form))
    event = store.get(receipt.event_id)
    assert event.causation_id == foreign.event_id
    assert event.correlation_id == receipt.event_id


def test_caused_by_an_event_of_another_store_takes_that_events_correlation(open_store, tmp_path, coord):
    other = open_store(tmp_path / "other")
    saga = uuid.uuid4()
    foreign = other.get(other.append(coord("x"), "k", 1, correlation_id=saga).event_id)
    store = open_store()
    receipt = store.append(coord("a"), "k", 2, caused_by=foreign)
    event = store.get(receipt.event_id)
    assert event.causation_id == foreign.event_id
    assert event.correlation_id == saga
    assert _ids(store.correlated(saga)) == [receipt.event_id]
    assert store.causes(receipt.event_id) == [event]


def test_caused_by_in_an_append_request(store, coord):
    saga = uuid.uuid4()
    cause = store.append(coord("a"), "k", 0, correlation_id=saga)
    request = ep.AppendRequest(coord("b"), "k", 1, caused_by=cause)
    assert request.caused_by == cause
    assert request.causation_id is None
    (receipt,) = store.append_batch([request])
    event = store.get(receipt.event_id)
    assert (event.causation_id, event.correlation_id) == (cause.event_id, saga)


# --- PriorItem in batches ----------------------------------------------------------------------


def test_causation_id_prior_item_links_to_an_earlier_item_without_its_correlation(store, coord):
    saga = uuid.uuid4()
    first, second, third = store.append_batch(
        [
            ep.AppendRequest(coord("a"), "k", 0, correlation_id=saga),
            ep.AppendRequest(coord("b"), "k", 1, causation_id=ep.PriorItem(0)),
            ep.AppendRequest(coord("c"), "k", 2, causation_id=ep.PriorItem(0)),
        ]
    )
    events = store.query(R.all())
    assert [e.causation_id for e in events] == [None, first.event_id, first.event_id]
    assert [e.correlation_id for e in events] == [saga, second.event_id, third.event_id]
    assert _ids(store.effects(first.event_id)) == [second.event_id, third.event_id]


def test_caused_by_prior_item_inherits_the_items_correlation(store, coord):
    saga = uuid.uuid4()
    root = store.append(coord("a"), "k", "root", correlation_id=saga)
    receipts = store.append_batch(
        [
            ep.AppendRequest(coord("b"), "k", 0, caused_by=root),
            (coord("noise"), "k", "unrelated"),
            ep.AppendRequest(coord("c"), "k", 1, caused_by=ep.PriorItem(0)),
            ep.AppendRequest(coord("d"), "k", 2, caused_by=ep.PriorItem(2)),
        ]
    )
    events = {e.event_id: e for e in store.query(R.all())}
    b, noise, c, d = (events[r.event_id] for r in receipts)
    assert (b.causation_id, c.causation_id, d.causation_id) == (root.event_id, b.event_id, c.event_id)
    assert b.correlation_id == c.correlation_id == d.correlation_id == saga
    assert noise.causation_id is None and noise.correlation_id == noise.event_id
    assert _ids(store.correlated(saga)) == [root.event_id, b.event_id, c.event_id, d.event_id]
    assert _ids(store.causes(d.event_id)) == [d.event_id, c.event_id, b.event_id, root.event_id]


def test_caused_by_prior_item_of_an_item_with_default_correlation(store, coord):
    first, second = store.append_batch(
        [
            ep.AppendRequest(coord("a"), "k", 0),
            ep.AppendRequest(coord("b"), "k", 1, caused_by=ep.PriorItem(0)),
        ]
    )
    assert store.get(second.event_id).correlation_id == first.event_id
    assert _ids(store.correlated(first.event_id)) == [first.event_id, second.event_id]


def test_explicit_correlation_id_wins_over_a_prior_items(store, coord):
    explicit = uuid.uuid4()
    first, second = store.append_batch(
        [
            ep.AppendRequest(coord("a"), "k", 0, correlation_id=uuid.uuid4()),
            ep.AppendRequest(coord("b"), "k", 1, caused_by=ep.PriorItem(0), correlation_id=explicit),
        ]
    )
    event = store.get(second.event_id)
    assert (event.causation_id, event.correlation_id) == (first.event_id, explicit)


def test_prior_item_in_a_committed_fence(store, coord):
    root = store.append(coord("a"), "k", "root")
    with store.fence() as fence:
        first, second = fence.append_batch(
            [
                ep.AppendRequest(coord("b"), "k", 0, caused_by=root),
                ep.AppendRequest(coord("c"), "k", 1, caused_by=ep.PriorItem(0)),
            ]
        )
    assert _ids(store.descendants(root.event_id)) == [first.event_id, second.event_id]
    assert _ids(store.correlated(root.event_id)) == [root.event_id, first.event_id, second.event_id]


# --- refused links: typed error, nothing written ------------------------------------------------


def test_caused_by_together_with_causation_id_is_refused(store, coord):
    cause = store.append(coord("a"), "k", 0)
    before = _log(store)
    with pytest.raises(ep.InvalidCausation) as info:
        store.append(coord("b"), "k", 1, caused_by=cause, causation_id=cause.event_id)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ep.EventpakError)
    assert _log(store) == before
    assert store.append(coord("b"), "k", 1).global_sequence == 1


def test_caused_by_together_with_causation_id_in_a_batch_writes_nothing_of_it(store, coord):
    cause = store.append(coord("a"), "k", 0)
    before = _log(store)
    batch = [
        ep.AppendRequest(coord("b"), "k", 1, caused_by=cause),
        ep.AppendRequest(coord("c"), "k", 2, caused_by=ep.PriorItem(0), causation_id=ep.PriorItem(0)),
    ]
    with pytest.raises(ep.InvalidCausation):
        store.append_batch(batch)
    assert _log(store) == before


@pytest.mark.parametrize("option", ["causation_id", "caused_by"])
@pytest.mark.parametrize(("position", "index"), [(0, 0), (1, 1), (1, 2), (2, 5)], ids=str)
def test_prior_item_naming_itself_or_a_later_item_writes_nothing_of_the_batch(
    store, data_dir, dir_bytes, coord, option, position, index
):
    store.append(coord("a"), "k", "before")
    before, files = _log(store), dir_bytes(data_dir)
    batch = [ep.AppendRequest(coord("b"), "k", i) for i in range(3)]
    batch[position] = ep.AppendRequest(coord("b"), "k", position, **{option: ep.PriorItem(index)})
    with pytest.raises(ep.InvalidCausation):
        store.append_batch(batch)
    assert _log(store) == before
    assert dir_bytes(data_dir) == files
    assert store.append(coord("b"), "k", "after").global_sequence == 1


@pytest.mark.parametrize("option", ["causation_id", "caused_by"])
def test_prior_item_in_a_single_append_is_refused(store, coord, option):
    store.append(coord("a"), "k", "before")
    before = _log(store)
    with pytest.raises(ep.InvalidCausation):
        store.append(coord("b"), "k", 1, **{option: ep.PriorItem(0)})
    assert _log(store) == before


@pytest.mark.parametrize(("ahead", "named"), [(0, "its own id"), (1, "the id of item 1")])
def test_a_causation_id_naming_the_event_itself_or_a_later_item_writes_nothing(store, coord, ahead, named):
    # Ids are predictable: within a millisecond the next id is the last one plus one. A
    # guess that lands is refused; one that misses (a new millisecond began) names an
    # unknown event, which is allowed, and the guess is made again.
    for _ in range(1000):
        last = store.append(coord("a"), "k", "before")
        before = _log(store)
        guess = uuid.UUID(int=last.event_id.int + 1 + ahead)
        batch = [ep.AppendRequest(coord("b"), "k", 0, causation_id=guess)]
        batch.append(ep.AppendRequest(coord("b"), "k", 1))
        try:
            store.append_batch(batch)
        except ep.InvalidCausation as refused:
            assert f"item 0's causation id {guess} is {named} in this append" in str(refused)
            assert _log(store) == before
            return
    pytest.fail("no guess of the next id landed")


def test_a_refused_batch_inside_a_fence_leaves_the_fence_as_it_was(store, coord):
    with store.fence() as fence:
        kept = fence.append(coord("a"), "k", "kept")
        with pytest.raises(ep.InvalidCausation):
            fence.append_batch(
                [
                    ep.AppendRequest(coord("b"), "k", 1),
                    ep.AppendRequest(coord("b"), "k", 2, causation_id=ep.PriorItem(1)),
                ]
            )
        after = fence.append(coord("a"), "k", "after")
    assert store.stats()["events"] == 2
    assert after.global_sequence == kept.global_sequence + 1
    assert [e.payload for e in store.query(R.all())] == ["kept", "after"]


@pytest.mark.parametrize("option", ["causation_id", "caused_by", "correlation_id"])
def test_a_malformed_id_string_at_append_is_refused(store, coord, option):
    store.append(coord("a"), "k", "before")
    before = _log(store)
    with pytest.raises(ep.InvalidArgument) as info:
        store.append(coord("b"), "k", 1, **{option: "not-a-uuid"})
    assert isinstance(info.value, ValueError)
    assert info.value.argument == option
    assert _log(store) == before


@pytest.mark.parametrize("option", ["causation_id", "caused_by"])
@pytest.mark.parametrize("value", [42, b"0123456789abcdef", {"id": 1}, 1.5], ids=repr)
def test_a_cause_of_the_wrong_type_is_refused(store, coord, option, value):
    store.append(coord("a"), "k", "before")
    before = _log(store)
    with pytest.raises(TypeError):
        store.append(coord("b"), "k", 1, **{option: value})
    with pytest.raises(TypeError):
        store.append_batch([ep.AppendRequest(coord("b"), "k", 1, **{option: value})])
    assert _log(store) == before


# --- causes outside the store -------------------------------------------------------------------


def test_a_foreign_causation_id_is_allowed_and_the_walk_stops_there(store, coord):
    foreign = uuid.uuid4()
    reaction = store.append(coord("a"), "Reacted", 1, causation_id=foreign)
    follow_up = store.append(coord("b"), "FollowedUp", 2, caused_by=reaction)
    event = store.get(reaction.event_id)
    assert event.causation_id == foreign
    assert event.correlation_id == reaction.event_id
    assert _ids(store.causes(reaction.event_id)) == [reaction.event_id]
    assert _ids(store.causes(follow_up.event_id)) == [follow_up.event_id, reaction.event_id]
    assert _ids(store.effects(reaction.event_id)) == [follow_up.event_id]
    for walk in (store.effects, store.descendants, store.causes):
        with pytest.raises(ep.EventNotFound):
            walk(foreign)
    assert store.correlated(foreign) == []


def test_caused_by_a_foreign_id_keeps_the_own_correlation(store, coord):
    foreign = uuid.uuid4()
    receipt = store.append(coord("a"), "k", 1, caused_by=foreign)
    event = store.get(receipt.event_id)
    assert (event.causation_id, event.correlation_id) == (foreign, receipt.event_id)


def test_a_foreign_cause_shared_by_several_events_links_none_of_them(store, coord):
    foreign = uuid.uuid4()
    root = store.append(coord("a"), "k", 0)
    for i in range(3):
        store.append(coord("b"), "k", i, causation_id=foreign)
    assert store.effects(root.event_id) == []
    assert store.descendants(root.event_id) == []


# --- the walks ------------------------------------------------------------------------------------


def _chain(store: ep.Store, coord: Callable[..., ep.Coordinate], n: int) -> list[ep.AppendReceipt]:
    receipts = [store.append(coord("chain"), "k", 0)]
    for i in range(1, n):
        receipts.append(store.append(coord(f"chain:{i}"), "k", i, caused_by=receipts[-1]))
    return receipts


def test_causes_walks_from_the_event_up_to_the_root(store, coord):
    chain = _chain(store, coord, 5)
    store.append(coord("noise"), "k", "unrelated")
    leaf = chain[-1].event_id
    assert _ids(store.causes(leaf)) == [r.event_id for r in reversed(chain)]
    assert [e.payload for e in store.causes(leaf)] == [4, 3, 2, 1, 0]
    assert _ids(store.causes(chain[0].event_id)) == [chain[0].event_id]
    assert _ids(store.causes(chain[2].event_id)) == [chain[2].event_id, chain[1].event_id, chain[0].event_id]


@pytest.mark.parametrize(("limit", "expected"), [(0, 0), (1, 1), (3, 3), (5, 5), (6, 5), (2**63, 5)])
def test_causes_limit(store, coord, limit, expected):
    chain = _chain(store, coord, 5)
    walked = store.causes(chain[-1].event_id, limit=limit)
    assert _ids(walked) == [r.event_id for r in reversed(chain)][:expected]


def test_causes_limit_none_is_the_whole_chain(store, coord):
    chain = _chain(store, coord, 4)
    assert len(store.causes(chain[-1].event_id, limit=None)) == 4


def _tree(store: ep.Store, coord: Callable[..., ep.Coordinate]) -> dict[str, ep.AppendReceipt]:
    """A branching tree appended out of breadth-first order (so that breadth-first order,
    commit order and depth-first order all differ)::

        root ─┬─ a ─┬─ a1
              │     └─ a2
              ├─ b ─── b1 ─── b1x
              └─ c
    """
    tree = {"root": store.append(coord("root"), "k", "root")}
    for name, parent in [
        ("a", "root"),
        ("b", "root"),
        ("a1", "a"),
        ("b1", "b"),
        ("c", "root"),
        ("b1x", "b1"),
        ("a2", "a"),
    ]:
        tree[name] = store.append(coord(f"n:{name}"), "k", name, caused_by=tree[parent])
    return tree


def test_effects_are_the_direct_effects_in_commit_order(store, coord):
    tree = _tree(store, coord)
    payloads = {name: [e.payload for e in store.effects(r.event_id)] for name, r in tree.items()}
    assert payloads == {
        "root": ["a", "b", "c"],
        "a": ["a1", "a2"],
        "b": ["b1"],
        "c": [],
        "a1": [],
        "b1": ["b1x"],
        "b1x": [],
        "a2": [],
    }


@pytest.mark.parametrize(
    ("max_depth", "expected"),
    [
        (0, []),
        (1, ["a", "b", "c"]),
        (2, ["a", "b", "c", "a1", "a2", "b1"]),
        (3, ["a", "b", "c", "a1", "a2", "b1", "b1x"]),
        (4, ["a", "b", "c", "a1", "a2", "b1", "b1x"]),
        (2**63, ["a", "b", "c", "a1", "a2", "b1", "b1x"]),
        (None, ["a", "b", "c", "a1", "a2", "b1", "b1x"]),
    ],
)
def test_descendants_are_breadth_first(store, coord, max_depth, expected):
    tree = _tree(store, coord)
    assert [e.payload for e in store.descendants(tree["root"].event_id, max_depth=max_depth)] == expected


def test_descendants_of_inner_nodes_and_leaves(store, coord):
    tree = _tree(store, coord)
    assert [e.payload for e in store.descendants(tree["b"].event_id)] == ["b1", "b1x"]
    assert [e.payload for e in store.descendants(tree["a"].event_id)] == ["a1", "a2"]
    assert store.descendants(tree["c"].event_id) == []
    assert store.effects(tree["b1x"].event_id) == []
    assert store.descendants(tree["b"].event_id, max_depth=1) == store.effects(tree["b"].event_id)


def test_correlated_is_in_commit_order_and_leaves_other_correlations_out(store, coord):
    saga = uuid.uuid4()
    mine = []
    for i in range(10):
        mine.append(store.append(coord(f"s{i % 3}"), "k", i, correlation_id=saga))
        store.append(coord("noise"), "k", i)
        store.append(coord("other"), "k", i, correlation_id=uuid.uuid4())
    assert _ids(store.correlated(saga)) == [r.event_id for r in mine]
    assert store.correlated(uuid.uuid4()) == []


def test_an_event_with_another_correlation_is_not_in_its_own_ids_correlation(store, coord):
    saga = uuid.uuid4()
    member = store.append(coord("a"), "k", 0, correlation_id=saga)
    assert store.correlated(member.event_id) == []
    assert _ids(store.correlated(saga)) == [member.event_id]


def test_an_events_own_id_as_explicit_correlation_of_later_events(store, coord):
    root = store.append(coord("a"), "k", 0)
    store.append(coord("noise"), "k", 1)
    joined = store.append(coord("b"), "k", 2, correlation_id=str(root.event_id))
    assert _ids(store.correlated(root.event_id)) == [root.event_id, joined.event_id]
    assert _ids(store.correlated(str(root.event_id))) == [root.event_id, joined.event_id]


@pytest.mark.parametrize("page", [1, 2, 3, 7, 100])
def test_correlated_pages_reassemble_the_whole_list(store, coord, page):
    root = store.append(coord("order:1"), "OrderPlaced", 0)
    last = root
    for i in range(1, 20):
        if i % 4 == 0:
            store.append(coord("noise"), "k", i)
        last = store.append(coord(f"step:{i % 5}"), "k", i, caused_by=last)
    whole = store.correlated(root.event_id)
    assert len(whole) == 20
    pages: list[ep.Event] = []
    after = None
    while chunk := store.correlated(root.event_id, after=after, limit=page):
        assert len(chunk) <= page
        pages.extend(chunk)
        after = chunk[-1].global_sequence
    assert pages == whole


def test_correlated_after_and_limit(store, coord):
    store.append(coord("noise"), "k", "before the root")
    root = store.append(coord("a"), "k", 0)
    members = [root]
    for i in range(1, 5):
        store.append(coord("noise"), "k", i)
        members.append(store.append(coord("a"), "k", i, caused_by=root))
    seqs = [r.global_sequence for r in members]
    assert seqs[0] == 1
    assert _seqs(store.correlated(root.event_id, after=0)) == seqs
    assert _seqs(store.correlated(root.event_id, after=seqs[0])) == seqs[1:]
    assert _seqs(store.correlated(root.event_id, after=seqs[0], limit=2)) == seqs[1:3]
    assert _seqs(store.correlated(root.event_id, after=seqs[2])) == seqs[3:]
    assert _seqs(store.correlated(root.event_id, after=seqs[2] + 1)) == seqs[3:]  # a noise sequence
    assert store.correlated(root.event_id, after=seqs[-1]) == []
    assert store.correlated(root.event_id, after=2**64 - 1) == []
    assert store.correlated(root.event_id, limit=0) == []
    assert _seqs(store.correlated(root.event_id, limit=1)) == seqs[:1]
    assert _seqs(store.correlated(root.event_id, limit=2**64 - 1)) == seqs
    assert _seqs(store.correlated(root.event_id, after=None, limit=None)) == seqs


def test_a_thousand_event_saga_across_entities_and_batches(store, coord):
    rng = random.Random(1000)
    root = store.append(coord("order:0"), "OrderPlaced", 0)
    members = [root]  # receipts of the saga, in commit order
    parent: dict[uuid.UUID, uuid.UUID] = {}
    while len(members) < 1000:
        if rng.random() < 0.15:
            store.append(coord(f"noise:{rng.randrange(5)}"), "k", "noise")
        if rng.random() < 0.3:
            size = min(rng.randint(2, 6), 1000 - len(members))
            cause = rng.choice(members)
            requests = [ep.AppendRequest(coord(f"e:{rng.randrange(40)}"), "k", "batch", caused_by=cause)]
            causes: list[ep.AppendReceipt | int] = [cause]
            for i in range(1, size):
                if rng.random() < 0.6:
                    k = rng.randrange(i)
                    requests.append(
                        ep.AppendRequest(coord(f"e:{rng.randrange(40)}"), "k", i, caused_by=ep.PriorItem(k))
                    )
                    causes.append(k)
                else:
                    other = rng.choice(members)
                    requests.append(
                        ep.AppendRequest(coord(f"e:{rng.randrange(40)}"), "k", i, caused_by=other)
                    )
                    causes.append(other)
            receipts = store.append_batch(requests)
            for receipt, c in zip(receipts, causes, strict=True):
                parent[receipt.event_id] = (receipts[c] if isinstance(c, int) else c).event_id
            members.extend(receipts)
        else:
            cause = rng.choice(members)
            receipt = store.append(
                coord(f"e:{rng.randrange(40)}"),
                "k",
                "single",
                caused_by=_as_cause(store, cause, rng.choice(FORMS)),
            )
            parent[receipt.event_id] = cause.event_id
            members.append(receipt)
    member_ids = [r.event_id for r in members]
    assert _ids(store.correlated(root.event_id)) == member_ids
    children: dict[uuid.UUID, list[uuid.UUID]] = {m: [] for m in member_ids}
    for child in member_ids[1:]:
        children[parent[child]].append(child)
    for m in member_ids:
        assert _ids(store.effects(m)) == children[m]
    order, queue = [], deque([root.event_id])
    while queue:
        for child in children[queue.popleft()]:
            order.append(child)
            queue.append(child)
    assert _ids(store.descendants(root.event_id)) == order
    assert len(order) == 999
    for m in rng.sample(member_ids, 50):
        expected = [m]
        while expected[-1] != root.event_id:
            expected.append(parent[expected[-1]])
        assert _ids(store.causes(m)) == expected


# --- hidden events ----------------------------------------------------------------------------------


@dataclass
class HiddenGraph:
    root: ep.AppendReceipt
    visible_effect: ep.AppendReceipt
    hidden: list[ep.AppendReceipt]  # all hidden events: by id, caused_by, grandchild, a root
    effect_of_hidden: ep.AppendReceipt
    caused_by_hidden: ep.AppendReceipt
    joined_hidden: ep.AppendReceipt  # visible, correlation = the id of the hidden root


def _hidden_graph(store: ep.Store, coord: Callable[..., ep.Coordinate]) -> HiddenGraph:
    """A visible root with one visible and three hidden effects (one by id, one by
    ``caused_by``, and the latter's own effect through ``PriorItem``), a hidden event with
    its own correlation, and visible events naming hidden ones as cause or correlation."""
    root = store.append(coord("order:1"), "OrderPlaced", "root")
    with store.fence() as fence:
        by_id = fence.append(
            coord("h:a"), "k", "hidden by id", causation_id=root.event_id, correlation_id=root.event_id
        )
        in_batch = fence.append_batch(
            [
                ep.AppendRequest(coord("h:b"), "k", "hidden caused_by", caused_by=root),
                ep.AppendRequest(coord("h:c"), "k", "hidden grandchild", caused_by=ep.PriorItem(0)),
            ]
        )
        hidden_root = fence.append(coord("h:d"), "k", "hidden root")
        fence.cancel()
    visible_effect = store.append(coord("payment:1"), "PaymentCharged", "visible", caused_by=root)
    effect_of_hidden = store.append(coord("v:a"), "k", "effect of hidden", causation_id=by_id.event_id)
    caused_by_hidden = store.append(coord("v:b"), "k", "caused by hidden", caused_by=in_batch[0])
    joined_hidden = store.append(coord("v:c"), "k", "joined hidden", correlation_id=hidden_root.event_id)
    return HiddenGraph(
        root,
        visible_effect,
        [by_id, *in_batch, hidden_root],
        effect_of_hidden,
        caused_by_hidden,
        joined_hidden,
    )


def _check_hidden_graph(store: ep.Store, g: HiddenGraph) -> None:
    root = g.root.event_id
    assert _ids(store.effects(root)) == [g.visible_effect.event_id]
    assert _ids(store.descendants(root)) == [g.visible_effect.event_id]
    assert _ids(store.correlated(root)) == [root, g.visible_effect.event_id]
    assert _ids(store.causes(g.visible_effect.event_id)) == [g.visible_effect.event_id, root]
    for hidden in g.hidden:
        for walk in (store.causes, store.effects, store.descendants):
            with pytest.raises(ep.EventNotFound):
                walk(hidden.event_id)
        with pytest.raises(ep.EventNotFound):
            store.get(hidden.event_id)
    # a hidden event is not in the correlation named by its own id; visible members are
    by_id, hidden_caused_by, grandchild, hidden_root = g.hidden
    assert _ids(store.correlated(hidden_root.event_id)) == [g.joined_hidden.event_id]
    for hidden in (by_id, hidden_caused_by, grandchild):
        assert store.correlated(hidden.event_id) == []
    # the walk from a visible effect stops at its hidden cause
    effect = store.get(g.effect_of_hidden.event_id)
    assert effect.causation_id == by_id.event_id
    assert effect.correlation_id == effect.event_id
    assert store.causes(effect.event_id) == [effect]
    caused = store.get(g.caused_by_hidden.event_id)
    assert caused.causation_id == hidden_caused_by.event_id
    assert caused.correlation_id == caused.event_id  # a hidden cause lends no correlation
    assert store.causes(caused.event_id) == [caused]
    shown = {e.event_id for e in store.query(R.all())}
    assert not shown & {h.event_id for h in g.hidden}


def test_hidden_events_are_in_no_answer(store, coord):
    g = _hidden_graph(store, coord)
    assert store.stats()["events"] == 9
    assert len(store.query(R.all())) == 5
    _check_hidden_graph(store, g)


def test_hidden_events_stay_out_of_the_answers_after_reopen(open_store, data_dir, coord):
    store = open_store()
    g = _hidden_graph(store, coord)
    store.close()
    for options in ({}, {"enable_index_checkpoint": False}, {"read_only": True}):
        with ep.Store.open(data_dir, **options) as reopened:
            _check_hidden_graph(reopened, g)


def test_an_effect_in_a_committed_fence_is_an_effect(store, coord):
    root = store.append(coord("a"), "k", "root")
    with store.fence() as fence:
        fenced = fence.append(coord("b"), "k", "fenced", causation_id=root.event_id)
        assert store.effects(root.event_id) == []  # not visible while the fence is open
        assert _ids(store.correlated(root.event_id)) == [root.event_id]
    assert _ids(store.effects(root.event_id)) == [fenced.event_id]


def test_a_fence_cancelled_by_an_exception_hides_its_effects(store, coord):
    root = store.append(coord("a"), "k", "root")
    with pytest.raises(LookupError), store.fence() as fence:
        fence.append_batch([ep.AppendRequest(coord("b"), "k", "gone", caused_by=root)])
        raise LookupError("cancel")
    assert store.effects(root.event_id) == []
    assert store.descendants(root.event_id) == []
    assert _ids(store.correlated(root.event_id)) == [root.event_id]


def test_caused_by_an_earlier_event_of_the_same_open_fence_inherits_its_correlation(store, coord):
    saga = uuid.uuid4()
    with store.fence() as fence:
        first = fence.append(coord("a"), "k", 0, correlation_id=saga)
        (second,) = fence.append_batch([ep.AppendRequest(coord("b"), "k", 1, caused_by=first)])
    event = store.get(second.event_id)
    assert event.causation_id == first.event_id
    assert event.correlation_id == saga
    assert _ids(store.correlated(saga)) == [first.event_id, second.event_id]


# --- the same answers after reopening ------------------------------------------------------------


def _answers(store: ep.Store, ids: list[uuid.UUID], correlations: list[uuid.UUID]) -> dict[str, Any]:
    """Every walk from every id, as comparable keys."""

    def keys(events: list[ep.Event]) -> list[tuple[Any, ...]]:
        return [(e.event_id, e.global_sequence, e.hash, e.causation_id, e.correlation_id) for e in events]

    def attempt(walk: Callable[[], list[ep.Event]]) -> Any:
        try:
            return keys(walk())
        except ep.EventNotFound:
            return "not found"

    out: dict[str, Any] = {}
    for i in ids:
        out[f"causes {i}"] = attempt(lambda i=i: store.causes(i))
        out[f"effects {i}"] = attempt(lambda i=i: store.effects(i))
        out[f"descendants {i}"] = attempt(lambda i=i: store.descendants(i))
        out[f"descendants 1 {i}"] = attempt(lambda i=i: store.descendants(i, max_depth=1))
    for c in correlations:
        out[f"correlated {c}"] = keys(store.correlated(c))
    return out


def _mixed_graph(store: ep.Store, coord: Callable[..., ep.Coordinate]) -> list[uuid.UUID]:
    """A bit of everything; returns every id involved (hidden and foreign ones included)."""
    receipts = list(_tree(store, coord).values())
    g = _hidden_graph(store, coord)
    receipts += [g.root, g.visible_effect, g.effect_of_hidden, g.caused_by_hidden, g.joined_hidden, *g.hidden]
    foreign = uuid.uuid4()
    receipts.append(store.append(coord("x"), "k", "foreign", causation_id=foreign))
    receipts += store.append_batch(
        [
            ep.AppendRequest(coord("y"), "k", 0, caused_by=receipts[0]),
            ep.AppendRequest(coord("y"), "k", 1, caused_by=ep.PriorItem(0)),
            ep.AppendRequest(coord("z"), "k", 2, causation_id=ep.PriorItem(1), correlation_id=foreign),
        ]
    )
    return [r.event_id for r in receipts] + [foreign]


def _graph_answers(store: ep.Store, ids: list[uuid.UUID]) -> dict[str, Any]:
    correlations = sorted({e.correlation_id for e in store.query(R.all())} | set(ids))
    return _answers(store, ids, correlations)


def _check_against_a_scan(store: ep.Store) -> int:
    """Checks ``effects`` and ``correlated`` of every visible event (and every correlation id
    in the log) against what the events themselves say; returns how many links there are."""
    events = store.query(R.all())
    by_id = {e.event_id: e for e in events}
    effects: dict[uuid.UUID, list[ep.Event]] = {e.event_id: [] for e in events}
    correlated: dict[uuid.UUID, list[ep.Event]] = {}
    for e in events:
        if e.causation_id in by_id:
            effects[e.causation_id].append(e)
        correlated.setdefault(e.correlation_id, []).append(e)
    for e in events:
        assert store.effects(e.event_id) == effects[e.event_id]
        assert store.correlated(e.event_id) == correlated.get(e.event_id, [])
    for correlation, members in correlated.items():
        assert store.correlated(correlation) == members
    return sum(len(v) for v in effects.values())


def test_a_checkpoint_without_causal_sections_gets_them_rebuilt(tmp_path):
    copy = tmp_path / "v1_store"
    shutil.copytree(FIXTURES / "v1_store", copy)
    with ep.Store.open(copy) as store:
        assert store.stats()["index_checkpoint"] == "loaded"
        assert _check_against_a_scan(store) > 0
        answers = _graph_answers(store, [e.event_id for e in store.query(R.all())])
    with ep.Store.open(copy, enable_index_checkpoint=False) as store:
        assert _check_against_a_scan(store) > 0
        assert _graph_answers(store, [e.event_id for e in store.query(R.all())]) == answers
    with ep.Store.open(copy) as store:  # the checkpoint written at the first close has them
        assert store.stats()["index_checkpoint"] == "loaded"
        assert _graph_answers(store, [e.event_id for e in store.query(R.all())]) == answers


def test_answers_are_the_same_after_reopen_with_without_and_after_deleting_the_index_checkpoint(
    open_store, data_dir, coord
):
    store = open_store()
    ids = _mixed_graph(store, coord)
    before = _graph_answers(store, ids)
    store.close()
    assert (data_dir / "index.ckpt").is_file()

    with ep.Store.open(data_dir) as reopened:
        assert reopened.stats()["index_checkpoint"] == "loaded"
        assert _graph_answers(reopened, ids) == before
        assert _check_against_a_scan(reopened) > 0
    with ep.Store.open(data_dir, enable_index_checkpoint=False) as reopened:
        assert reopened.stats()["index_checkpoint"] == "disabled"
        assert _graph_answers(reopened, ids) == before
    (data_dir / "index.ckpt").unlink()
    with ep.Store.open(data_dir) as reopened:
        assert reopened.stats()["index_checkpoint"] == "missing"
        assert _graph_answers(reopened, ids) == before
    with ep.Store.open(data_dir, read_only=True) as reopened:
        assert _graph_answers(reopened, ids) == before


def test_links_appended_after_a_checkpoint_join_the_loaded_indexes(open_store, data_dir, tmp_path, coord):
    store = open_store()
    tree = _tree(store, coord)
    store.close()
    saved = tmp_path / "index.ckpt.saved"
    shutil.copyfile(data_dir / "index.ckpt", saved)
    store = open_store()
    # new effects of events the old checkpoint covers, and new correlation members
    late = [
        store.append(coord("late"), "k", "late a", caused_by=tree["a"]),
        store.append(coord("late"), "k", "late c", caused_by=tree["c"]),
        store.append(coord("late"), "k", "late root", causation_id=tree["root"].event_id),
    ]
    late.append(store.append(coord("late"), "k", "late late", caused_by=late[1]))
    ids = [r.event_id for r in [*tree.values(), *late]]
    before = _graph_answers(store, ids)
    store.close()
    shutil.copyfile(saved, data_dir / "index.ckpt")  # covers the tree only: the rest is scanned
    with ep.Store.open(data_dir) as reopened:
        stats = reopened.stats()
        assert (stats["index_checkpoint"], stats["scanned_events"]) == ("loaded", len(late))
        assert _graph_answers(reopened, ids) == before
        assert [e.payload for e in reopened.effects(tree["a"].event_id)] == ["a1", "a2", "late a"]
        assert [e.payload for e in reopened.effects(tree["root"].event_id)] == ["a", "b", "c", "late root"]


def test_links_to_events_before_a_reopen(open_store, data_dir, coord):
    store = open_store()
    tree = _tree(store, coord)
    store.close()
    for round_no, options in enumerate([{}, {"enable_index_checkpoint": False}]):
        with ep.Store.open(data_dir, **options) as store:
            store.append(coord("later"), "k", f"later {round_no}", caused_by=tree["b1x"])
    with ep.Store.open(data_dir) as store:
        assert [e.payload for e in store.effects(tree["b1x"].event_id)] == ["later 0", "later 1"]
        assert [e.payload for e in store.descendants(tree["b"].event_id)] == [
            "b1",
            "b1x",
            "later 0",
            "later 1",
        ]
        assert len(store.correlated(tree["root"].event_id)) == len(tree) + 2


# --- a realistic example: an order saga ----------------------------------------------------------


def test_order_saga_walked_both_ways(store):
    shop = "shop"
    placed = store.append(("order:42", shop), "OrderPlaced", {"items": ["book", "pen"], "total": 30})
    store.append(("order:43", shop), "OrderPlaced", {"items": ["mug"], "total": 8})  # another saga
    charged = store.append(("payment:42", shop), "PaymentCharged", {"amount": 30}, caused_by=placed)
    reserved_book, reserved_pen = store.append_batch(
        [
            ep.AppendRequest(("stock:book", shop), "StockReserved", {"order": 42}, caused_by=charged),
            ep.AppendRequest(("stock:pen", shop), "StockReserved", {"order": 42}, caused_by=charged),
        ]
    )
    packed, shipped = store.append_batch(
        [
            ep.AppendRequest(("order:42", shop), "OrderPacked", {"boxes": 1}, caused_by=reserved_pen),
            ep.AppendRequest(
                ("order:42", shop), "OrderShipped", {"carrier": "post"}, caused_by=ep.PriorItem(0)
            ),
        ]
    )

    # Backwards: why was the order shipped?
    why = store.causes(shipped.event_id)
    assert [(e.entity, e.kind) for e in why] == [
        ("order:42", "OrderShipped"),
        ("order:42", "OrderPacked"),
        ("stock:pen", "StockReserved"),
        ("payment:42", "PaymentCharged"),
        ("order:42", "OrderPlaced"),
    ]

    # Forwards: what did placing the order lead to?
    assert [e.kind for e in store.effects(placed.event_id)] == ["PaymentCharged"]
    assert [(e.entity, e.kind) for e in store.effects(charged.event_id)] == [
        ("stock:book", "StockReserved"),
        ("stock:pen", "StockReserved"),
    ]
    assert [(e.entity, e.kind) for e in store.descendants(placed.event_id)] == [
        ("payment:42", "PaymentCharged"),
        ("stock:book", "StockReserved"),
        ("stock:pen", "StockReserved"),
        ("order:42", "OrderPacked"),
        ("order:42", "OrderShipped"),
    ]
    assert [e.kind for e in store.descendants(placed.event_id, max_depth=2)] == [
        "PaymentCharged",
        "StockReserved",
        "StockReserved",
    ]

    # The whole saga, in commit order: the order it started from is in it, order 43 is not.
    saga = store.correlated(placed.event_id)
    assert [e.kind for e in saga] == [
        "OrderPlaced",
        "PaymentCharged",
        "StockReserved",
        "StockReserved",
        "OrderPacked",
        "OrderShipped",
    ]
    assert {e.correlation_id for e in saga} == {placed.event_id}
    assert [e.event_id for e in saga] == [
        r.event_id for r in (placed, charged, reserved_book, reserved_pen, packed, shipped)
    ]


# --- arguments of the walks ---------------------------------------------------------------------------


WALKS: dict[str, Callable[[ep.Store, Any], Any]] = {
    "causes": lambda s, i: s.causes(i),
    "effects": lambda s, i: s.effects(i),
    "descendants": lambda s, i: s.descendants(i),
    "correlated": lambda s, i: s.correlated(i),
}


@pytest.mark.parametrize("walk", sorted(WALKS))
def test_walks_take_a_uuid_or_a_uuid_string(store, coord, walk):
    root = store.append(coord("a"), "k", 0)
    store.append(coord("b"), "k", 1, caused_by=root)
    call = WALKS[walk]
    answer = call(store, root.event_id)
    assert call(store, str(root.event_id)) == answer
    assert call(store, str(root.event_id).upper()) == answer
    assert call(store, root.event_id.hex) == answer


@pytest.mark.parametrize("walk", ["causes", "effects", "descendants"])
def test_walks_from_an_unknown_id_raise_event_not_found(store, coord, walk):
    store.append(coord("a"), "k", 0)
    with pytest.raises(ep.EventNotFound) as info:
        WALKS[walk](store, uuid.uuid4())
    assert isinstance(info.value, KeyError)
    with pytest.raises(ep.EventNotFound):
        WALKS[walk](store, uuid.uuid4())


def test_walks_on_an_empty_store(store):
    for walk in ("causes", "effects", "descendants"):
        with pytest.raises(ep.EventNotFound):
            WALKS[walk](store, uuid.uuid4())
    assert store.correlated(uuid.uuid4()) == []


@pytest.mark.parametrize("walk", sorted(WALKS))
@pytest.mark.parametrize("bad", ["", "not-a-uuid", "1234", "g" * 32], ids=repr)
def test_walks_refuse_a_malformed_id_string(store, coord, walk, bad):
    store.append(coord("a"), "k", 0)
    with pytest.raises(ep.InvalidArgument) as info:
        WALKS[walk](store, bad)
    assert isinstance(info.value, ValueError)
    assert info.value.argument in ("event_id", "correlation_id")


@pytest.mark.parametrize("walk", sorted(WALKS))
@pytest.mark.parametrize("bad", [None, 42, b"0123456789abcdef", 1.5], ids=repr)
def test_walks_refuse_an_id_of_the_wrong_type(store, walk, bad):
    with pytest.raises(TypeError):
        WALKS[walk](store, bad)


@pytest.mark.parametrize(
    ("walk", "argument"),
    [
        ("causes", "limit"),
        ("descendants", "max_depth"),
        ("correlated", "after"),
        ("correlated", "limit"),
    ],
)
@pytest.mark.parametrize("value", [-1, -(2**70), 2**64, 2**100], ids=str)
def test_walks_refuse_negative_and_huge_numbers_naming_the_argument(store, coord, walk, argument, value):
    root = store.append(coord("a"), "k", 0)
    before = _log(store)
    with pytest.raises(ep.InvalidArgument) as info:
        getattr(store, walk)(root.event_id, **{argument: value})
    assert isinstance(info.value, ValueError)
    assert info.value.argument == argument
    assert argument in str(info.value)
    assert _log(store) == before


@pytest.mark.parametrize(
    ("walk", "argument"),
    [("causes", "limit"), ("descendants", "max_depth"), ("correlated", "after"), ("correlated", "limit")],
)
@pytest.mark.parametrize("value", [True, 1.0, "3"], ids=repr)
def test_walks_refuse_numbers_of_the_wrong_type(store, coord, walk, argument, value):
    root = store.append(coord("a"), "k", 0)
    with pytest.raises(TypeError):
        getattr(store, walk)(root.event_id, **{argument: value})


@pytest.mark.parametrize("walk", sorted(WALKS))
def test_walks_on_a_closed_store_raise_store_closed(store, coord, walk):
    root = store.append(coord("a"), "k", 0)
    store.close()
    with pytest.raises(ep.StoreClosed):
        WALKS[walk](store, root.event_id)


# --- PriorItem as a value ---------------------------------------------------------------------------


def test_prior_item_is_a_value():
    item = ep.PriorItem(3)
    assert item.index == 3
    assert item == ep.PriorItem(3)
    assert item != ep.PriorItem(4)
    assert item != 3
    assert hash(item) == hash(ep.PriorItem(3))
    assert len({ep.PriorItem(1), ep.PriorItem(1), ep.PriorItem(2)}) == 2
    assert repr(item) == "PriorItem(3)"
    assert ep.PriorItem(0).index == 0
    assert ep.PriorItem(2**32 - 1).index == 2**32 - 1


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_prior_item_pickles(protocol):
    item = ep.PriorItem(7)
    copy = pickle.loads(pickle.dumps(item, protocol=protocol))
    assert type(copy) is ep.PriorItem
    assert copy == item and copy.index == 7


def test_a_pickled_request_with_a_prior_item_links_the_same_way(store, coord):
    request = pickle.loads(pickle.dumps(ep.PriorItem(0)))
    first, second = store.append_batch(
        [ep.AppendRequest(coord("a"), "k", 0), ep.AppendRequest(coord("b"), "k", 1, caused_by=request)]
    )
    assert store.get(second.event_id).causation_id == first.event_id


@pytest.mark.parametrize("bad", [-1, -(2**40)])
def test_a_negative_prior_item_is_an_invalid_causation(bad):
    """``k < 0`` can never name an earlier item: refused as a causation error."""
    with pytest.raises(ep.InvalidCausation) as info:
        ep.PriorItem(bad)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("bad", [2**32, 2**64])
def test_prior_item_refuses_an_index_too_large(bad):
    with pytest.raises(ValueError) as info:
        ep.PriorItem(bad)
    assert isinstance(info.value, ep.InvalidArgument)
    assert info.value.argument == "index"


@pytest.mark.parametrize("bad", ["1", 1.0, None, True, [1]], ids=repr)
def test_prior_item_refuses_a_non_int_index(bad):
    with pytest.raises(TypeError):
        ep.PriorItem(bad)


def test_prior_item_is_immutable():
    item = ep.PriorItem(1)
    with pytest.raises(AttributeError):
        item.index = 2  # type: ignore[misc]


# --- property: the walks agree with a model ----------------------------------------------------


@dataclass
class ModelEvent:
    event_id: uuid.UUID
    seq: int
    causation: uuid.UUID | None
    correlation: uuid.UUID
    visible: bool


FOREIGN = [uuid.UUID(int=(0xF0 << 120) + i) for i in range(3)]
CORRELATIONS = [uuid.UUID(int=(0xC0 << 120) + i) for i in range(3)]

# A cause: none, an earlier event (index taken modulo the events so far), a foreign id, or an
# earlier item of the same batch (index taken modulo the item's position).
causes_st = st.one_of(
    st.none(),
    st.tuples(st.just("earlier"), st.integers(0, 10**6)),
    st.tuples(st.just("earlier"), st.integers(0, 10**6)),
    st.tuples(st.just("earlier"), st.integers(0, 10**6)),
    st.tuples(st.just("foreign"), st.integers(0, len(FOREIGN) - 1)),
    st.tuples(st.just("prior"), st.integers(0, 10**6)),
)
items_st = st.fixed_dictionaries(
    {
        "cause": causes_st,
        "form": st.sampled_from(["causation_id", *FORMS]),
        "correlation": st.one_of(
            st.none(),
            st.none(),
            st.tuples(st.just("pool"), st.integers(0, len(CORRELATIONS) - 1)),
            st.tuples(st.just("event"), st.integers(0, 10**6)),
        ),
        "entity": st.sampled_from(["a", "b", "c:1", "c:2"]),
    }
)
ops_st = st.lists(
    st.one_of(
        st.tuples(st.just("append"), items_st),
        st.tuples(st.just("batch"), st.lists(items_st, min_size=1, max_size=5)),
        st.tuples(st.just("fence"), st.lists(items_st, min_size=1, max_size=4), st.booleans()),
        st.tuples(st.just("reopen"), st.booleans()),
    ),
    max_size=40,
)


class CausalModel:
    """Drives a store and a Python model of its causal graph side by side."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.store = ep.Store.open(path, sync="never")
        self.index_checkpoint = True  # the open store writes the index checkpoint at close
        self.events: list[ModelEvent] = []
        self.receipts: list[ep.AppendReceipt] = []

    def by_id(self, event_id: uuid.UUID) -> ModelEvent | None:
        return next((e for e in self.events if e.event_id == event_id), None)

    def request(self, item: dict[str, Any], position: int, candidates: int) -> tuple[ep.AppendRequest, Any]:
        """The request for ``item`` at ``position`` of its batch, and how its cause is named
        in the model (an id, ``("prior", k)`` or ``None``)."""
        options: dict[str, Any] = {}
        cause: Any = None
        kind, arg = item["cause"] or (None, 0)
        if kind == "prior" and position == 0:
            kind = "earlier"  # the first item of a batch has no earlier item
        if kind == "earlier" and candidates:
            receipt = self.receipts[arg % candidates]
            cause = receipt.event_id
            form = item["form"]
            if form == "event" and not self.events[arg % candidates].visible:
                form = "receipt"  # a hidden event cannot be read
            value = receipt.event_id if form == "causation_id" else _as_cause(self.store, receipt, form)
        elif kind == "foreign":
            cause = value = FOREIGN[arg]
        elif kind == "prior":
            cause = ("prior", arg % position)
            value = ep.PriorItem(arg % position)
        if cause is not None:
            options["causation_id" if item["form"] == "causation_id" else "caused_by"] = value
        corr = item["correlation"]
        if corr is not None and corr[0] == "pool":
            options["correlation_id"] = CORRELATIONS[corr[1]]
        elif corr is not None and candidates:
            options["correlation_id"] = self.receipts[corr[1] % candidates].event_id
        return ep.AppendRequest((item["entity"], "s"), "k", position, **options), cause

    def record(
        self,
        requests: list[ep.AppendRequest],
        causes: list[Any],
        receipts: list[ep.AppendReceipt],
        visible: bool,
    ) -> None:
        new: list[ModelEvent] = []
        for request, cause, receipt in zip(requests, causes, receipts, strict=True):
            if isinstance(cause, tuple):
                cause_event: ModelEvent | None = new[cause[1]]
                cause_id: uuid.UUID | None = cause_event.event_id if cause_event else None
            else:
                cause_id = cause
                cause_event = self.by_id(cause) if cause is not None else None
            if request.correlation_id is not None:
                correlation = request.correlation_id
            elif (
                request.caused_by is not None
                and cause_event is not None
                and (cause_event.visible or isinstance(cause, tuple))
            ):
                correlation = cause_event.correlation
            else:
                correlation = receipt.event_id
            new.append(ModelEvent(receipt.event_id, receipt.global_sequence, cause_id, correlation, visible))
        self.events.extend(new)
        self.receipts.extend(receipts)

    def apply(self, op: tuple[Any, ...]) -> None:
        if op[0] == "reopen":
            self.reopen(index_checkpoint=op[1])
            return
        items = [op[1]] if op[0] == "append" else op[1]
        candidates = len(self.receipts)  # causes come from events before this op
        built = [self.request(item, i, candidates) for i, item in enumerate(items)]
        requests = [r for r, _ in built]
        causes = [c for _, c in built]
        if op[0] == "fence":
            with self.store.fence() as fence:
                receipts = fence.append_batch(requests)
                if not op[2]:
                    fence.cancel()
            self.record(requests, causes, receipts, visible=op[2])
        else:
            self.record(requests, causes, self.store.append_batch(requests), visible=True)

    def reopen(self, index_checkpoint: bool) -> str:
        """Closes and reopens the store; returns how the index was loaded."""
        self.store.close()
        self.store = ep.Store.open(self.path, sync="never", enable_index_checkpoint=index_checkpoint)
        written, self.index_checkpoint = self.index_checkpoint, index_checkpoint
        loaded: str = self.store.stats()["index_checkpoint"]
        if index_checkpoint and written:
            assert loaded == "loaded"
        return loaded

    def check(self) -> None:
        store = self.store
        visible = [e for e in self.events if e.visible]
        stored = store.query(R.all())
        assert [(e.event_id, e.causation_id, e.correlation_id) for e in stored] == [
            (e.event_id, e.causation, e.correlation) for e in visible
        ]
        by_id = {e.event_id: e for e in visible}
        effects = {e.event_id: [f.event_id for f in visible if f.causation == e.event_id] for e in visible}
        for e in visible:
            assert _ids(store.effects(e.event_id)) == effects[e.event_id]
            for depth in (None, 1, 2):
                order: list[uuid.UUID] = []
                level = [e.event_id]
                d = 0
                while level and (depth is None or d < depth):
                    level = [child for parent in level for child in effects[parent]]
                    order.extend(level)
                    d += 1
                assert _ids(store.descendants(e.event_id, max_depth=depth)) == order
            chain = [e.event_id]
            while (cause := by_id[chain[-1]].causation) in by_id:
                chain.append(cause)
            assert _ids(store.causes(e.event_id)) == chain
        for e in self.events:
            if not e.visible:
                with pytest.raises(ep.EventNotFound):
                    store.effects(e.event_id)
                with pytest.raises(ep.EventNotFound):
                    store.descendants(e.event_id)
        for f in FOREIGN:
            with pytest.raises(ep.EventNotFound):
                store.effects(f)
        for c in [*CORRELATIONS, *FOREIGN, *(e.event_id for e in self.events)]:
            expected = [e.event_id for e in visible if e.correlation == c]
            assert _ids(store.correlated(c)) == expected
            if len(expected) > 1:
                split = by_id[expected[0]].seq
                assert _ids(store.correlated(c, after=split, limit=len(expected))) == expected[1:]


@settings(max_examples=600 if EXTENDED else 60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops_st)
def test_walks_agree_with_a_model_of_the_appended_events(ops):
    with tempfile.TemporaryDirectory() as tmp:
        model = CausalModel(Path(tmp) / "data")
        try:
            for op in ops:
                model.apply(op)
            model.check()
            for index_checkpoint in (True, True, False):
                model.reopen(index_checkpoint)
                model.check()
        finally:
            model.store.close()
