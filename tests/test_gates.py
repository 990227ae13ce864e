"""Caller-defined gates: ``ep.Proposal`` and ``ep.Denial`` as values, ``ep.GateSet`` ordering and
defects, ``ep.Pipeline`` appends, recorded denials, atomic batches and audited bypasses,
``store.append_denial``, and the reserved kinds only the store writes but anyone reads."""

from __future__ import annotations

import decimal
import pickle
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import eventpak as ep
import eventpak.gates
import pytest

ACCT = ep.Coordinate("acct:1", "eu")
OTHER = ep.Coordinate("acct:2", "eu")
RESERVED = ["eventpak.denial", "eventpak.bypass", "eventpak.dead_letter", "eventpak.other", "eventpak."]


class Allow:
    """A gate that lets everything through and remembers what it saw."""

    def __init__(self, name: str = "allow", seen: list[str] | None = None) -> None:
        self.name = name
        self.seen = seen if seen is not None else []
        self.proposals: list[tuple[Any, ep.Proposal]] = []

    def check(self, ctx: Any, proposal: ep.Proposal) -> None:
        self.seen.append(self.name)
        self.proposals.append((ctx, proposal))


class Refuse(Allow):
    """A gate that denies every proposal of ``kind`` (or every one)."""

    def __init__(self, name: str = "refuse", seen: list[str] | None = None, kind: str | None = None) -> None:
        super().__init__(name, seen)
        self.kind = kind

    def check(self, ctx: Any, proposal: ep.Proposal) -> None:
        super().check(ctx, proposal)
        if self.kind is None or proposal.kind == self.kind:
            raise ep.Denial(self.name, "NO", f"{self.name} says no", {"kind": proposal.kind})


class Broken(Allow):
    def check(self, ctx: Any, proposal: ep.Proposal) -> None:
        super().check(ctx, proposal)
        raise ZeroDivisionError("division by zero")


def events(store: ep.Store, region: ep.Region | None = None) -> list[ep.Event]:
    return store.query(region or ep.Region.all())


# --- Proposal ----------------------------------------------------------------------------------


def test_a_proposal_is_a_frozen_value() -> None:
    p = ep.Proposal(("acct:1", "eu"), "deposit", {"amount": 5}, idempotency_key="k", expected_sequence=None)
    assert p.coord == ACCT and isinstance(p.coord, ep.Coordinate)  # a pair becomes a Coordinate
    assert (p.kind, p.payload, dict(p.options)) == ("deposit", {"amount": 5}, {"idempotency_key": "k"})
    assert p == ep.Proposal(ACCT, "deposit", {"amount": 5}, idempotency_key="k")
    assert p != ep.Proposal(ACCT, "deposit", {"amount": 5})
    assert p != ep.Proposal(ACCT, "deposit", {"amount": 6}, idempotency_key="k")
    assert repr(p) == f"Proposal({ACCT!r}, 'deposit', {{'amount': 5}}, idempotency_key='k')"
    with pytest.raises(AttributeError):
        p.kind = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        p.options["expected_sequence"] = 3  # type: ignore[index]
    assert pickle.loads(pickle.dumps(p)) == p
    assert hash(ep.Proposal(ACCT, "k", 1, causation_id="x")) == hash(
        ep.Proposal(ACCT, "k", 1, causation_id="x")
    )


def test_a_proposal_passes_any_append_option_through() -> None:
    p = ep.Proposal(ACCT, "deposit", 1, a_future_option=7)  # type: ignore[call-arg]
    assert p.options == {"a_future_option": 7}


@pytest.mark.parametrize(
    ("coord", "kind", "error"),
    [
        ("acct:1", "k", TypeError),
        (("a", "b", "c"), "k", TypeError),
        (("a/b", "eu"), "k", ep.InvalidCoordinate),
    ],
)
def test_a_proposal_refuses_what_cannot_be_a_coordinate(
    coord: Any, kind: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        ep.Proposal(coord, kind, None)
    with pytest.raises(TypeError, match="kind must be a str"):
        ep.Proposal(ACCT, 5, None)  # type: ignore[arg-type]


# --- Denial ------------------------------------------------------------------------------------


def test_a_denial_is_an_error_and_a_value() -> None:
    denial = ep.Denial("limit", "OVER_LIMIT", "withdrawals are limited", {"amount": 900})
    assert isinstance(denial, ep.EventpakError) and isinstance(denial, Exception)
    assert (denial.gate, denial.code, denial.message, denial.context) == (
        "limit",
        "OVER_LIMIT",
        "withdrawals are limited",
        {"amount": 900},
    )
    assert str(denial) == "denied by gate 'limit' (OVER_LIMIT): withdrawals are limited"
    assert denial == ep.Denial("limit", "OVER_LIMIT", "withdrawals are limited", {"amount": 900})
    assert denial != ep.Denial("limit", "OVER_LIMIT", "withdrawals are limited", {"amount": 901})
    assert denial != ep.Denial("limit", "OTHER", "withdrawals are limited", {"amount": 900})
    assert hash(denial) == hash(ep.Denial("limit", "OVER_LIMIT", "withdrawals are limited", {"amount": 900}))
    back = pickle.loads(pickle.dumps(denial))
    assert back == denial and type(back) is ep.Denial and back.context == {"amount": 900}
    assert ep.Denial("g", "c", "m").context is None
    assert eval(repr(denial), {"Denial": ep.Denial}) == denial
    with pytest.raises(TypeError, match="code must be a str"):
        ep.Denial("g", 5, "m")  # type: ignore[arg-type]


# --- GateSet -----------------------------------------------------------------------------------


def test_a_gate_set_keeps_its_order_and_stops_at_the_first_denial() -> None:
    seen: list[str] = []
    gates = ep.GateSet([Allow("a", seen), Refuse("b", seen), Refuse("c", seen)])
    assert len(gates) == 3 and gates.names == ("a", "b", "c")
    assert [g.name for g in gates] == ["a", "b", "c"] and repr(gates) == "GateSet(['a', 'b', 'c'])"
    proposal = ep.Proposal(ACCT, "deposit", 1)
    with pytest.raises(ep.Denial) as info:
        gates.evaluate({"user": "ana"}, proposal)
    assert info.value == ep.Denial("b", "NO", "b says no", {"kind": "deposit"})
    assert seen == ["a", "b"]  # c never ran
    first = next(iter(gates))
    assert isinstance(first, Allow) and first.proposals == [({"user": "ana"}, proposal)]
    ep.GateSet([Allow("x"), Allow("y")]).evaluate(None, proposal)  # nobody denies: returns
    ep.GateSet().evaluate(None, proposal)


def test_evaluate_all_runs_every_gate() -> None:
    seen: list[str] = []
    gates = ep.GateSet([Refuse("a", seen), Allow("b", seen), Refuse("c", seen)])
    denials = gates.evaluate_all(None, ep.Proposal(ACCT, "deposit", 1))
    assert [d.gate for d in denials] == ["a", "c"] and seen == ["a", "b", "c"]
    assert ep.GateSet([Allow()]).evaluate_all(None, ep.Proposal(ACCT, "deposit", 1)) == []


def test_a_gate_that_raises_anything_else_is_a_gate_defect() -> None:
    seen: list[str] = []
    gates = ep.GateSet([Broken("broken", seen), Allow("after", seen)])
    with pytest.raises(ep.Denial) as info:
        gates.evaluate(None, ep.Proposal(ACCT, "deposit", 1))
    defect = info.value
    assert (defect.gate, defect.code) == ("broken", "GATE_DEFECT") and seen == ["broken"]
    assert isinstance(defect.__cause__, ZeroDivisionError)
    assert defect.message == "gate 'broken' failed: ZeroDivisionError: division by zero"
    assert defect.context == {"error_type": "builtins.ZeroDivisionError"}
    (listed,) = gates.evaluate_all(None, ep.Proposal(ACCT, "deposit", 1))
    assert listed == defect and isinstance(listed.__cause__, ZeroDivisionError)


def test_a_denial_returned_instead_of_raised_still_refuses() -> None:
    class Returns:
        name = "returns"

        def check(self, ctx: Any, proposal: ep.Proposal) -> Any:
            return ep.Denial(self.name, "NO", "returned")

    with pytest.raises(ep.Denial, match="returned"):
        ep.GateSet([Returns()]).evaluate(None, ep.Proposal(ACCT, "k", 1))


def test_an_interrupt_in_a_gate_is_not_turned_into_a_denial() -> None:
    class Interrupted:
        name = "interrupted"

        def check(self, ctx: Any, proposal: ep.Proposal) -> None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ep.GateSet([Interrupted()]).evaluate(None, ep.Proposal(ACCT, "k", 1))


class NoCheck:
    name = "no-check"


class NumberName:
    name = 5

    def check(self, ctx: Any, proposal: ep.Proposal) -> None: ...


class NotCallable:
    name = "not-callable"
    check = "yes"


@pytest.mark.parametrize("bad", [object(), NoCheck(), NumberName(), NotCallable(), Allow, None])
def test_a_gate_set_refuses_what_is_not_a_gate(bad: Any) -> None:
    with pytest.raises(TypeError, match=r"gate 1 .* is not a gate"):
        ep.GateSet([Allow(), bad])


# --- Pipeline ----------------------------------------------------------------------------------


def test_an_allowed_append_is_written_with_its_options(store: ep.Store) -> None:
    gate = Allow()
    pipeline = ep.Pipeline(store, ep.GateSet([gate]))
    assert pipeline.store is store and pipeline.record_denials and pipeline.gates.names == ("allow",)
    cause = uuid.uuid4()
    receipt = pipeline.append("ctx", ACCT, "deposit", {"amount": 5}, idempotency_key="k1", causation_id=cause)
    assert gate.proposals == [
        ("ctx", ep.Proposal(ACCT, "deposit", {"amount": 5}, idempotency_key="k1", causation_id=cause))
    ]
    (event,) = events(store)
    assert (event.kind, event.payload, event.causation_id) == ("deposit", {"amount": 5}, cause)
    assert receipt.event_id == event.event_id
    # The options reach the store: the same key replays, a stale expected_sequence conflicts.
    assert pipeline.append("ctx", ACCT, "deposit", {"amount": 5}, idempotency_key="k1") == receipt
    with pytest.raises(ep.ConcurrencyConflict):
        pipeline.append("ctx", ACCT, "deposit", {"amount": 6}, expected_sequence=0)
    assert len(events(store)) == 1


def test_gates_see_the_proposal_before_anything_is_written(store: ep.Store) -> None:
    heads: list[int | None] = []

    class Watch:
        name = "watch"

        def check(self, ctx: Any, proposal: ep.Proposal) -> None:
            heads.append(store.head())

    pipeline = ep.Pipeline(store, [Watch()])  # a plain list of gates is made a GateSet
    pipeline.append(None, ACCT, "deposit", 1)
    pipeline.append_batch(None, [(ACCT, "deposit", 2), (ACCT, "deposit", 3)])
    assert heads == [None, 0, 0]


def test_a_denial_is_recorded_on_the_proposals_coordinate_and_raised(store: ep.Store, data_dir: Path) -> None:
    store.append(OTHER, "deposit", 1)
    pipeline = ep.Pipeline(store, ep.GateSet([Allow(), Refuse("limit", kind="withdrawal")]))
    correlation = uuid.uuid4()
    with pytest.raises(ep.Denial) as info:
        pipeline.append({"user": "ana"}, ACCT, "withdrawal", {"amount": 900}, correlation_id=correlation)
    assert info.value == ep.Denial("limit", "NO", "limit says no", {"kind": "withdrawal"})
    first, denial = events(store)
    assert first.coordinate == OTHER  # nothing else was written: no withdrawal anywhere
    assert (denial.coordinate, denial.kind, denial.entity_sequence) == (ACCT, "eventpak.denial", 0)
    assert denial.payload == {
        "gate": "limit",
        "code": "NO",
        "message": "limit says no",
        "context": {"kind": "withdrawal"},
        "proposed_kind": "withdrawal",
    }
    assert denial.correlation_id == correlation  # the denial joins the proposal's trace


def test_without_record_denials_a_denial_writes_nothing(
    open_store: Callable[..., ep.Store], data_dir: Path, dir_bytes: Callable[[Path], dict[str, bytes]]
) -> None:
    store = open_store(sync="always")
    store.append(OTHER, "deposit", 1)
    before = dir_bytes(data_dir)
    pipeline = ep.Pipeline(store, ep.GateSet([Refuse()]), record_denials=False)
    with pytest.raises(ep.Denial):
        pipeline.append(None, ACCT, "deposit", 2)
    with pytest.raises(ep.Denial):
        pipeline.append_batch(None, [(ACCT, "deposit", 2)])
    assert dir_bytes(data_dir) == before and len(events(store)) == 1


def test_a_gate_defect_is_recorded_and_raised_with_its_cause(store: ep.Store) -> None:
    pipeline = ep.Pipeline(store, ep.GateSet([Broken("broken")]))
    with pytest.raises(ep.Denial) as info:
        pipeline.append(None, ACCT, "deposit", 1)
    assert info.value.code == "GATE_DEFECT" and isinstance(info.value.__cause__, ZeroDivisionError)
    (recorded,) = events(store)
    assert recorded.kind == "eventpak.denial" and recorded.payload["code"] == "GATE_DEFECT"


def test_a_context_msgpack_cannot_carry_is_recorded_by_its_repr(open_store: Callable[..., ep.Store]) -> None:
    store = open_store()
    odd = {"ok": [1, 2], 3: "int key"}

    class Odd:
        name = "odd"

        def check(self, ctx: Any, proposal: ep.Proposal) -> None:
            raise ep.Denial(self.name, "ODD", "odd", {"error": ValueError("x"), "n": 1})

    with pytest.raises(ep.Denial) as info:
        ep.Pipeline(store, [Odd()]).append(None, ACCT, "deposit", 1)
    assert isinstance(info.value.context["error"], ValueError)  # the raised denial is untouched
    assert events(store)[0].payload["context"] == {"error": "ValueError('x')", "n": 1}
    # A shape msgpack cannot carry (a non-str key) records the whole context by its repr.
    store.append_denial(ep.Denial("g", "c", "m", odd), ep.Proposal(ACCT, "deposit", 1))  # type: ignore[arg-type]
    assert events(store)[1].payload["context"] == repr(odd)


def test_the_stores_default_converts_a_context_first(open_store: Callable[..., ep.Store]) -> None:
    store = open_store(default=str)
    denial = ep.Denial("g", "c", "m", {"amount": decimal.Decimal("1.50")})
    store.append_denial(denial, ep.Proposal(ACCT, "deposit", 1))
    assert events(store)[0].payload["context"] == {"amount": "1.50"}


def test_recording_that_fails_raises_with_the_denial_as_its_context(
    open_store: Callable[..., ep.Store], data_dir: Path
) -> None:
    open_store().close()
    reader = open_store(read_only=True)
    with pytest.raises(ep.ReadOnlyStore) as info:
        ep.Pipeline(reader, [Refuse()]).append(None, ACCT, "deposit", 1)
    assert isinstance(info.value.__context__, ep.Denial)


def test_a_pipeline_needs_a_store() -> None:
    with pytest.raises(TypeError, match=r"store must be an ep\.Store"):
        ep.Pipeline(object(), ep.GateSet())  # type: ignore[arg-type]


# --- Pipeline.append_batch ---------------------------------------------------------------------


def test_a_batch_is_gated_item_by_item_and_appended_whole(store: ep.Store) -> None:
    gate = Allow()
    pipeline = ep.Pipeline(store, [gate])
    items = [(ACCT, "deposit", 1), ep.AppendRequest(OTHER, "deposit", 2, expected_sequence=0)]
    receipts = pipeline.append_batch("ctx", iter(items))
    assert [p for _, p in gate.proposals] == [
        ep.Proposal(ACCT, "deposit", 1),
        ep.Proposal(OTHER, "deposit", 2, expected_sequence=0),
    ]
    assert [e.global_sequence for e in events(store)] == [r.global_sequence for r in receipts] == [0, 1]
    assert pipeline.append_batch("ctx", []) == []


def test_one_denied_item_stops_the_whole_batch(store: ep.Store) -> None:
    seen: list[str] = []
    pipeline = ep.Pipeline(store, [Refuse("no-withdrawals", seen, kind="withdrawal")])
    batch = [(ACCT, "deposit", 1), (OTHER, "withdrawal", 2), (ACCT, "withdrawal", 3)]
    with pytest.raises(ep.Denial):
        pipeline.append_batch(None, batch)
    assert seen == ["no-withdrawals"] * 2  # the third item was never gated
    (recorded,) = events(store)  # nothing of the batch; one denial, for the denied item
    assert (recorded.kind, recorded.coordinate, recorded.payload["proposed_kind"]) == (
        "eventpak.denial",
        OTHER,
        "withdrawal",
    )


def test_a_batch_item_of_the_wrong_shape_is_refused_before_anything(store: ep.Store) -> None:
    gate = Allow()
    with pytest.raises(TypeError, match="batch items must be"):
        ep.Pipeline(store, [gate]).append_batch(None, [(ACCT, "deposit", 1), (ACCT, "deposit")])
    assert events(store) == [] and len(gate.proposals) == 1


# --- bypass ------------------------------------------------------------------------------------


def test_a_bypass_appends_the_event_and_its_audit_atomically(store: ep.Store) -> None:
    gate = Refuse("limit")
    pipeline = ep.Pipeline(store, ep.GateSet([Allow("known"), gate]))
    receipt = pipeline.bypass(ACCT, "withdrawal", {"amount": 900}, reason="approved by ops")
    assert gate.proposals == []  # no gate was asked
    event, audit = events(store)
    assert (event.kind, event.payload, event.event_id) == ("withdrawal", {"amount": 900}, receipt.event_id)
    assert (audit.coordinate, audit.kind) == (ACCT, "eventpak.bypass")
    assert audit.payload == {
        "reason": "approved by ops",
        "bypassed_gates": ["known", "limit"],
        "proposed_kind": "withdrawal",
    }
    # Atomic: when the event is refused, the audit is not written either.
    with pytest.raises(ep.ConcurrencyConflict):
        pipeline.bypass(ACCT, "withdrawal", 1, reason="again", expected_sequence=0)
    assert len(events(store)) == 2


def test_a_bypass_takes_a_condition_and_a_tracking_record_for_its_commit(store: ep.Store) -> None:
    pipeline = ep.Pipeline(store, [Refuse()])
    taken = ep.AppendCondition(fail_if_events_match=ep.Region.entity("acct:1"), after=None)
    receipt = pipeline.bypass(ACCT, "open", 1, reason="ops", condition=taken, tracking=ep.Tracking("in", 5))
    assert store.tracking_position("in") == 5
    assert [e.kind for e in events(store)] == ["open", "eventpak.bypass"]
    # The same condition now fails: neither the event nor its audit is written.
    with pytest.raises(ep.AppendConditionFailed):
        pipeline.bypass(ACCT, "open", 2, reason="ops", condition=taken, tracking=ep.Tracking("in", 6))
    assert (len(events(store)), store.tracking_position("in")) == (2, 5)
    assert receipt.global_sequence == 0


def test_a_denial_keeps_the_cause_given_as_caused_by(store: ep.Store) -> None:
    root = store.append(ACCT, "placed", {})
    with pytest.raises(ep.Denial):
        ep.Pipeline(store, [Refuse()]).append(None, ACCT, "ship", {}, caused_by=root)
    denial = store.query(ep.Region.all().with_kind("eventpak.denial"))[0]
    assert denial.causation_id == root.event_id
    assert denial.event_id in {e.event_id for e in store.correlated(root.event_id)}


def test_a_denied_batch_item_caused_by_an_earlier_item_is_recorded_without_that_cause(
    store: ep.Store,
) -> None:
    """The item it names was never written: the denial is recorded and raised all the same."""
    correlation = uuid.uuid4()
    items = [
        ep.AppendRequest(ACCT, "open", {}),
        ep.AppendRequest(ACCT, "ship", {}, causation_id=ep.PriorItem(0), correlation_id=correlation),
    ]
    with pytest.raises(ep.Denial):
        ep.Pipeline(store, [Refuse(kind="ship")]).append_batch(None, items)
    [denial] = events(store)
    assert (denial.kind, denial.causation_id, denial.correlation_id) == ("eventpak.denial", None, correlation)


@pytest.mark.parametrize("append", ["store", "pipeline"])
def test_a_batch_tuple_with_options_says_where_options_go(store: ep.Store, append: str) -> None:
    item = (ACCT, "k", {}, ["tag"])
    with pytest.raises(TypeError, match=r"not a tuple of 4 \(options such as tags go in ep.AppendRequest"):
        if append == "store":
            store.append_batch([item])  # type: ignore[list-item]
        else:
            ep.Pipeline(store, [Allow()]).append_batch(None, [item])  # type: ignore[list-item]
    assert events(store) == []


def test_a_retried_bypass_with_a_key_writes_nothing_new(store: ep.Store) -> None:
    pipeline = ep.Pipeline(store, [Refuse()])
    first = pipeline.bypass(ACCT, "withdrawal", 1, reason="ops", idempotency_key="w-1")
    assert pipeline.bypass(ACCT, "withdrawal", 1, reason="ops", idempotency_key="w-1") == first
    assert len(events(store)) == 2


def test_a_bypass_needs_a_reason_and_an_ordinary_kind(store: ep.Store) -> None:
    pipeline = ep.Pipeline(store, [Refuse()])
    with pytest.raises(ep.InvalidArgument) as info:
        pipeline.bypass(ACCT, "withdrawal", 1, reason="  ")
    assert info.value.argument == "reason"
    with pytest.raises(TypeError):
        pipeline.bypass(ACCT, "withdrawal", 1)  # type: ignore[call-arg]
    for kind in RESERVED:
        with pytest.raises(ep.InvalidKind):
            pipeline.bypass(ACCT, kind, 1, reason="sneaky")
    assert events(store) == []


# --- store.append_denial and reserved kinds ----------------------------------------------------


def test_append_denial_records_a_denial_without_a_pipeline(store: ep.Store) -> None:
    denial = ep.Denial("manual", "REVIEW", "held for review")
    receipt = store.append_denial(denial, ep.Proposal(("acct:9", "us"), "transfer", {"to": "x"}))
    recorded = store.get(receipt.event_id)
    assert (recorded.coordinate, recorded.kind) == (ep.Coordinate("acct:9", "us"), "eventpak.denial")
    assert recorded.payload == {
        "gate": "manual",
        "code": "REVIEW",
        "message": "held for review",
        "context": None,
        "proposed_kind": "transfer",
    }
    with pytest.raises(TypeError, match=r"denial must be an ep\.Denial"):
        store.append_denial(ValueError("x"), ep.Proposal(ACCT, "k", 1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"proposal must be an ep\.Proposal"):
        store.append_denial(denial, (ACCT, "k", 1))  # type: ignore[arg-type]
    assert len(events(store)) == 1


@pytest.mark.parametrize("kind", RESERVED)
def test_users_cannot_write_reserved_kinds(
    store: ep.Store, data_dir: Path, dir_bytes: Callable[[Path], dict[str, bytes]], kind: str
) -> None:
    store.append(ACCT, "deposit", 1)
    store.sync()
    before = dir_bytes(data_dir)
    attempts: list[Callable[[], Any]] = [
        lambda: store.append(ACCT, kind, 1),
        lambda: store.append_batch([(ACCT, "deposit", 2), (ACCT, kind, 3)]),
        lambda: store.append_batch([ep.AppendRequest(ACCT, kind, 3)]),
        lambda: ep.Pipeline(store, [Allow()]).append(None, ACCT, kind, 1),
    ]
    for attempt in attempts:
        with pytest.raises(ep.InvalidKind, match="reserved prefix"):
            attempt()
    assert dir_bytes(data_dir) == before
    with pytest.raises(ep.InvalidKind), store.fence() as fence:
        fence.append(ACCT, kind, 1)
    assert [e.kind for e in events(store)] == ["deposit"]


def test_reserved_events_are_read_like_any_other(store: ep.Store) -> None:
    pipeline = ep.Pipeline(store, [Refuse(kind="withdrawal")])
    pipeline.append(None, ACCT, "deposit", 1)
    with pytest.raises(ep.Denial):
        pipeline.append(None, ACCT, "withdrawal", 2)
    pipeline.bypass(ACCT, "withdrawal", 2, reason="ops")
    kinds = ["deposit", "eventpak.denial", "withdrawal", "eventpak.bypass"]
    assert [e.kind for e in events(store)] == kinds
    assert [e.kind for e in events(store, ep.Region.all().with_kind_prefix("eventpak."))] == kinds[1::2]
    assert [e.kind for e in events(store, ep.Region.all().with_kind("eventpak.denial"))] == [
        "eventpak.denial"
    ]
    cursor = store.cursor(ep.Region.entity("acct:1").with_kinds(["eventpak.bypass", "eventpak.denial"]))
    assert [e.kind for e in cursor.poll_batch(10)] == ["eventpak.denial", "eventpak.bypass"]
    # Part of the entity's clock and chain like any event.
    assert [e.entity_sequence for e in events(store)] == [0, 1, 2, 3]
    assert len(store.walk_ancestors(events(store)[-1].event_id)) == 4


# --- the module example ------------------------------------------------------------------------


def test_the_gates_module_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.chdir(tmp_path)
    doc = eventpak.gates.__doc__
    assert doc is not None
    exec(textwrap.dedent(doc.split("::\n", 1)[1]), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "denied by gate 'daily_limit' (OVER_LIMIT): withdrawals are limited to 500 a day"
    assert [line.split()[0] for line in out[1:]] == [
        "withdrawal",
        "eventpak.denial",
        "withdrawal",
        "eventpak.bypass",
    ]
