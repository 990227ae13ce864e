"""The gate pipeline: appends what every gate lets through, records denials, and audits
bypasses (see :mod:`eventpak.gates` for gates and an example)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, Unpack, final

from ._native import AppendReceipt, AppendRequest, NativeStore, PriorItem, decode_payload, encode_payload
from .errors import Denial, InvalidArgument, InvalidKind, PayloadNotSerializable
from .gates import Gate, GateSet, Proposal
from .options import COMMIT_OPTIONS, AppendOptions, BatchItem, CoordinateLike
from .store import Store

__all__ = ["BYPASS_KIND", "DENIAL_KIND", "Pipeline", "record_denial"]

DENIAL_KIND = "eventpak.denial"
"""The reserved kind of a recorded denial."""
BYPASS_KIND = "eventpak.bypass"
"""The reserved kind of a bypass audit event."""

_RESERVED_PREFIX = "eventpak."
# Every append option, as the store names them: read from AppendRequest items for gating.
_OPTION_NAMES = tuple(AppendOptions.__annotations__)
_REQUEST_FORM = "ep.AppendRequest(coord, kind, payload, ...)"


@final
class Pipeline:
    """Appends to ``store`` only what every gate lets through. A denied proposal writes
    nothing of its own; with ``record_denials`` its denial is recorded as an
    ``eventpak.denial`` event on the proposal's coordinate, then raised."""

    __slots__ = ("_gates", "_record_denials", "_store")

    def __init__(self, store: Store, gates: GateSet | Iterable[Gate], record_denials: bool = True) -> None:
        if not isinstance(store, Store):
            raise TypeError(f"store must be an ep.Store, not {type(store).__name__}")
        self._store = store
        self._gates = gates if isinstance(gates, GateSet) else GateSet(gates)
        self._record_denials = bool(record_denials)

    @property
    def store(self) -> Store:
        """The store appended to."""
        return self._store

    @property
    def gates(self) -> GateSet:
        """The gates every append passes."""
        return self._gates

    @property
    def record_denials(self) -> bool:
        """Whether denials are recorded as ``eventpak.denial`` events."""
        return self._record_denials

    def append(
        self, ctx: Any, coord: CoordinateLike, kind: str, payload: Any, **options: Unpack[AppendOptions]
    ) -> AppendReceipt:
        """Gates the proposal, then appends it as ``Store.append`` does (same options)."""
        proposal = Proposal(coord, kind, payload, **options)
        self._gate(ctx, proposal)
        return self._store.append(proposal.coord, proposal.kind, proposal.payload, **proposal.options)

    def append_batch(self, ctx: Any, items: Iterable[BatchItem]) -> list[AppendReceipt]:
        """Gates every item (items as ``Store.append_batch`` takes them), then appends them
        atomically. The first denial stops it all: nothing of the batch is written, and only
        that denial is recorded."""
        items = list(items)
        for item in items:
            self._gate(ctx, _proposal_of(item))
        return self._store.append_batch(items)

    def bypass(
        self, coord: CoordinateLike, kind: str, payload: Any, *, reason: str, **options: Unpack[AppendOptions]
    ) -> AppendReceipt:
        """Appends without asking the gates, in one atomic batch with an ``eventpak.bypass``
        audit event after it (``reason``, the bypassed gates' names, the kind); returns the
        event's receipt. A retry with the same ``idempotency_key`` returns it again."""
        if not isinstance(reason, str):
            raise TypeError(f"reason must be a str, not {type(reason).__name__}")
        if not reason.strip():
            raise InvalidArgument("reason", "a bypass needs a reason: say who allowed it and why")
        proposal = Proposal(coord, kind, payload, **options)
        if kind.startswith(_RESERVED_PREFIX):
            raise InvalidKind(f"kind {kind!r} uses the reserved prefix {_RESERVED_PREFIX!r}")
        audit = {"reason": reason, "bypassed_gates": list(self._gates.names), "proposed_kind": kind}
        key, correlation = proposal.options.get("idempotency_key"), proposal.options.get("correlation_id")
        audit_request = AppendRequest(
            proposal.coord, BYPASS_KIND, audit, idempotency_key=_audit_key(key), correlation_id=correlation
        )
        # A condition and a tracking record belong to the commit, not to one event of it.
        item_options = {k: v for k, v in proposal.options.items() if k not in COMMIT_OPTIONS}
        guards = {k: v for k, v in proposal.options.items() if k in COMMIT_OPTIONS}
        event = AppendRequest(proposal.coord, kind, payload, **item_options)
        return self._store._native._append_reserved_batch([event, audit_request], **guards)[0]

    def _gate(self, ctx: Any, proposal: Proposal) -> None:
        try:
            self._gates.evaluate(ctx, proposal)
        except Denial as denial:
            # Recorded while the denial is being handled: should recording fail, its error
            # names the denial as its context instead of hiding it.
            if self._record_denials:
                self._store.append_denial(denial, proposal)
            raise


def _proposal_of(item: BatchItem) -> Proposal:
    if isinstance(item, AppendRequest):
        options = {name: getattr(item, name, None) for name in _OPTION_NAMES}
        return Proposal(item.coord, item.kind, item.payload, **options)
    if isinstance(item, tuple) and len(item) == 3:
        return Proposal(*item)
    shown = type(item).__name__
    if isinstance(item, tuple):  # options are not tuple fields: say where they go
        shown = f"a tuple of {len(item)} (options such as tags go in {_REQUEST_FORM})"
    raise TypeError(f"batch items must be ep.AppendRequest or (coord, kind, payload) tuples, not {shown}")


def _audit_key(key: Any) -> Any:
    """The audit event's idempotency key, derived from the event's: a batch is keyed
    entirely or not at all, and a retried bypass must find both events again. (A key that
    is no str or bytes is passed on for the store to refuse.)"""
    if not isinstance(key, str | bytes):
        return key
    raw = key.encode("utf-8", "surrogatepass") if isinstance(key, str) else key
    return b"eventpak.bypass:" + hashlib.blake2b(raw, digest_size=16).hexdigest().encode()


def record_denial(native: NativeStore, denial: Denial, proposal: Proposal) -> AppendReceipt:
    """Appends ``denial`` of ``proposal`` as an ``eventpak.denial`` event on its coordinate
    (what ``Store.append_denial`` does)."""
    if not isinstance(denial, Denial):
        raise TypeError(f"denial must be an ep.Denial, not {type(denial).__name__}")
    if not isinstance(proposal, Proposal):
        raise TypeError(f"proposal must be an ep.Proposal, not {type(proposal).__name__}")
    payload = {
        "gate": denial.gate,
        "code": denial.code,
        "message": denial.message,
        "context": denial.context,
        "proposed_kind": proposal.kind,
    }
    # The denial joins the proposal's causal trace (given as `caused_by` or as ids); it takes
    # no idempotency key, since every refused attempt is a denial of its own. A cause that is
    # another item of the refused batch was never written: the denial has no cause then.
    trace = {
        name: value
        for name in ("causation_id", "caused_by", "correlation_id")
        if not isinstance(value := proposal.options.get(name), PriorItem)
    }

    def append(payload: dict[str, Any]) -> AppendReceipt:
        request = AppendRequest(proposal.coord, DENIAL_KIND, payload, **trace)
        return native._append_reserved_batch([request])[0]

    try:
        return append(payload)
    except PayloadNotSerializable:
        # Encoding failed before anything was written: the context holds values msgpack cannot
        # carry (after the store's default=). A denial is always recorded, so those parts are
        # recorded by their repr; the raised Denial keeps the original context.
        return append(payload | {"context": _recordable(denial.context)})


def _recordable(value: Any) -> Any:
    """``value`` with every part msgpack cannot carry replaced by its ``repr`` (the whole of
    it when its shape is the problem, such as a dict key that is not a str)."""
    try:
        return decode_payload(encode_payload(value, default=repr))
    except PayloadNotSerializable:
        return repr(value)
