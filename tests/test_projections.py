"""Projections (docs/design.md section 7): the replay input, the folded state and ``project_if_changed``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

R = ep.Region


class Trace(ep.Projection):
    """Records every event it folds: the state is the list of what it saw, in order."""

    name = "trace"
    version = 1
    kinds = ("deposit", "withdraw")
    incremental = False

    def __init__(self) -> None:
        super().__init__()
        self.applied: list[int] = []
        self.kinds_seen: list[str] = []

    def initial(self) -> list[Any]:
        return []

    def apply(self, state: list[Any], event: ep.Event) -> list[Any]:
        self.applied.append(event.global_sequence)
        self.kinds_seen.append(event.kind)
        return [*state, [event.global_sequence, event.entity, event.scope, event.kind, event.payload]]


class IncrementalTrace(Trace):
    name = "trace-incremental"
    incremental = True


class TraceEveryKind(Trace):
    name = "trace-every-kind"
    kinds = ()
    incremental = True


class Balance(ep.Projection):
    name = "balance"
    version = 1
    kinds = ("deposit", "withdraw")
    incremental = True

    def __init__(self) -> None:
        super().__init__()
        self.kinds_seen: list[str] = []

    def initial(self) -> dict[str, int]:
        return {"balance": 0}

    def apply(self, state: dict[str, int], event: ep.Event) -> dict[str, int]:
        self.kinds_seen.append(event.kind)
        sign = 1 if event.kind == "deposit" else -1
        return {"balance": state["balance"] + sign * event.payload}


# ---------------------------------------------------------------------------------------------
# Projection equals a plain-Python fold of the same events (random histories)
# ---------------------------------------------------------------------------------------------

ENTITIES = ["acct:1", "acct:1:x", "acct:1:x:y", "acct:10", "acct:2"]
SCOPES = ["eu", "us"]
KINDS = ["deposit", "withdraw", "audit", "deposit.big"]


def _exact(entity: str):
    return lambda e, s, k, c: e == entity


def _namespace(prefix: str):
    return lambda e, s, k, c: e == prefix or e.startswith(prefix + ":")


# (target, does an event (entity, scope, kind, entity_sequence) belong to it)
TARGETS: list[tuple[str | ep.Region, Any]] = [
    ("acct:1", _exact("acct:1")),  # exact entity: its namespace children are not part of it
    ("acct:1:x", _exact("acct:1:x")),
    (R.entity("acct:1"), _namespace("acct:1")),
    (R.scope("eu"), lambda e, s, k, c: s == "eu"),
    (R.all().with_kinds(["deposit", "audit"]), lambda e, s, k, c: k in ("deposit", "audit")),
    (
        R.entity("acct:1").with_kind_prefix("deposit"),
        lambda e, s, k, c: _namespace("acct:1")(e, s, k, c) and k.startswith("deposit"),
    ),
    (
        R.entity("acct").with_clock_range(1, 2),
        lambda e, s, k, c: _namespace("acct")(e, s, k, c) and 1 <= c <= 2,
    ),
]

history = st.lists(
    st.tuples(
        st.sampled_from(ENTITIES),
        st.sampled_from(SCOPES),
        st.sampled_from(KINDS),
        st.integers(min_value=-1000, max_value=1000),
    ),
    max_size=30,
)


def _model_fold(
    stored: list[tuple[int, str, str, str, int, int]], belongs: Any, kinds: tuple[str, ...]
) -> list[list[Any]] | None:
    """The Trace state a plain fold over ``stored`` gives (``None`` without a relevant event)."""
    state = [
        [seq, entity, scope, kind, payload]
        for seq, entity, scope, kind, clock, payload in stored
        if belongs(entity, scope, kind, clock) and (not kinds or kind in kinds)
    ]
    return state or None


@settings(max_examples=30, deadline=None)
@given(
    events=history,
    split=st.integers(min_value=0, max_value=30),
    projection_class=st.sampled_from([Trace, IncrementalTrace, TraceEveryKind]),
)
def test_projection_equals_a_plain_fold_for_random_histories(events, split, projection_class):
    with tempfile.TemporaryDirectory() as tmp:
        cache = ep.NativeCache(Path(tmp) / "cache")
        with ep.Store.open(Path(tmp) / "data", sync="never", projection_cache=cache) as store:
            stored: list[tuple[int, str, str, str, int, int]] = []

            def append(part: list[tuple[str, str, str, int]]) -> None:
                for entity, scope, kind, amount in part:
                    receipt = store.append((entity, scope), kind, amount)
                    seq, clock = receipt.global_sequence, receipt.entity_sequence
                    stored.append((seq, entity, scope, kind, clock, amount))

            def check() -> None:
                for target, belongs in TARGETS:
                    expected = _model_fold(stored, belongs, projection_class.kinds)
                    assert store.project(target, projection_class()) == expected, target

            append(events[:split])
            check()  # cold (or no relevant event)
            append(events[split:])
            check()  # cached state behind the watermark: replayed or brought forward
            check()  # cached state at the watermark


# ---------------------------------------------------------------------------------------------
# Replay input
# ---------------------------------------------------------------------------------------------


def test_no_relevant_event_gives_none(store):
    store.append(("acct:1", "eu"), "audit", 1)  # irrelevant kind
    store.append(("acct:1:x", "eu"), "deposit", 5)  # a namespace child, not the exact entity
    store.append(("acct:10", "eu"), "deposit", 5)  # a sibling sharing the prefix
    projection = Trace()
    assert store.project("acct:1", projection) is None
    assert store.project("nobody", projection) is None
    assert store.project(R.entity("acct:2"), projection) is None
    assert store.project(R.all().with_kinds(["audit"]), projection) is None  # kinds do not intersect
    assert store.project("acct:1", Balance()) is None
    assert projection.applied == []


def test_empty_store_projects_none(store):
    assert store.project("acct:1", Balance()) is None
    assert store.project(R.all(), TraceEveryKind()) is None


def test_irrelevant_kinds_never_reach_apply(store):
    kinds = ["deposit", "audit", "withdraw", "deposit.big", "note", "deposit", "withdrawal"]
    for i, kind in enumerate(kinds):
        store.append(("acct:1", "eu"), kind, i)
    store.append(("acct:1:x", "eu"), "deposit", 100)
    for target in ("acct:1", R.entity("acct:1"), R.all()):
        projection = Balance()
        state = store.project(target, projection)
        assert set(projection.kinds_seen) <= {"deposit", "withdraw"}, target
        expected_kinds = ["deposit", "withdraw", "deposit"] + (["deposit"] if target != "acct:1" else [])
        assert projection.kinds_seen == expected_kinds, target
        assert state == {"balance": 0 - 2 + 5 + (100 if target != "acct:1" else 0)}, target


def test_empty_kinds_means_every_kind(store):
    kinds = ["deposit", "audit", "note", "withdraw"]
    for i, kind in enumerate(kinds):
        store.append(("acct:1", "eu"), kind, i)
    projection = TraceEveryKind()
    state = store.project("acct:1", projection)
    assert projection.kinds_seen == kinds
    assert [row[3] for row in state] == kinds


def test_exact_entity_target_spans_scopes_but_not_children(store):
    store.append(("acct:1", "eu"), "deposit", 1)
    store.append(("acct:1:x", "eu"), "deposit", 10)
    store.append(("acct:1", "us"), "deposit", 100)
    store.append(("acct:10", "us"), "deposit", 1000)
    assert store.project("acct:1", Balance()) == {"balance": 101}
    assert store.project(R.entity("acct:1"), Balance()) == {"balance": 111}
    assert store.project(R.entity("acct:1").with_scope("us"), Balance()) == {"balance": 100}


def test_events_are_folded_in_commit_order(store):
    receipts = [
        store.append((entity, "eu"), kind, i)
        for i, (entity, kind) in enumerate(
            [("b", "deposit"), ("a", "withdraw"), ("b", "withdraw"), ("a", "deposit"), ("c", "audit")]
        )
    ]
    projection = Trace()
    state = store.project(R.all(), projection)
    relevant = [r.global_sequence for r in receipts[:4]]
    assert projection.applied == relevant
    assert [row[0] for row in state] == relevant


def test_hidden_fence_events_are_not_replayed(store):
    store.append(("acct:1", "eu"), "deposit", 1)
    with store.fence() as fence:
        fence.append(("acct:1", "eu"), "deposit", 100)
        # pending: written but not visible yet
        assert store.project("acct:1", Balance()) == {"balance": 1}
        assert store.project(R.entity("acct:1"), Balance()) == {"balance": 1}
        fence.cancel()
    assert store.project("acct:1", Balance()) == {"balance": 1}
    assert store.project_if_changed("acct:1", Balance(), None)[1] == {"balance": 1}
    with store.fence() as fence:
        fence.append(("acct:1", "eu"), "deposit", 10)
    assert store.project("acct:1", Balance()) == {"balance": 11}


def test_projection_without_name_is_a_type_error():
    class Nameless(ep.Projection):
        kinds = ("deposit",)

        def initial(self) -> int:
            return 0

        def apply(self, state: int, event: ep.Event) -> int:
            return state

    with pytest.raises(TypeError):
        Nameless()


def test_projection_with_empty_name_is_a_type_error():
    class EmptyName(ep.Projection):
        name = ""

    with pytest.raises(TypeError):
        EmptyName()


def test_maybe_stale_rejects_a_negative_age():
    with pytest.raises(ep.InvalidArgument, match="max_stale_ms") as raised:
        ep.Freshness.maybe_stale(-1)
    assert isinstance(raised.value, ValueError)


def test_maybe_stale_refuses_an_age_that_is_not_a_number():
    with pytest.raises(TypeError, match="max_stale_ms"):
        ep.Freshness.maybe_stale("x")  # type: ignore[arg-type]


def test_misused_projections_and_freshness_are_refused_before_anything_is_read(store):
    store.append(("acct:1", "eu"), "deposit", {"amount": 1})

    class OneKindWithoutItsComma(ep.Projection):
        name = "bare"
        kinds = "deposit"  # a str: it would match no kind and fold nothing

        def initial(self) -> int:
            return 0

        def apply(self, state: int, event: ep.Event) -> int:
            return state + 1

    with pytest.raises(ep.InvalidConfig, match="kinds must be a tuple of kind names"):
        store.project("acct:1", OneKindWithoutItsComma())
    with pytest.raises(ep.InvalidConfig, match="kinds must be a tuple"):
        store.project_if_changed("acct:1", OneKindWithoutItsComma(), None)

    class NoEventHasThisKind(ep.Projection):
        name = "slash"
        kinds = ("order/placed",)  # a kind no append accepts: it would fold nothing

        def initial(self) -> int:
            return 0

        def apply(self, state: int, event: ep.Event) -> int:
            return state + 1

    for _ in range(2):  # also once its kinds could have been remembered as checked
        with pytest.raises(ep.InvalidConfig, match=r"NoEventHasThisKind\.kinds: kind \"order/placed\""):
            store.project("acct:1", NoEventHasThisKind())
    with pytest.raises(TypeError, match=r"projection must be an ep\.Projection"):
        store.project("acct:1", object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="freshness must be"):
        store.project("acct:1", Trace(), freshness="x")  # type: ignore[arg-type]
    assert store.project("acct:1", Trace()) is not None  # the store is as it was


# ---------------------------------------------------------------------------------------------
# project_if_changed
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["acct:1", R.entity("acct:1").with_scope("eu")], ids=["entity", "region"])
def test_project_if_changed_tracks_relevant_events(store, target):
    projection = Balance()
    assert store.project_if_changed(target, projection, None) is None  # nothing at all
    store.append(("acct:1", "eu"), "audit", 0)  # irrelevant kind
    store.append(("acct:2", "eu"), "deposit", 7)  # another entity
    assert store.project_if_changed(target, projection, None) is None

    first = store.append(("acct:1", "eu"), "deposit", 5)
    changed = store.project_if_changed(target, projection, None)
    assert changed == (first.global_sequence, {"balance": 5})
    generation = changed[0]

    assert store.project_if_changed(target, projection, generation) is None  # unchanged
    store.append(("acct:1", "eu"), "audit", 0)  # irrelevant kind
    store.append(("acct:2", "eu"), "deposit", 7)  # another entity
    assert store.project_if_changed(target, projection, generation) is None

    second = store.append(("acct:1", "eu"), "withdraw", 2)
    changed = store.project_if_changed(target, projection, generation)
    assert changed == (second.global_sequence, {"balance": 3})
    assert changed[0] != generation
    assert store.project_if_changed(target, projection, changed[0]) is None


def test_project_if_changed_ignores_namespace_children_of_an_exact_entity(store):
    projection = Balance()
    first = store.append(("acct:1", "eu"), "deposit", 5)
    generation, state = store.project_if_changed("acct:1", projection, None)
    assert (generation, state) == (first.global_sequence, {"balance": 5})
    store.append(("acct:1:x", "eu"), "deposit", 50)
    assert store.project_if_changed("acct:1", projection, generation) is None
    changed = store.project_if_changed(R.entity("acct:1"), projection, generation)
    assert changed is not None and changed[1] == {"balance": 55}


@pytest.mark.parametrize(
    ("last", "error", "message"),
    [
        (-1, ep.InvalidArgument, r"^last_generation: must be in 0\.\.2\*\*64 - 1, got -1$"),
        (
            2**64,
            ep.InvalidArgument,
            r"^last_generation: must be in 0\.\.2\*\*64 - 1, got 18446744073709551616$",
        ),
        ("3", TypeError, r"^last_generation must be an int or None, not str$"),
        (True, TypeError, r"^last_generation must be an int or None, not bool$"),
    ],
)
def test_project_if_changed_refuses_a_generation_no_sequence_can_be(store, last, error, message):
    store.append(("acct:1", "eu"), "deposit", 5)
    projection = Balance()
    with pytest.raises(error, match=message):
        store.project_if_changed("acct:1", projection, last)
    assert projection.kinds_seen == []


def test_project_if_changed_generation_is_the_newest_relevant_sequence(store):
    receipts = [store.append(("acct:1", "eu"), kind, 1) for kind in ("deposit", "withdraw", "audit", "audit")]
    generation, state = store.project_if_changed("acct:1", Balance(), None)
    assert generation == receipts[1].global_sequence
    assert state == {"balance": 0}
