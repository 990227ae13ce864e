"""Typed and versioned payloads.

Every event stores a ``payload_version``. :class:`Upcasters` registers, per kind, functions
that take a payload from one version to the next; a store opened with them runs them on
every read, so readers see each payload at the newest version of its kind. An
:func:`event_type` dataclass names a kind and a version: ``store.append_typed(coord, obj)``
appends an instance, ``event.decode(cls)`` builds one from an event.
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
import types
import typing
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from ._native import validate_kind
from .errors import InvalidArgument, InvalidConfig, PayloadNotSerializable

if TYPE_CHECKING:
    from ._native import AppendReceipt, Event, NativeStore

__all__ = ["EventType", "Upcasters", "event_type"]

T = TypeVar("T")
# A step goes from `from_version` to `from_version + 1`, and versions are stored as u32.
_MAX_FROM_VERSION = 2**32 - 2
_SPEC = "__eventpak_type__"
# Weak: a class defined in a function is not kept alive by having been decoded once.
_FIELD_TYPES: weakref.WeakKeyDictionary[type, dict[str, Any]] = weakref.WeakKeyDictionary()


def _version_arg(name: str, value: object, most: int) -> int:
    # `True` is an int to Python, never a version to a user.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= most:
        raise InvalidArgument(name, f"must be in 0..={most}, got {value}")
    return value


class Upcasters:
    """Functions bringing old payloads up to date, registered per kind and version.

    ``Upcasters().add("deposit", 0, fn0).add("deposit", 1, fn1)`` reads a ``deposit`` stored
    at version 0 as ``fn1(fn0(payload))`` at version 2. Give it to ``ep.Store.open(path,
    upcasters=...)`` (or ``StoreConfig``); the store keeps the steps registered at open.
    """

    def __init__(self) -> None:
        self._steps: dict[str, dict[int, Callable[[Any], Any]]] = {}

    def add(self, kind: str, from_version: int, fn: Callable[[Any], Any]) -> Self:
        """Registers ``fn(payload) -> payload`` taking ``kind`` payloads from version
        ``from_version`` to ``from_version + 1``; returns these upcasters (chainable).

        ``fn`` gets a payload decoded for this read alone, so it may change it in place and
        return it. A kind breaking the append naming rules (or reserved) raises
        ``ep.InvalidKind``; a version that is not an int or a non-callable ``fn`` raises
        ``TypeError``; a negative version or a second step from the same version raises
        ``ep.InvalidArgument``. Steps may be added in any order; a store refuses a kind whose
        steps leave a version out (see :meth:`chains`).
        """
        validate_kind(kind)
        _version_arg("from_version", from_version, _MAX_FROM_VERSION)
        if not callable(fn):
            raise TypeError(f"an upcaster must be callable, not {type(fn).__name__}")
        steps = self._steps.setdefault(kind, {})
        if from_version in steps:
            raise InvalidArgument(
                "from_version",
                f"an upcaster of kind {kind!r} from version {from_version} is already registered; "
                "register each step once",
            )
        steps[from_version] = fn
        return self

    def chains(self) -> dict[str, tuple[int, tuple[Callable[[Any], Any], ...]]]:
        """``{kind: (first_version, steps)}``, each kind's steps in version order. A kind whose
        steps leave a version out raises ``ep.InvalidConfig``: a payload below the gap could
        never reach the newest version."""
        chains = {}
        for kind, steps in self._steps.items():
            versions = sorted(steps)
            for low, high in itertools.pairwise(versions):
                if high != low + 1:
                    raise InvalidConfig(
                        f"the upcasters of kind {kind!r} go from version {low + 1} to {high} with no "
                        f"step in between; add the upcaster from version {low + 1}"
                    )
            chains[kind] = (versions[0], tuple(steps[v] for v in versions))
        return chains

    def __repr__(self) -> str:
        kinds = ", ".join(f"{k!r}: {sorted(s)}" for k, s in sorted(self._steps.items()))
        return f"Upcasters({{{kinds}}})"


@dataclasses.dataclass(frozen=True)
class EventType:
    """What :func:`event_type` records on a dataclass (as ``cls.__eventpak_type__``)."""

    kind: str
    version: int


def event_type(kind: str, *, version: int = 0) -> Callable[[type[T]], type[T]]:
    """Declares a dataclass as the payload of ``kind`` at payload ``version``::

        @ep.event_type("deposit", version=2)
        @dataclass
        class Deposit:
            amount: int

    The kind follows the append rules (``ep.InvalidKind``, the ``eventpak.`` prefix is
    reserved); ``version`` is an int from 0 (``TypeError`` or ``ep.InvalidArgument``). Apply
    it above ``@dataclass``: on any other class it raises ``TypeError``.
    """
    validate_kind(kind)
    spec = EventType(kind, _version_arg("version", version, 2**32 - 1))

    def declare(cls: type[T]) -> type[T]:
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise TypeError(f"@ep.event_type applies to a dataclass (put it above @dataclass), not {cls!r}")
        setattr(cls, _SPEC, spec)
        return cls

    return declare


def _spec(cls: object) -> EventType:
    # Looked up in the class itself: a subclass does not inherit its parent's kind.
    if not isinstance(cls, type):
        # An instance where the class belongs (``event.decode(Deposited(5))``) would otherwise
        # be told its class is not declared, which is false when it is.
        if isinstance(vars(type(cls)).get(_SPEC), EventType):
            raise TypeError(f"pass the class {type(cls).__qualname__} itself, not an instance of it")
        raise TypeError(f"{type(cls).__name__} is not declared with @ep.event_type (and a class is needed)")
    spec = vars(cls).get(_SPEC)
    if not isinstance(spec, EventType):
        raise TypeError(f"{cls.__qualname__} is not declared with @ep.event_type(kind, version=...)")
    return spec


def append_typed(native: NativeStore, coord: Any, obj: object, options: Mapping[str, Any]) -> AppendReceipt:
    """See :meth:`Store.append_typed`."""
    if isinstance(obj, type):
        raise TypeError(f"append_typed takes an instance of {obj.__qualname__}, not the class")
    spec = _spec(type(obj))
    if "payload_version" in options:
        raise TypeError("append_typed takes payload_version from the class's @ep.event_type; do not pass it")
    try:
        payload = dataclasses.asdict(obj)  # type: ignore[call-overload]
    except RecursionError:
        # A payload that refers to itself (or nests past the interpreter's limit) is refused
        # the way `append` refuses one nested too deep, before anything is written.
        raise PayloadNotSerializable(
            f"{type(obj).__qualname__} instance refers to itself or nests too deep to be a payload"
        ) from None
    return native.append(coord, spec.kind, payload, payload_version=spec.version, **options)


def decode_event(event: Event, cls: type[T]) -> T:
    """``event.decode(cls)``: ``cls`` built from the event's (upcast) payload.

    Raises ``TypeError`` when ``cls`` is not an ``@ep.event_type`` dataclass, is declared for
    another kind or another payload version than the event reads as, or when the payload's
    keys do not fit its fields; ``ep.UpcastFailed`` when an upcaster raises.
    """
    spec = _spec(cls)
    where = f"event {event.global_sequence} (kind {event.kind!r})"
    if event.kind != spec.kind:
        raise TypeError(f"{cls.__qualname__} is declared for kind {spec.kind!r}, not for {where}")
    if event.payload_version != spec.version:
        # Upcasters only go up: a payload newer than the class needs newer code, not upcasters.
        advice = (
            "this code's class is older than the payload: decode it with the class of that version"
            if event.payload_version > spec.version
            else "register upcasters to its newest version, or decode it with the class of that version"
        )
        raise TypeError(
            f"{cls.__qualname__} is declared for payload version {spec.version}, but {where} reads as "
            f"version {event.payload_version} (stored {event.stored_payload_version}); {advice}"
        )
    try:
        return _build(cls, event.payload)
    except TypeError as exc:
        raise TypeError(f"the payload of {where} does not fit {cls.__qualname__}: {exc}") from exc


def _build(cls: type[T], payload: object) -> T:
    if not isinstance(payload, dict):
        raise TypeError(f"a dict is needed to build {cls.__qualname__}, not {type(payload).__name__}")
    hints = _field_types(cls)
    # Fields left out of __init__ are computed by the class, not read back from the payload.
    init = {f.name for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    args = {k: _convert(hints.get(k), v) for k, v in payload.items() if k in init or k not in hints}
    return cls(**args)


def _field_types(cls: type) -> dict[str, Any]:
    """The resolved type of each field; a field whose annotation cannot be resolved (a name
    local to a function, say) is taken as it comes (no nested dataclass is rebuilt in it).
    Resolved once per class: annotations are evaluated, which is not cheap."""
    found = _FIELD_TYPES.get(cls)
    if found is None:
        fields = dataclasses.fields(cls)
        try:
            hints = typing.get_type_hints(cls)
        except Exception:
            # One annotation that does not resolve (a name imported under TYPE_CHECKING) must
            # not leave every other field unresolved: each is tried on its own.
            hints = {f.name: _resolve_one(cls, f) for f in fields}
        found = _FIELD_TYPES[cls] = {f.name: hints.get(f.name, f.type) for f in fields}
    return found


def _resolve_one(cls: type, field: dataclasses.Field[Any]) -> Any:
    """The resolved annotation of one field of ``cls``, or the annotation as written."""
    if not isinstance(field.type, str):
        return field.type
    module = sys.modules.get(cls.__module__)
    namespace = dict(vars(module)) if module is not None else {}
    namespace.setdefault(cls.__name__, cls)
    try:
        return typing.get_type_hints(_OneField(field.type), namespace, dict(vars(cls)))["value"]
    except Exception:
        return field.type


class _OneField:
    """A holder of one string annotation, for ``typing.get_type_hints`` to resolve."""

    def __init__(self, annotation: str) -> None:
        self.__annotations__ = {"value": annotation}


def _convert(tp: Any, value: Any) -> Any:
    """Rebuilds the nested dataclasses that ``dataclasses.asdict`` turned into dicts, following
    the field's annotation: a dataclass, ``list[X]``, ``tuple[X, ...]``, ``dict[str, X]``,
    and any of them ``| None``. Anything else is passed on as decoded."""
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _build(tp, value) if isinstance(value, dict) else value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list and isinstance(value, list) and args:
        return [_convert(args[0], v) for v in value]
    if origin is tuple and isinstance(value, (list, tuple)):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v) for v in value)
        if len(args) == len(value):
            return tuple(_convert(a, v) for a, v in zip(args, value, strict=True))
        return tuple(value)
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        return {k: _convert(args[1], v) for k, v in value.items()}
    if origin in (typing.Union, types.UnionType) and value is not None:
        # `list[X] | None` is read as `list[X]`; of several members, only a dataclass that is
        # the one dataclass among them can be told from the decoded value.
        present = [a for a in args if a is not type(None)]
        if len(present) == 1:
            return _convert(present[0], value)
        classes = [a for a in present if isinstance(a, type) and dataclasses.is_dataclass(a)]
        if len(classes) == 1:
            return _convert(classes[0], value)
    return value
