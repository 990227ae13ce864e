"""Region filters: entity namespace prefix, scope, kinds, kind prefix, clock range, identity."""

from __future__ import annotations

import tempfile

import eventpak as ep
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

R = ep.Region

HISTORY = [
    ("alice", "eu", "deposit"),
    ("alice:x", "eu", "withdraw"),
    ("alice2", "eu", "deposit"),
    ("alice", "us", "deposit.big"),
    ("bob", "us", "deposit"),
    ("alice:x:y", "eu", "deposit"),
    ("alice", "eu", "withdraw"),
    ("alice:x", "us", "deposit"),
    ("bob", "eu", "audit"),
    ("alice", "eu", "deposit"),
]


@pytest.fixture
def history_store(store):
    for i, (entity, scope, kind) in enumerate(HISTORY):
        store.append((entity, scope), kind, i)
    return store


def _sequences(store, region):
    return [e.global_sequence for e in store.query(region)]


def _expected(pred):
    """Global sequences of HISTORY events for which pred(entity, scope, kind, entity_sequence)."""
    clocks: dict[str, int] = {}
    out = []
    for i, (entity, scope, kind) in enumerate(HISTORY):
        clock = clocks.get(entity, 0)
        clocks[entity] = clock + 1
        if pred(entity, scope, kind, clock):
            out.append(i)
    return out


def test_region_all_matches_every_event(history_store):
    assert _sequences(history_store, R.all()) == list(range(len(HISTORY)))


def test_entity_prefix_is_namespace_aware(history_store):
    got = _sequences(history_store, R.entity("alice"))
    assert got == _expected(lambda e, s, k, c: e == "alice" or e.startswith("alice:"))
    entities = {e.entity for e in history_store.query(R.entity("alice"))}
    assert entities == {"alice", "alice:x", "alice:x:y"}
    assert "alice2" not in entities


def test_entity_prefix_of_a_nested_namespace(history_store):
    entities = {e.entity for e in history_store.query(R.entity("alice:x"))}
    assert entities == {"alice:x", "alice:x:y"}


def test_entity_prefix_is_not_a_plain_string_prefix(history_store):
    assert history_store.query(R.entity("ali")) == []
    assert {e.entity for e in history_store.query(R.entity("alice2"))} == {"alice2"}


def test_scope_is_exact(history_store):
    assert _sequences(history_store, R.scope("us")) == _expected(lambda e, s, k, c: s == "us")
    assert history_store.query(R.scope("u")) == []


def test_with_scope_combines_with_entity(history_store):
    got = _sequences(history_store, R.entity("alice").with_scope("us"))
    assert got == _expected(lambda e, s, k, c: (e == "alice" or e.startswith("alice:")) and s == "us")
    assert got == [3, 7]


def test_with_kind_is_exact(history_store):
    got = _sequences(history_store, R.all().with_kind("deposit"))
    assert got == _expected(lambda e, s, k, c: k == "deposit")
    assert 3 not in got  # "deposit.big" is another kind


def test_with_kinds_matches_any_listed_kind(history_store):
    got = _sequences(history_store, R.all().with_kinds(["withdraw", "audit"]))
    assert got == _expected(lambda e, s, k, c: k in ("withdraw", "audit"))
    assert got == [1, 6, 8]


def test_with_kind_prefix(history_store):
    got = _sequences(history_store, R.all().with_kind_prefix("deposit"))
    assert got == _expected(lambda e, s, k, c: k.startswith("deposit"))
    assert 3 in got


def test_with_clock_range_is_inclusive(history_store):
    got = _sequences(history_store, R.all().with_clock_range(1, 2))
    assert got == _expected(lambda e, s, k, c: 1 <= c <= 2)
    events = history_store.query(R.entity("alice").with_clock_range(1, 2))
    assert [(e.entity, e.entity_sequence) for e in events] == [
        ("alice", 1),
        ("alice", 2),
        ("alice:x", 1),
    ]


def test_with_clock_range_single_value(history_store):
    events = history_store.query(R.entity("alice").with_clock_range(0, 0))
    assert all(e.entity_sequence == 0 for e in events)
    assert {e.entity for e in events} == {"alice", "alice:x", "alice:x:y"}


def test_with_clock_range_start_after_end_raises_invalid_region():
    with pytest.raises(ep.InvalidRegion) as info:
        R.all().with_clock_range(3, 1)
    assert isinstance(info.value, ValueError)


def test_combined_filters(history_store):
    region = R.entity("alice").with_scope("eu").with_kinds(["deposit", "withdraw"]).with_clock_range(0, 1)
    got = _sequences(history_store, region)
    assert got == _expected(
        lambda e, s, k, c: (
            (e == "alice" or e.startswith("alice:"))
            and s == "eu"
            and k in ("deposit", "withdraw")
            and 0 <= c <= 1
        )
    )
    assert got == [0, 1, 5]


def test_region_with_no_match_returns_empty(history_store):
    assert history_store.query(R.entity("carol")) == []
    assert history_store.query(R.all().with_kind("nope")) == []


def test_builders_return_new_regions():
    base = R.all()
    derived = base.with_kind("deposit")
    assert base.checkpoint_identity == "entity=*|scope=*|kind=*|clock=*"
    assert derived.checkpoint_identity != base.checkpoint_identity
    assert base.matches(ep.Coordinate("a", "s"), "other")
    assert not derived.matches(ep.Coordinate("a", "s"), "other")


def test_matches_agrees_with_filters():
    c = ep.Coordinate("alice:x", "eu")
    assert R.all().matches(c, "k")
    assert R.entity("alice").matches(c, "k")
    assert R.entity("alice:x").matches(c, "k")
    assert not R.entity("alice:x:y").matches(c, "k")
    assert not R.entity("alice2").matches(c, "k")
    assert not R.entity("ali").matches(c, "k")
    assert R.scope("eu").matches(c, "k")
    assert not R.scope("us").matches(c, "k")
    assert R.all().with_kind("k").matches(c, "k")
    assert not R.all().with_kind("k").matches(c, "kk")
    assert R.all().with_kinds(["a", "k"]).matches(c, "k")
    assert not R.all().with_kinds(["a", "b"]).matches(c, "k")
    assert R.all().with_kind_prefix("dep").matches(c, "deposit")
    assert not R.all().with_kind_prefix("dep").matches(c, "withdraw")


def test_matches_accepts_a_tuple_coordinate():
    assert R.entity("alice").with_scope("eu").matches(("alice:x", "eu"), "k")
    assert not R.entity("alice").with_scope("eu").matches(("alice:x", "us"), "k")


def test_matches_refuses_names_no_event_can_have():
    region = R.all()
    with pytest.raises(ep.InvalidCoordinate):
        region.matches(("", "eu"), "k")
    with pytest.raises(ep.InvalidCoordinate):
        region.matches(("alice", "e\x00u"), "k")
    with pytest.raises(ep.InvalidKind):
        region.matches(("alice", "eu"), "")
    with pytest.raises(ep.InvalidKind):
        region.matches(("alice", "eu"), "k" * 256)
    with pytest.raises(ep.InvalidKind):
        region.matches(("alice", "eu"), "eventpak.made_up")
    # The kinds the store writes itself are kinds events have.
    assert region.matches(("alice", "eu"), "eventpak.dead_letter")
    assert not region.with_kind("deposit").matches(("alice", "eu"), "eventpak.dead_letter")


def test_matches_with_entity_sequence_checks_the_clock_range():
    region = R.all().with_clock_range(1, 2)
    c = ep.Coordinate("a", "s")
    assert region.matches(c, "k", 1)
    assert region.matches(c, "k", 2)
    assert not region.matches(c, "k", 0)
    assert not region.matches(c, "k", 3)


def test_checkpoint_identity_examples():
    assert R.all().checkpoint_identity == "entity=*|scope=*|kind=*|clock=*"
    assert R.entity("acct:1").checkpoint_identity == "entity=acct:1|scope=*|kind=*|clock=*"


def test_checkpoint_identity_is_stable():
    a = R.entity("acct").with_scope("eu").with_kinds(["x", "y"]).with_clock_range(1, 5)
    b = R.entity("acct").with_scope("eu").with_kinds(["x", "y"]).with_clock_range(1, 5)
    assert a.checkpoint_identity == b.checkpoint_identity
    assert a == b
    assert hash(a) == hash(b)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (R.entity("*"), R.all()),
        (R.scope("*"), R.all()),
        (R.all().with_kind("*"), R.all()),
        (R.all().with_kinds(["a", "b"]), R.all().with_kinds(["a,b"])),
        (R.all().with_kind_prefix("a"), R.all().with_kind("a*")),
        (R.all().with_kind_prefix("a"), R.all().with_kind("a")),
        (R.all().with_kinds(["a"]), R.all().with_kind_prefix("a")),
        (R.entity("a"), R.scope("a")),
        (R.entity("a").with_scope("b"), R.entity("b").with_scope("a")),
        (R.all().with_clock_range(1, 2), R.all().with_clock_range(1, 3)),
        (R.all().with_clock_range(1, 2), R.all()),
        (R.entity("a:b"), R.entity("a").with_scope("b")),
        (R.all().with_kind("x"), R.all().with_kind("x").with_clock_range(0, 0)),
    ],
    ids=lambda r: r.checkpoint_identity,
)
def test_distinct_filters_have_distinct_identities(left, right):
    assert left.checkpoint_identity != right.checkpoint_identity
    assert left != right


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (R.entity("%2A"), R.entity("*")),
        (R.all().with_kinds(["a%2Cb"]), R.all().with_kinds(["a,b"])),
        (R.all().with_kind("a%2A"), R.all().with_kind_prefix("a")),
        (R.scope("%"), R.scope("%25")),
    ],
    ids=lambda r: r.checkpoint_identity,
)
def test_identity_escaping_is_injective(left, right):
    assert left.checkpoint_identity != right.checkpoint_identity


# --- random histories checked against a plain-Python model ---------------------------------------

ENTITIES = ["a", "a:b", "a:b:c", "ab", "b", "b:a"]
SCOPES = ["eu", "us", "e"]
KINDS = ["x", "x.y", "xy", "y", "z"]

regions = st.fixed_dictionaries(
    {
        "entity": st.none() | st.sampled_from(["a", "a:b", "a:b:c", "ab", "b", "c"]),
        "scope": st.none() | st.sampled_from(SCOPES),
        "kind": st.none()
        | st.tuples(st.just("kind"), st.sampled_from([*KINDS, "q"]))
        | st.tuples(st.just("kinds"), st.lists(st.sampled_from(KINDS), min_size=1, max_size=3))
        | st.tuples(st.just("prefix"), st.sampled_from(["x", "x.", "y", "q"])),
        "clock": st.none() | st.tuples(st.integers(0, 4), st.integers(0, 4)).map(lambda t: (min(t), max(t))),
    }
)


def _build(spec):
    region = R.entity(spec["entity"]) if spec["entity"] is not None else R.all()
    if spec["scope"] is not None:
        region = region.with_scope(spec["scope"])
    if spec["kind"] is not None:
        how, arg = spec["kind"]
        region = {"kind": region.with_kind, "kinds": region.with_kinds, "prefix": region.with_kind_prefix}[
            how
        ](arg)
    if spec["clock"] is not None:
        region = region.with_clock_range(*spec["clock"])
    return region


def _model_matches(spec, entity, scope, kind, clock):
    p = spec["entity"]
    if p is not None and not (entity == p or entity.startswith(p + ":")):
        return False
    if spec["scope"] is not None and scope != spec["scope"]:
        return False
    if spec["kind"] is not None:
        how, arg = spec["kind"]
        if how == "kind" and kind != arg:
            return False
        if how == "kinds" and kind not in arg:
            return False
        if how == "prefix" and not kind.startswith(arg):
            return False
    if spec["clock"] is not None:
        start, end = spec["clock"]
        if not start <= clock <= end:
            return False
    return True


history = st.lists(
    st.tuples(st.sampled_from(ENTITIES), st.sampled_from(SCOPES), st.sampled_from(KINDS)),
    max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(events=history, specs=st.lists(regions, min_size=1, max_size=5))
def test_query_agrees_with_a_python_filter(events, specs):
    with tempfile.TemporaryDirectory() as tmp, ep.Store.open(tmp, sync="never") as store:
        for i, (entity, scope, kind) in enumerate(events):
            store.append((entity, scope), kind, i)
        stored = store.query(R.all())
        assert [e.payload for e in stored] == list(range(len(events)))
        for spec in specs:
            region = _build(spec)
            expected = [
                e.global_sequence
                for e in stored
                if _model_matches(spec, e.entity, e.scope, e.kind, e.entity_sequence)
            ]
            assert [e.global_sequence for e in store.query(region)] == expected
            for e in stored:
                assert region.matches(e.coordinate, e.kind, e.entity_sequence) == _model_matches(
                    spec, e.entity, e.scope, e.kind, e.entity_sequence
                )
