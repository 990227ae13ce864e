"""Typed payloads: ``@ep.event_type`` dataclasses name a kind and a payload version,
``store.append_typed`` appends an instance as a dict payload, ``event.decode(cls)`` builds
one back (after upcasting), and every misuse is a ``TypeError`` or a typed error that
writes nothing."""

from __future__ import annotations

import dataclasses
from typing import Any

import eventpak as ep
import pytest
from eventpak import _native

ACCT = ("acct:1", "eu")


@dataclasses.dataclass(frozen=True)
class Money:
    cents: int
    currency: str


@dataclasses.dataclass(frozen=True)
class Line:
    sku: str
    price: Money


@ep.event_type("deposit", version=2)
@dataclasses.dataclass(frozen=True)
class Deposit:
    amount: Money
    memo: str = ""


@ep.event_type("deposit", version=1)
@dataclasses.dataclass(frozen=True)
class DepositV1:
    amount: int
    currency: str


@ep.event_type("order")
@dataclasses.dataclass
class Order:
    lines: list[Line]
    by_sku: dict[str, Money]
    discount: Money | None
    fallback: Money | None
    pair: tuple[Money, int]
    tags: tuple[str, ...]
    total: int = dataclasses.field(init=False, default=0)
    gifts: list[Line] | None = None
    extra: dict[str, Money] | None = None

    def __post_init__(self) -> None:
        self.total = sum(line.price.cents for line in self.lines)


@dataclasses.dataclass
class Undeclared:
    amount: int


def test_event_type_records_kind_and_version_on_the_class() -> None:
    assert Deposit.__eventpak_type__ == ep.EventType("deposit", 2)  # type: ignore[attr-defined]
    assert Order.__eventpak_type__ == ep.EventType("order", 0)  # type: ignore[attr-defined]


def test_append_typed_stores_the_fields_with_the_class_kind_and_version(store: ep.Store) -> None:
    deposit = Deposit(Money(500, "EUR"), memo="salary")
    receipt = store.append_typed(ACCT, deposit)
    event = store.get(receipt.event_id)
    assert (event.kind, event.payload_version, event.stored_payload_version) == ("deposit", 2, 2)
    assert event.payload == {"amount": {"cents": 500, "currency": "EUR"}, "memo": "salary"}
    assert event.payload_bytes == _native.encode_payload(dataclasses.asdict(deposit))
    assert event.decode(Deposit) == deposit


def test_nested_dataclasses_round_trip(store: ep.Store) -> None:
    order = Order(
        lines=[Line("a", Money(100, "EUR")), Line("b", Money(250, "EUR"))],
        by_sku={"a": Money(100, "EUR")},
        discount=Money(10, "EUR"),
        fallback=None,
        pair=(Money(1, "USD"), 2),
        tags=("gift", "rush"),
        gifts=[Line("g", Money(0, "EUR"))],
        extra={"fee": Money(5, "EUR")},
    )
    assert order.total == 350
    store.append_typed(ACCT, order)
    (event,) = store.query(ep.Region.all())
    assert event.payload["total"] == 350  # stored, and computed again by the class on decode
    decoded = event.decode(Order)
    assert decoded == order
    assert isinstance(decoded.lines[0].price, Money) and isinstance(decoded.pair, tuple)
    assert isinstance(decoded.by_sku["a"], Money) and isinstance(decoded.discount, Money)
    # A container of dataclasses that may be None is rebuilt like the container alone.
    assert decoded.gifts is not None and isinstance(decoded.gifts[0], Line)
    assert decoded.extra is not None and isinstance(decoded.extra["fee"], Money)


@ep.event_type("node")
@dataclasses.dataclass
class Node:
    children: list[Node]


def test_a_payload_that_refers_to_itself_is_not_serializable(store: ep.Store) -> None:
    node = Node([])
    node.children.append(node)
    with pytest.raises(ep.PayloadNotSerializable, match="Node instance refers to itself"):
        store.append_typed(ACCT, node)
    assert store.query(ep.Region.all()) == []


def test_append_typed_takes_the_append_options(store: ep.Store) -> None:
    first = store.append_typed(ACCT, DepositV1(5, "EUR"), idempotency_key="d1", expected_sequence=0)
    assert store.append_typed(ACCT, DepositV1(5, "EUR"), idempotency_key="d1") == first
    second = store.append_typed(ACCT, DepositV1(6, "EUR"), caused_by=first)
    assert store.get(second.event_id).causation_id == first.event_id
    with pytest.raises(ep.ConcurrencyConflict):
        store.append_typed(ACCT, DepositV1(7, "EUR"), expected_sequence=0)
    assert store.stats()["events"] == 2


@pytest.mark.parametrize(
    ("obj", "says"),
    [
        (Undeclared(5), "Undeclared is not declared with @ep.event_type"),
        ({"amount": 5}, "dict is not declared with @ep.event_type"),
        (Deposit, "takes an instance of Deposit, not the class"),
    ],
)
def test_append_typed_refuses_what_is_not_a_declared_instance(store: ep.Store, obj: Any, says: str) -> None:
    with pytest.raises(TypeError, match=says):
        store.append_typed(ACCT, obj)
    assert store.stats()["events"] == 0


def test_append_typed_takes_the_version_from_the_class_only(store: ep.Store) -> None:
    with pytest.raises(TypeError, match="payload_version from the class"):
        store.append_typed(ACCT, DepositV1(5, "EUR"), payload_version=3)
    assert store.stats()["events"] == 0


def test_a_subclass_does_not_inherit_its_parents_kind(store: ep.Store) -> None:
    @dataclasses.dataclass(frozen=True)
    class Bonus(DepositV1):
        reason: str = ""

    with pytest.raises(TypeError, match="Bonus is not declared"):
        store.append_typed(ACCT, Bonus(5, "EUR"))
    assert store.stats()["events"] == 0


@pytest.mark.parametrize(
    ("kind", "version", "error", "says"),
    [
        ("eventpak.denial", 0, ep.InvalidKind, "reserved prefix"),
        ("a|b", 0, ep.InvalidKind, "'|'"),
        (3, 0, TypeError, "kind must be a str"),
        ("deposit", -1, ep.InvalidArgument, "version"),
        ("deposit", 2**32, ep.InvalidArgument, "version"),
        ("deposit", "2", TypeError, "version must be an int, not str"),
        ("deposit", True, TypeError, "version must be an int, not bool"),
    ],
)
def test_event_type_refuses_bad_declarations(
    kind: Any, version: Any, error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=says):
        ep.event_type(kind, version=version)


def test_event_type_applies_to_dataclasses_only() -> None:
    class Plain:
        amount: int

    with pytest.raises(TypeError, match="applies to a dataclass"):
        ep.event_type("deposit")(Plain)
    assert not hasattr(Plain, "__eventpak_type__")


def test_decode_refuses_a_class_of_another_kind(store: ep.Store) -> None:
    store.append_typed(ACCT, DepositV1(5, "EUR"))
    (event,) = store.query(ep.Region.all())
    with pytest.raises(
        TypeError, match=r"Order is declared for kind 'order', not for event 0 \(kind 'deposit'\)"
    ):
        event.decode(Order)


def test_decode_refuses_a_class_of_another_version(store: ep.Store) -> None:
    store.append_typed(ACCT, DepositV1(5, "EUR"))
    (event,) = store.query(ep.Region.all())
    with pytest.raises(TypeError, match=r"payload version 2, but event 0 .* reads as version 1 \(stored 1\)"):
        event.decode(Deposit)


def test_decode_of_a_newer_payload_says_the_class_is_older(store: ep.Store) -> None:
    store.append_typed(ACCT, Deposit(Money(5, "EUR")))
    (event,) = store.query(ep.Region.all())
    with pytest.raises(TypeError, match="this code's class is older than the payload") as info:
        event.decode(DepositV1)
    assert "register upcasters" not in str(info.value)  # they only go up: no help here


def test_decode_given_an_instance_asks_for_its_class(store: ep.Store) -> None:
    store.append_typed(ACCT, DepositV1(5, "EUR"))
    (event,) = store.query(ep.Region.all())
    with pytest.raises(TypeError, match="pass the class DepositV1 itself, not an instance of it"):
        event.decode(DepositV1(5, "EUR"))  # type: ignore[arg-type]


def test_decode_rebuilds_nested_fields_beside_one_that_does_not_resolve(store: ep.Store) -> None:
    # `from __future__ import annotations` is on here: `Unresolvable` exists only as a string.
    @ep.event_type("order", version=1)
    @dataclasses.dataclass(frozen=True)
    class Order:
        lines: list[Line]
        note: Unresolvable | None = None  # type: ignore[name-defined]  # noqa: F821

    store.append_typed(ACCT, Order([Line("a", Money(1, "EUR"))]))
    (event,) = store.query(ep.Region.all())
    assert event.decode(Order).lines == [Line("a", Money(1, "EUR"))]


def test_decode_refuses_an_undeclared_class(store: ep.Store) -> None:
    store.append(ACCT, "deposit", {"amount": 5})
    (event,) = store.query(ep.Region.all())
    with pytest.raises(TypeError, match=r"Undeclared is not declared with @ep\.event_type"):
        event.decode(Undeclared)
    with pytest.raises(TypeError, match="int is not declared"):
        event.decode(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ({"amount": 5}, "missing 1 required positional argument: 'currency'"),
        ({"amount": 5, "currency": "EUR", "fee": 0}, "unexpected keyword argument 'fee'"),
        ([5, "EUR"], "a dict is needed to build DepositV1, not list"),
    ],
)
def test_decode_says_when_the_payload_does_not_fit(store: ep.Store, payload: Any, says: str) -> None:
    store.append(ACCT, "deposit", payload, payload_version=1)
    (event,) = store.query(ep.Region.all())
    with pytest.raises(
        TypeError, match=r"the payload of event 0 \(kind 'deposit'\) does not fit DepositV1"
    ) as bad:
        event.decode(DepositV1)
    assert isinstance(bad.value.__cause__, TypeError) and says in str(bad.value.__cause__)


def test_decode_reads_the_upcast_payload(open_store: Any) -> None:
    def to_v2(payload: dict[str, Any]) -> dict[str, Any]:
        return {"amount": {"cents": payload["amount"] * 100, "currency": payload["currency"]}}

    store = open_store(upcasters=ep.Upcasters().add("deposit", 1, to_v2))
    store.append_typed(ACCT, DepositV1(5, "EUR"))
    (event,) = store.query(ep.Region.all())
    assert event.stored_payload_version == 1
    assert event.decode(Deposit) == Deposit(Money(500, "EUR"))
    with pytest.raises(TypeError, match=r"declared for payload version 1, but .* reads as version 2"):
        event.decode(DepositV1)


def test_decode_raises_a_failed_upcast(open_store: Any) -> None:
    def broken(payload: Any) -> Any:
        raise LookupError("rate")

    store = open_store(upcasters=ep.Upcasters().add("deposit", 1, broken))
    store.append_typed(ACCT, DepositV1(5, "EUR"))
    (event,) = store.query(ep.Region.all())
    with pytest.raises(ep.UpcastFailed) as failed:
        event.decode(Deposit)
    assert (failed.value.kind, failed.value.version) == ("deposit", 1)
    assert isinstance(failed.value.__cause__, LookupError)
