"""Value types and argument checking: integer and name arguments say which argument is wrong
and what it takes, ``Region.entity(name, exact=True)`` selects one entity, coordinates unpack
like pairs, and every value type pickles and compares equal after the round trip."""

from __future__ import annotations

import datetime as dt
import pickle
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import eventpak as ep
import pytest

R = ep.Region
PROTOCOLS = [2, pickle.HIGHEST_PROTOCOL]


class Pair(Sequence[str]):
    """A sequence that is neither a list nor a tuple."""

    def __init__(self, *items: str) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: Any) -> Any:
        return self._items[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)


# --- integer arguments ------------------------------------------------------------------------------

INT_ARGUMENTS: dict[str, tuple[str, Callable[[Any], object]]] = {
    "clock-start": ("start", lambda v: R.all().with_clock_range(v, 5)),
    "clock-end": ("end", lambda v: R.all().with_clock_range(0, v)),
    "matches-entity-sequence": ("entity_sequence", lambda v: R.all().matches(("e", "s"), "k", v)),
    "request-expected-sequence": (
        "expected_sequence",
        lambda v: ep.AppendRequest(("e", "s"), "k", 1, expected_sequence=v),
    ),
    "checkpoint-position": ("position", lambda v: ep.CursorCheckpoint(v, True)),
    "checkpoint-boot": ("process_boot_ns", lambda v: ep.CursorCheckpoint(0, True, process_boot_ns=v)),
    "gap-capacity": ("capacity", lambda v: ep.CursorGapConfig.enabled(v)),
}


@pytest.mark.parametrize("value", [-1, 2**64], ids=["negative", "2**64"])
@pytest.mark.parametrize("case", INT_ARGUMENTS.values(), ids=INT_ARGUMENTS.keys())
def test_out_of_range_integers_raise_invalid_argument_naming_it(case, value) -> None:
    argument, call = case
    with pytest.raises(ep.InvalidArgument) as info:
        call(value)
    assert not isinstance(info.value, OverflowError)
    assert isinstance(info.value, ValueError) and isinstance(info.value, ep.EventpakError)
    assert info.value.argument == argument
    assert str(info.value).startswith(f"{argument}: ")


@pytest.mark.parametrize("value", [True, 1.0, "1"], ids=["bool", "float", "str"])
@pytest.mark.parametrize("case", INT_ARGUMENTS.values(), ids=INT_ARGUMENTS.keys())
def test_integers_of_another_type_raise_type_error_naming_it(case, value) -> None:
    argument, call = case
    with pytest.raises(TypeError, match=rf"^{argument} must be an int, not {type(value).__name__}$"):
        call(value)


def test_integer_arguments_keep_their_own_rules() -> None:
    with pytest.raises(ep.InvalidRegion):
        R.all().with_clock_range(5, 4)
    assert (
        R.all()
        .with_clock_range(2**64 - 1, 2**64 - 1)
        .checkpoint_identity.endswith(f"clock={2**64 - 1}..{2**64 - 1}")
    )
    with pytest.raises(ep.InvalidArgument, match="capacity: must be at least 1"):
        ep.CursorGapConfig.enabled(0)
    assert ep.CursorGapConfig.enabled(1).capacity == 1
    assert ep.AppendRequest(("e", "s"), "k", 1, expected_sequence=3).expected_sequence == 3
    assert ep.CursorCheckpoint(7, False).position == 7


def test_checkpoint_flags_and_identity_say_what_they_take() -> None:
    with pytest.raises(TypeError, match=r"^started must be a bool, not int$"):
        ep.CursorCheckpoint(0, 1)
    with pytest.raises(TypeError, match=r"^region_identity must be a str or None, not int$"):
        ep.CursorCheckpoint(0, True, region_identity=5)


# --- names ------------------------------------------------------------------------------------------


def test_a_kind_of_the_wrong_type_names_the_argument(store: ep.Store) -> None:
    with pytest.raises(TypeError, match=r"^kind must be a str, not int$"):
        store.append(("e", "s"), 123, {})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^kind must be a str, not NoneType$"):
        store.append_batch([(("e", "s"), None, {})])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"^kind must be a str, not bytes$"):
        R.all().matches(("e", "s"), b"k")  # type: ignore[arg-type]
    assert store.stats()["events"] == 0


@pytest.mark.parametrize(
    ("coord", "shown"),
    [
        (123, "int"),
        ("ab", "str"),
        (b"ab", "bytes"),
        ({"e", "s"}, "set"),
        (("e", "s", "x"), "a tuple of length 3"),
    ],
)
def test_a_coordinate_of_the_wrong_type_says_what_it_takes(store: ep.Store, coord, shown) -> None:
    expected = rf"^coord must be an ep\.Coordinate or an \(entity, scope\) pair, not {shown}$"
    with pytest.raises(TypeError, match=expected):
        store.append(coord, "k", {})
    with pytest.raises(TypeError, match=expected):
        R.all().matches(coord, "k")
    with pytest.raises(TypeError, match=r"^coord scope must be a str, not int$"):
        store.append(("e", 1), "k", {})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^scope must be a str, not int$"):
        ep.Coordinate("e", 1)  # type: ignore[arg-type]
    assert store.stats()["events"] == 0


def test_a_coordinate_pair_may_be_any_sequence_of_two_str(store: ep.Store) -> None:
    for pair in (("acct", "eu"), ["acct", "eu"], Pair("acct", "eu"), ep.Coordinate("acct", "eu")):
        store.append(pair, "k", 1)  # type: ignore[arg-type]
        assert R.entity("acct").with_scope("eu").matches(pair, "k")  # type: ignore[arg-type]
    assert {e.coordinate for e in store.query(R.all())} == {ep.Coordinate("acct", "eu")}


@pytest.mark.parametrize(
    ("kinds", "shown"),
    [({"a"}, "set"), ("ab", "str"), (frozenset("a"), "frozenset"), (7, "int"), (b"a", "bytes")],
)
def test_with_kinds_takes_a_sequence_of_str_and_nothing_else(kinds, shown) -> None:
    for accepted in (["a", "b"], ("a", "b"), Pair("a", "b")):
        region = R.all().with_kinds(accepted)
        assert region == R.all().with_kinds(["b", "a"])
        assert region.matches(("e", "s"), "a") and not region.matches(("e", "s"), "c")
    with pytest.raises(TypeError, match=f"^kinds must be a sequence of str, not {shown}$"):
        R.all().with_kinds(kinds)
    with pytest.raises(TypeError, match=r"^kinds\[1\] must be a str, not int$"):
        R.all().with_kinds(["a", 1])  # type: ignore[list-item]


def test_region_names_of_the_wrong_type_name_the_argument() -> None:
    with pytest.raises(TypeError, match=r"^scope must be a str, not int$"):
        R.scope(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^scope must be a str, not int$"):
        R.all().with_scope(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^name must be a str, not int$"):
        R.entity(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^kind must be a str, not int$"):
        R.all().with_kind(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^prefix must be a str, not int$"):
        R.all().with_kind_prefix(1)  # type: ignore[arg-type]


def test_event_ids_take_a_uuid_or_its_string(store: ep.Store) -> None:
    first = store.append(("acct", "eu"), "k", 1)
    second = store.append(
        ("acct", "eu"), "k", 2, causation_id=str(first.event_id), correlation_id=first.event_id
    )
    assert store.get(str(second.event_id)).causation_id == first.event_id
    assert store.get(second.event_id).correlation_id == first.event_id
    assert [e.global_sequence for e in store.walk_ancestors(str(second.event_id))] == [1, 0]
    calls: dict[str, Callable[[Any], object]] = {
        "event_id": store.get,
        "causation_id": lambda v: store.append(("acct", "eu"), "k", 3, causation_id=v),
        "correlation_id": lambda v: store.append_batch(
            [ep.AppendRequest(("acct", "eu"), "k", 3, correlation_id=v)]
        ),
    }
    for argument, call in [*calls.items(), ("event_id", store.walk_ancestors)]:
        with pytest.raises(ep.InvalidArgument) as bad:
            call("not-a-uuid")
        assert isinstance(bad.value, ValueError) and bad.value.argument == argument
        assert str(bad.value) == f"{argument}: 'not-a-uuid' is not a UUID"
        with pytest.raises(TypeError, match=f"^{argument} must be a uuid.UUID or a UUID string, not int$"):
            call(42)
        with pytest.raises(TypeError, match=f"^{argument} must be a uuid.UUID or a UUID string, not bytes$"):
            call(first.event_id.bytes)
    assert store.stats()["events"] == 2
    with pytest.raises(ep.EventNotFound):
        store.get(uuid.uuid4())


# --- exact entities -----------------------------------------------------------------------------------


def _entities(store: ep.Store, region: ep.Region) -> list[str]:
    return [e.entity for e in store.query(region)]


def test_an_exact_entity_region_selects_that_entity_only(store: ep.Store) -> None:
    for entity in ("alice", "alice:x", "alice2", "ali", "alice"):
        store.append((entity, "eu"), "k", 1)
    store.append(("alice", "us"), "other", 2)
    assert _entities(store, R.entity("alice")) == ["alice", "alice:x", "alice", "alice"]
    assert _entities(store, R.entity("alice", exact=True)) == ["alice", "alice", "alice"]
    assert _entities(store, R.entity("alice", exact=True).with_scope("eu")) == ["alice", "alice"]
    assert _entities(store, R.entity("alice", exact=True).with_kind("other")) == ["alice"]
    assert [e.entity_sequence for e in store.query(R.entity("alice", exact=True).with_clock_range(1, 2))] == [
        1,
        2,
    ]
    assert _entities(store, R.entity("alice:x", exact=True)) == ["alice:x"]
    assert _entities(store, R.entity("nobody", exact=True)) == []
    cursor = store.cursor(R.entity("alice", exact=True))
    assert [e.entity for e in cursor.poll_batch(10)] == ["alice", "alice", "alice"]


def test_exact_matching_and_validation() -> None:
    exact, namespace = R.entity("alice", exact=True), R.entity("alice")
    assert exact.matches(("alice", "s"), "k") and not exact.matches(("alice:x", "s"), "k")
    assert namespace.matches(("alice:x", "s"), "k") and not namespace.matches(("alice2", "s"), "k")
    assert R.entity("alice", exact=False) == namespace != exact
    assert hash(R.entity("alice", exact=True)) == hash(exact)
    with pytest.raises(ep.InvalidRegion):
        R.entity("a|b", exact=True)
    with pytest.raises(TypeError, match=r"^exact must be a bool, not int$"):
        R.entity("alice", exact=1)  # type: ignore[arg-type]


def test_exact_regions_have_their_own_identity_and_old_identities_stay() -> None:
    assert R.entity("alice", exact=True).checkpoint_identity == "entity==alice|scope=*|kind=*|clock=*"
    assert R.entity("alice").checkpoint_identity == "entity=alice|scope=*|kind=*|clock=*"
    assert R.all().checkpoint_identity == "entity=*|scope=*|kind=*|clock=*"
    assert (
        R.entity("a%*,b").with_scope("eu").with_kinds(["x", "y"]).with_clock_range(1, 5).checkpoint_identity
        == "entity=a%25%2A%2Cb|scope=eu|kind=x,y|clock=1..5"
    )
    assert R.entity("a*", exact=True).checkpoint_identity == "entity==a%2A|scope=*|kind=*|clock=*"
    regions = [R.entity(n, exact=x) for n in ("alice", "alice:x", "%3Dalice", "*") for x in (False, True)]
    assert len({r.checkpoint_identity for r in regions}) == len(set(regions)) == 8
    # Names cannot hold "=", which keeps "entity==name" apart from every prefix's identity.
    with pytest.raises(ep.InvalidRegion):
        R.entity("=alice")


def test_a_durable_checkpoint_of_a_prefix_region_does_not_resume_an_exact_one(store: ep.Store) -> None:
    store.append(("alice", "eu"), "k", 1)
    prefix = store.cursor(R.entity("alice"))
    assert prefix.poll() is not None
    prefix.commit("alice-feed")
    with pytest.raises(ep.CursorCheckpointRegionMismatch):
        store.cursor(R.entity("alice", exact=True)).resume("alice-feed")
    assert store.cursor(R.entity("alice")).resume("alice-feed")


# --- coordinates unpack like pairs --------------------------------------------------------------------


def test_a_coordinate_unpacks_like_its_pair() -> None:
    coord = ep.Coordinate("acct:1", "eu")
    entity, scope = coord
    assert (entity, scope) == ("acct:1", "eu")
    assert len(coord) == 2 and list(coord) == ["acct:1", "eu"] and tuple(coord) == ("acct:1", "eu")
    assert (coord[0], coord[1], coord[-1], coord[-2]) == ("acct:1", "eu", "eu", "acct:1")
    assert coord[:1] == ("acct:1",)
    with pytest.raises(IndexError):
        coord[2]
    with pytest.raises(TypeError):
        coord["entity"]  # type: ignore[call-overload]
    assert dict([coord]) == {"acct:1": "eu"}


# --- pickling -----------------------------------------------------------------------------------------


def _round_trip(value: Any, protocol: int) -> Any:
    copy = pickle.loads(pickle.dumps(value, protocol))
    assert type(copy) is type(value)
    return copy


REGIONS: dict[str, Callable[[], ep.Region]] = {
    "all": R.all,
    "namespace": lambda: R.entity("acct"),
    "exact": lambda: R.entity("acct", exact=True),
    "everything": lambda: (
        R.entity("a%*,b", exact=True).with_scope("eu").with_kinds(["x", "y"]).with_clock_range(1, 9)
    ),
    "kind-prefix": lambda: R.scope("us").with_kind_prefix("deposit."),
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("make", REGIONS.values(), ids=REGIONS.keys())
def test_regions_pickle(make: Callable[[], ep.Region], protocol: int) -> None:
    region = make()
    copy = _round_trip(region, protocol)
    assert copy == region and hash(copy) == hash(region)
    assert copy.checkpoint_identity == region.checkpoint_identity


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_plain_values_pickle(protocol: int) -> None:
    values = [
        ep.Coordinate("acct:1", "eu"),
        ep.CursorCheckpoint(7, True),
        ep.CursorCheckpoint(
            0, False, process_boot_ns=2**64 - 1, region_identity="entity==a|scope=*|kind=*|clock=*"
        ),
    ]
    for value in values:
        copy = _round_trip(value, protocol)
        assert copy == value and hash(copy) == hash(value) and repr(copy) == repr(value)


NAME_OF_THE_WRONG_TYPE = [
    ("kind", ep.InvalidKind, lambda s: s.append(("e", "s"), 3, {})),
    ("coord", ep.InvalidCoordinate, lambda s: s.append(123, "k", {})),
    ("coord pair", ep.InvalidCoordinate, lambda s: s.append(("e", "s", "x"), "k", {})),
    ("scope", ep.InvalidCoordinate, lambda s: s.append(("e", 1), "k", {})),
    ("Coordinate", ep.InvalidCoordinate, lambda s: ep.Coordinate(b"e", "s")),
    ("tag", ep.InvalidTag, lambda s: s.append(("e", "s"), "k", {}, tags=["a", 2])),
    ("tags", ep.InvalidTag, lambda s: s.append(("e", "s"), "k", {}, tags="a")),
    ("region kinds", ep.InvalidRegion, lambda s: R.all().with_kinds("k")),
    ("region kind", ep.InvalidRegion, lambda s: R.all().with_kind(1)),
    ("region entity", ep.InvalidRegion, lambda s: R.entity(1)),
    ("checkpoint id", ep.InvalidCheckpointId, lambda s: ep.CursorWorkerConfig(checkpoint_id=7)),
    ("loaded checkpoint id", ep.InvalidCheckpointId, lambda s: ep.Cursor.load_checkpoint(s.path, 7)),
    ("Proposal coord", ep.InvalidCoordinate, lambda s: ep.Proposal(123, "k", {})),
    (
        "AppendRequest kind",
        ep.InvalidKind,
        lambda s: s.append_batch([ep.AppendRequest(("e", "s"), None, {})]),
    ),
]


@pytest.mark.parametrize(
    ("what", "typed", "call"), NAME_OF_THE_WRONG_TYPE, ids=[c[0] for c in NAME_OF_THE_WRONG_TYPE]
)
def test_a_name_of_the_wrong_type_raises_its_typed_error_which_is_also_a_type_error(
    store: ep.Store, what: str, typed: type[Exception], call: Callable[[ep.Store], Any]
) -> None:
    with pytest.raises(typed) as caught:
        call(store)
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, ep.EventpakError)
    assert "must be" in str(caught.value)  # names the argument and what it takes
    copy = _round_trip(caught.value, pickle.HIGHEST_PROTOCOL)
    assert type(copy) is type(caught.value) and str(copy) == str(caught.value)
    assert store.stats()["events"] == 0


def _cursor_past_a_cancelled_event(store: ep.Store) -> ep.Cursor:
    """A gap-observing cursor that has read events 0 and 2, around event 1 of a cancelled fence."""
    store.append(("a", "s"), "k", 0)
    with store.fence() as fence:
        fence.append(("a", "s"), "k", "hidden")
        fence.cancel()
    store.append(("a", "s"), "k", 2)
    cursor = store.cursor(R.all()).with_gap_config(ep.CursorGapConfig.enabled(4))
    assert len(cursor.poll_batch(10)) == 2
    return cursor


def test_gap_observations_are_built_as_a_cursor_records_them(store: ep.Store) -> None:
    cursor = _cursor_past_a_cancelled_event(store)
    assert cursor.take_gaps() == [ep.GapObservation(1, 2, [(1, 2)])]
    built = ep.GapObservation(
        expected_sequence=3, delivered_sequence=9, cancelled_ranges=[[3, 4]], compacted_ranges=((5, 9),)
    )
    assert (built.expected_sequence, built.delivered_sequence) == (3, 9)
    assert (built.cancelled_ranges, built.compacted_ranges) == ([(3, 4)], [(5, 9)])
    assert ep.GapObservation(4, 5) == ep.GapObservation(4, 5, None, [])
    adjacent = ep.GapObservation(0, 9, [(1, 3), (3, 5)])  # two fences cancelled one after another
    assert adjacent.cancelled_ranges == [(1, 3), (3, 5)]
    assert _round_trip(built, pickle.HIGHEST_PROTOCOL) == built
    # Pickled through `_restore`, which versions without the constructor have too.
    assert built.__reduce__()[0] == ep.GapObservation._restore  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((-1, 2), ep.InvalidArgument, r"^expected_sequence: must be >= 0, got -1$"),
        ((5, 2), ep.InvalidArgument, r"^delivered_sequence: must be > expected_sequence \(5\): a gap"),
        ((5, 5), ep.InvalidArgument, r"^delivered_sequence: must be > expected_sequence \(5\)"),
        ((1, 9, [(4, 6), (2, 3)]), ep.InvalidArgument, r"^cancelled_ranges\[1\]: \(2, 3\) .* ascending"),
        ((1, 9, [(2, 5), (4, 6)]), ep.InvalidArgument, r"^cancelled_ranges\[1\]: \(4, 6\) .*overlapping"),
        ((1, 5, 7), TypeError, r"^cancelled_ranges must be a sequence of \(start, end\) pairs, not int$"),
        ((1, 5, [(0, 2)]), ep.InvalidArgument, r"^cancelled_ranges\[0\]: \(0, 2\) is not a non-empty range"),
        ((1, 5, [], [(1, 6)]), ep.InvalidArgument, r"^compacted_ranges\[0\]: \(1, 6\) is not"),
        ((1, 5, [(3, 3)]), ep.InvalidArgument, r"^cancelled_ranges\[0\]: \(3, 3\) is not a non-empty"),
        ((1, 5, [(1,)]), TypeError, r"^cancelled_ranges\[0\] must be a \(start, end\) pair"),
        ((1, 5, [("1", 2)]), TypeError, r"^cancelled_ranges\[0\] must be an int, not str$"),
        (("1", 5), TypeError, r"^expected_sequence must be an int, not str$"),
    ],
)
def test_a_gap_observation_refuses_what_a_cursor_never_records(args, error, message) -> None:
    with pytest.raises(error, match=message):
        ep.GapObservation(*args)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_receipts_pickle(store: ep.Store, protocol: int) -> None:
    receipt = store.append(("acct", "eu"), "k", 1)
    copy = _round_trip(receipt, protocol)
    assert copy == receipt and hash(copy) == hash(receipt)
    fields = ("event_id", "global_sequence", "entity_sequence", "hash", "timestamp_us", "durable")
    assert [getattr(copy, f) for f in fields] == [getattr(receipt, f) for f in fields]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_gap_observations_pickle(store: ep.Store, protocol: int) -> None:
    (gap,) = _cursor_past_a_cancelled_event(store).take_gaps()
    copy = _round_trip(gap, protocol)
    assert copy == gap
    assert (copy.expected_sequence, copy.delivered_sequence, copy.cancelled_ranges) == (1, 2, [(1, 2)])


EVENT_FIELDS = (
    "event_id",
    "global_sequence",
    "coordinate",
    "entity",
    "scope",
    "kind",
    "entity_sequence",
    "timestamp_us",
    "timestamp",
    "causation_id",
    "correlation_id",
    "prev_hash",
    "hash",
    "payload",
    "payload_bytes",
)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_events_pickle_with_every_field(store: ep.Store, protocol: int) -> None:
    first = store.append(("acct:1", "eu"), "opened", {"owner": "ann"})
    store.append(
        ("acct:1", "eu"),
        "deposit",
        {"amount": 5, "at": dt.datetime(2024, 1, 2, tzinfo=dt.UTC), "raw": b"\x00"},
        idempotency_key="deposit-1",
        causation_id=first.event_id,
    )
    for event in store.query(R.all()):
        copy = _round_trip(event, protocol)
        assert copy == event and hash(copy) == hash(event)
        assert [getattr(copy, f) for f in EVENT_FIELDS] == [getattr(event, f) for f in EVENT_FIELDS]
        assert repr(copy) == repr(event)
    store.close()
    # An unpickled event owns its bytes: it outlives the store and its mapped segments.
    assert _round_trip(event, protocol).payload["amount"] == 5


def test_a_damaged_event_pickle_is_refused(store: ep.Store) -> None:
    store.append(("acct", "eu"), "k", {"n": 1})
    (event,) = store.query(R.all())
    reduced: Any = event.__reduce__()
    restore, (frame,) = reduced
    assert restore(frame) == event
    damaged = bytearray(frame)
    damaged[-1] ^= 0xFF
    for bad in (bytes(damaged), frame[:-1], frame + b"\0", b""):
        with pytest.raises(ep.InvalidArgument, match="not an event frame") as refused:
            restore(bad)
        assert isinstance(refused.value, ValueError)  # what it was before it was typed


def test_event_equality_is_the_stored_event(store: ep.Store) -> None:
    store.append(("a", "s"), "k", 1)
    store.append(("a", "s"), "k", 1)
    first, second = store.query(R.all())
    assert first == store.query(R.all())[0] and first != second
    assert pickle.loads(pickle.dumps(first)) == first != pickle.loads(pickle.dumps(second))
    assert first != "event" and len({first, second, store.get(first.event_id)}) == 2


def test_event_timestamp_is_an_aware_utc_datetime(store: ep.Store) -> None:
    receipt = store.append(("a", "s"), "k", 1)
    event = store.get(receipt.event_id)
    stamp = event.timestamp
    assert isinstance(stamp, dt.datetime) and stamp.tzinfo is dt.UTC
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    assert (stamp - epoch) // dt.timedelta(microseconds=1) == event.timestamp_us == receipt.timestamp_us
    assert abs(dt.datetime.now(dt.UTC) - stamp) < dt.timedelta(minutes=5)
