"""Caller-defined gates: checks that run before an append and may refuse it.

A gate is any object with a ``name`` and a ``check(ctx, proposal)`` method that raises
:class:`~eventpak.Denial` to refuse the :class:`Proposal`. A :class:`GateSet` runs gates in
order; a :class:`Pipeline` runs them before every append, records each refusal as an
``eventpak.denial`` event on the proposal's coordinate, and raises the denial. A bypass
appends without asking the gates, beside an ``eventpak.bypass`` audit event::

    import eventpak as ep

    class KnownUser:
        name = "known_user"

        def check(self, ctx: dict, proposal: ep.Proposal) -> None:
            if ctx.get("user") is None:
                raise ep.Denial(self.name, "ANONYMOUS", "sign in before moving money")

    class DailyLimit:
        name = "daily_limit"

        def __init__(self, limit: int) -> None:
            self.limit = limit

        def check(self, ctx: dict, proposal: ep.Proposal) -> None:
            amount = proposal.payload["amount"]
            if proposal.kind == "withdrawal" and amount > self.limit:
                raise ep.Denial(
                    self.name, "OVER_LIMIT", f"withdrawals are limited to {self.limit} a day",
                    {"amount": amount, "limit": self.limit},
                )

    with ep.Store.open("bank-data") as store:
        bank = ep.Pipeline(store, ep.GateSet([KnownUser(), DailyLimit(500)]))
        account = ep.Coordinate("acct:7", "eu")
        bank.append({"user": "ana"}, account, "withdrawal", {"amount": 80})
        try:
            bank.append({"user": "ana"}, account, "withdrawal", {"amount": 900})
        except ep.Denial as denial:
            print(denial)  # denied by gate 'daily_limit' (OVER_LIMIT): withdrawals are ...
        bank.bypass(account, "withdrawal", {"amount": 900}, reason="approved by ops, ticket 4711")
        # The log holds: withdrawal 80, the eventpak.denial, withdrawal 900, its eventpak.bypass.
        for event in store.query(ep.Region.entity("acct:7", exact=True)):
            print(event.kind, event.payload)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Protocol, Unpack, final, runtime_checkable

from ._name_type_errors import InvalidCoordinateType, InvalidKindType
from ._native import Coordinate
from .errors import Denial
from .options import AppendOptions, CoordinateLike

__all__ = ["GATE_DEFECT", "Gate", "GateSet", "Proposal"]

GATE_DEFECT = "GATE_DEFECT"
"""The code of the denial made of a gate that raised something other than a ``Denial``."""


@runtime_checkable
class Gate(Protocol):
    """What a gate is: a ``name`` (which denials and audits report) and a ``check`` that
    returns to let a proposal through and raises :class:`~eventpak.Denial` to refuse it."""

    @property
    def name(self) -> str:
        """The gate's name, reported in its denials and in bypass audits."""
        ...

    def check(self, ctx: Any, proposal: Proposal) -> None:
        """Refuses ``proposal`` by raising ``ep.Denial``; ``ctx`` is whatever the caller
        passed to the pipeline (the user, the request, a clock)."""
        ...


@final
class Proposal:
    """An append that has not happened yet: what gates judge. A value: equal when the
    coordinate, kind, payload and options are; ``options`` is a read-only mapping of the
    append keywords that were given (``idempotency_key``, ``expected_sequence``, ...; a
    ``None`` counts as not given). A pair is made an :class:`~eventpak.Coordinate`, so gates
    can read ``proposal.coord.entity``; everything else is checked by the store at append."""

    __slots__ = ("coord", "kind", "options", "payload")
    coord: Coordinate
    kind: str
    payload: Any
    options: Mapping[str, Any]

    def __init__(
        self, coord: CoordinateLike, kind: str, payload: Any, **options: Unpack[AppendOptions]
    ) -> None:
        if not isinstance(kind, str):
            raise InvalidKindType(f"kind must be a str, not {type(kind).__name__}")
        object.__setattr__(self, "coord", _coordinate(coord))
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "payload", payload)
        object.__setattr__(
            self, "options", MappingProxyType({k: v for k, v in options.items() if v is not None})
        )

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a Proposal is immutable; build a new one to change {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Proposal):
            return NotImplemented
        return (self.coord, self.kind, self.payload, dict(self.options)) == (
            other.coord,
            other.kind,
            other.payload,
            dict(other.options),
        )

    def __hash__(self) -> int:  # hashable when the payload and options are
        return hash((self.coord, self.kind, self.payload, tuple(sorted(self.options.items()))))

    def __repr__(self) -> str:
        options = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"Proposal({self.coord!r}, {self.kind!r}, {self.payload!r}{options})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_proposal, (self.coord, self.kind, self.payload, dict(self.options)))


def _proposal(coord: Coordinate, kind: str, payload: Any, options: dict[str, Any]) -> Proposal:
    return Proposal(coord, kind, payload, **options)


def _coordinate(coord: CoordinateLike) -> Coordinate:
    if isinstance(coord, Coordinate):
        return coord
    if not isinstance(coord, str | bytes):
        try:
            entity, scope = coord
        except (TypeError, ValueError):
            pass
        else:
            return Coordinate(entity, scope)
    shown = type(coord).__name__
    raise InvalidCoordinateType(f"coord must be an ep.Coordinate or an (entity, scope) pair, not {shown}")


@final
class GateSet:
    """Gates in the order they run. Anything without a str ``name`` and a callable ``check``
    is refused with ``TypeError`` here, not at the first append."""

    __slots__ = ("_gates", "_names")

    def __init__(self, gates: Iterable[Gate] = ()) -> None:
        self._gates: tuple[Gate, ...] = tuple(gates)
        for i, gate in enumerate(self._gates):
            name = getattr(gate, "name", None)
            if (
                isinstance(gate, type)
                or not isinstance(name, str)
                or not callable(getattr(gate, "check", None))
            ):
                raise TypeError(
                    f"gate {i} ({type(gate).__name__}) is not a gate: a gate has a str `name` and a "
                    "`check(ctx, proposal)` method"
                )
        self._names = tuple(gate.name for gate in self._gates)

    @property
    def names(self) -> tuple[str, ...]:
        """The gates' names, in order."""
        return self._names

    def __iter__(self) -> Iterator[Gate]:
        return iter(self._gates)

    def __len__(self) -> int:
        return len(self._gates)

    def __repr__(self) -> str:
        return f"GateSet({list(self._names)!r})"

    def evaluate(self, ctx: Any, proposal: Proposal) -> None:
        """Runs the gates in order and raises the first denial; the later gates do not run."""
        for gate, name in zip(self._gates, self._names, strict=True):
            denial = _check(gate, name, ctx, proposal)
            if denial is not None:
                raise denial

    def evaluate_all(self, ctx: Any, proposal: Proposal) -> list[Denial]:
        """Runs every gate and returns all their denials, in gate order (empty: allowed)."""
        checked = (
            _check(gate, name, ctx, proposal) for gate, name in zip(self._gates, self._names, strict=True)
        )
        return [denial for denial in checked if denial is not None]


def _check(gate: Gate, name: str, ctx: Any, proposal: Proposal) -> Denial | None:
    """One gate's verdict. A gate that fails in any other way than a Denial refuses too (a
    broken check must not let everything through): code ``GATE_DEFECT``, cause the error."""
    try:
        # Typed as the protocol says, but a gate may wrongly return its Denial: see below.
        returned: object = gate.check(ctx, proposal)  # type: ignore[func-returns-value]
    except Denial as denial:
        return denial
    except Exception as exc:
        error_type = f"{type(exc).__module__}.{type(exc).__qualname__}"
        message = f"gate {name!r} failed: {type(exc).__name__}: {exc}"
        defect = Denial(name, GATE_DEFECT, message, {"error_type": error_type})
        defect.__cause__ = exc
        return defect
    # A Denial returned instead of raised is still a refusal: failing open would be worse.
    return returned if isinstance(returned, Denial) else None
