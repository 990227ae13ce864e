"""Payload encoding: every value the codec accepts encodes to the bytes msgpack-python writes
(``use_bin_type=True``) and reads back through ``decode_payload``; subclasses of the built-in
types encode as their base type; everything else goes through ``default`` or raises
``ep.PayloadNotSerializable`` with a reason. (Safety under mutation, reference counts and deep
nesting: ``test_payload_encode_safety.py``; datetimes: ``test_payload_types.py``.)"""

from __future__ import annotations

import collections
import datetime as dt
import enum
from typing import Any, NamedTuple

import eventpak as ep
import msgpack
import pytest
from eventpak import _native
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from payload_values import normalized, same

encode = _native.encode_payload
decode = _native.decode_payload


def packb(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


# Lengths on each side of every msgpack form's boundary (fixstr/str8/str16/str32, bin8/16/32),
# and of the KiB from which encode_payload copies strs and bytes straight into its result.
LENGTHS = [0, 1, 15, 16, 31, 32, 33, 255, 256, 257, 1023, 1024, 1025, 65535, 65536, 65537]


def text_of(n_bytes: int, wide: str, at: int) -> str:
    """A str of exactly ``n_bytes`` UTF-8 bytes: ASCII, with one ``wide`` char when it fits."""
    width = len(wide.encode())
    if n_bytes < width:
        return "a" * n_bytes
    at %= n_bytes - width + 1
    return "a" * at + wide + "a" * (n_bytes - width - at)


sized_texts = st.builds(
    text_of, st.sampled_from(LENGTHS), st.sampled_from(["a", "é", "€", "𝄞"]), st.integers(0, 1 << 20)
)
texts = st.text(st.characters(codec="utf-8"), max_size=40) | sized_texts
# Each side of every integer form's boundary (fixint, uint8..64, negative fixint, int8..64).
INT_EDGES = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1]
INT_EDGES += [-1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**63)]
ints = st.integers(-(2**63), 2**64 - 1) | st.sampled_from(INT_EDGES)
leaves = (
    st.none()
    | st.booleans()
    | ints
    | st.floats()
    | texts
    | st.binary(max_size=40)
    | st.sampled_from(LENGTHS).map(lambda n: bytes(range(256)) * (n // 256) + bytes(n % 256))
)
payloads = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=18) | st.tuples(inner, inner) | st.dictionaries(texts, inner, max_size=18)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads)
def test_every_payload_encodes_as_msgpack_python_writes_it_and_reads_back(value: Any) -> None:
    data = encode(value)
    assert data == packb(value)
    assert same(decode(data), normalized(value))


@pytest.mark.parametrize("n", [0, 15, 16, 65535, 65536], ids=lambda n: f"len-{n}")
def test_container_lengths_take_the_smallest_header(n: int) -> None:
    items = [None] * n
    table = {f"k{i}": i for i in range(n)}
    assert encode(items) == encode(tuple(items)) == packb(items)
    assert encode(table) == packb(table)
    assert decode(encode(table)) == table


def test_store_writes_the_bytes_encode_payload_returns(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # The store encodes into its own buffer; encode_payload copies long strs and bytes
    # straight into its result: both write the same bytes.
    values = [
        {"body": "x" * 5000, "title": "t" * 100, "blob": b"\x01" * 70000, "n": 1},
        ["é" * 600, b"b" * 1024, "a" * 1023, ["z" * 2048, {"k": "€" * 2000}]],
        "s" * 65536,
    ]
    with ep.Store.open(tmp_path / "data", sync="never") as store:
        for value in values:
            receipt = store.append(("e", "s"), "k", value)
            event = store.get(receipt.event_id)
            assert event.payload_bytes == encode(value) == packb(value)
            assert event.payload == normalized(value)


# --- subclasses of the built-in types -----------------------------------------------------------


class Color(enum.IntEnum):
    RED = 1
    HUGE = 2**64


class Side(enum.StrEnum):
    BUY = "buy"


class Money(float):
    pass


class Blob(bytes):
    pass


class Name(str):
    pass


class Items(list):  # type: ignore[type-arg]
    pass


class Pair(tuple):  # type: ignore[type-arg]
    __slots__ = ()


class Point(NamedTuple):
    x: int
    y: int


SUBCLASSES = {
    "int-enum": (Color.RED, 1),
    "str-enum": (Side.BUY, "buy"),
    "float": (Money(2.5), 2.5),
    "bytes": (Blob(b"\x00\xff"), b"\x00\xff"),
    "str": (Name("é" * 40), "é" * 40),
    "long-str": (Name("x" * 3000), "x" * 3000),
    "list": (Items([1, Name("a")]), [1, "a"]),
    "tuple": (Pair((1, 2)), [1, 2]),
    "namedtuple": (Point(1, -2), [1, -2]),
    "ordered-dict": (collections.OrderedDict(b=1, a=2), {"b": 1, "a": 2}),
    "default-dict": (collections.defaultdict(list, k=[1]), {"k": [1]}),
    "str-enum-key": ({Side.BUY: 1}, {"buy": 1}),
    "nested": ({"c": [Color.RED, Side.BUY, Point(3, 4)]}, {"c": [1, "buy", [3, 4]]}),
}


@pytest.mark.parametrize(("value", "base"), SUBCLASSES.values(), ids=SUBCLASSES.keys())
def test_a_subclass_encodes_as_its_base_type(value: Any, base: Any) -> None:
    assert encode(value) == packb(base)
    assert decode(encode(value)) == base


def test_a_dict_subclass_encodes_as_its_items_show_it() -> None:
    # Its storage need not be what it shows: an OrderedDict moved with move_to_end keeps its
    # dict order underneath, a multi-value mapping stores lists. As msgpack and json do,
    # the encoder writes what items() gives.
    moved = collections.OrderedDict(first=1, second=2)
    moved.move_to_end("first")
    assert encode(moved) == packb({"second": 2, "first": 1})

    class FirstValue(dict):  # stores lists, shows one value per key (werkzeug's MultiDict)
        def items(self):  # type: ignore[override]
            return [(key, values[0]) for key, values in super().items()]

    assert decode(encode({"form": FirstValue(a=["1", "2"])})) == {"form": {"a": "1"}}


def test_a_dict_subclass_whose_items_are_not_pairs_is_refused() -> None:
    class Odd(dict):
        def items(self):  # type: ignore[override]
            return ["not a pair"]

    with pytest.raises(ep.PayloadNotSerializable, match=r"Odd.items\(\) gave str, not a \(key, value\) pair"):
        encode(Odd(a=1))


def test_a_datetime_subclass_is_stored_as_its_instant_whatever_its_subtraction_says() -> None:
    class Skewed(dt.datetime):
        def __sub__(self, other):  # type: ignore[override]
            return dt.timedelta(days=2**20)

    when = Skewed(2020, 1, 1, tzinfo=dt.UTC)
    assert decode(encode(when)) == dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def test_an_int_subclass_beyond_64_bits_goes_to_default() -> None:
    with pytest.raises(ep.PayloadNotSerializable, match="outside the 64-bit range"):
        encode(Color.HUGE)
    seen: list[Any] = []
    assert decode(encode([Color.HUGE], default=lambda v: seen.append(v) or "huge")) == ["huge"]
    assert seen == [Color.HUGE]


# --- refusals --------------------------------------------------------------------------------------


class Opaque:
    pass


def refusal(value: Any, **options: Any) -> ep.PayloadNotSerializable:
    """The error encoding ``value`` raises; its ``reason`` is its message."""
    with pytest.raises(ep.PayloadNotSerializable) as info:
        encode(value, **options)
    assert isinstance(info.value, TypeError)
    assert str(info.value) == info.value.reason
    assert info.value.reason.startswith("payload is not serializable: ")
    return info.value


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (Opaque(), "Opaque is not msgpack-serializable"),
        ([1, {"a": {1, 2}}], "set is not msgpack-serializable"),
        (bytearray(b"x"), "bytearray is not msgpack-serializable"),
        (memoryview(b"x"), "memoryview is not msgpack-serializable"),
        (2**64, "int outside the 64-bit range msgpack can hold"),
        (-(2**63) - 1, "int outside the 64-bit range msgpack can hold"),
        ({"k": [2**70]}, "int outside the 64-bit range msgpack can hold"),
        ({1: "a"}, "dict key 1 is not a str"),
        ({"ok": {None: 1}}, "dict key None is not a str"),
        ({b"k": 1}, "dict key b'k' is not a str"),
        ("bad \ud800", "surrogates not allowed"),
        ({"\udc80": 1}, "surrogates not allowed"),
        (["x" * 5000 + "\ud800"], "surrogates not allowed"),
    ],
    ids=[
        "object",
        "nested-set",
        "bytearray",
        "memoryview",
        "u64-overflow",
        "i64-underflow",
        "nested-big-int",
        "int-key",
        "none-key",
        "bytes-key",
        "lone-surrogate",
        "surrogate-key",
        "long-surrogate",
    ],
)
def test_values_msgpack_cannot_carry_are_refused_with_the_reason(value: Any, says: str) -> None:
    assert says in refusal(value).reason


def test_keys_are_refused_even_with_a_default_which_is_never_called_for_them() -> None:
    seen: list[Any] = []
    assert "dict key 1 is not a str" in refusal({1: "a"}, default=lambda v: seen.append(v) or str(v)).reason
    assert "surrogates not allowed" in refusal({"\ud800": 1}, default=lambda v: seen.append(v) or "").reason
    assert seen == []


def test_default_converts_ints_beyond_64_bits_and_other_refused_types() -> None:
    def default(value: Any) -> Any:
        return str(value) if isinstance(value, int) else sorted(value)

    value = {"big": 2**64, "small": -(2**63) - 1, "set": {2, 1}, "edge": [2**64 - 1, -(2**63)]}
    expected = {"big": str(2**64), "small": str(-(2**63) - 1), "set": [1, 2], "edge": [2**64 - 1, -(2**63)]}
    assert encode(value, default=default) == packb(expected)


def test_each_default_call_is_a_level_and_the_limit_is_256() -> None:
    calls = 0

    def deeper(value: Any) -> Any:
        nonlocal calls
        calls += 1
        return Opaque()

    assert "payload nests deeper than 256 levels" in refusal(Opaque(), default=deeper).reason
    assert calls == 257  # levels 0 to 256 are called on; the 257th result is one level too deep
    # 255 conversions inside 1 list: the last result is at level 256, the deepest allowed.
    count = iter(range(255))
    assert decode(encode([Opaque()], default=lambda v: Opaque() if next(count) < 254 else 7)) == [7]


def nested(depth: int, inner: Any = None) -> Any:
    for _ in range(depth):
        inner = [inner]
    return inner


def test_nesting_is_limited_to_256_levels() -> None:
    assert encode(nested(256)) == packb(nested(256))  # None at level 256
    assert encode(nested(256, [])) == packb(nested(256, []))  # an empty list at level 256
    assert encode(nested(255, {"k": 1})) == packb(nested(255, {"k": 1}))  # 1 at level 256
    assert "deeper than 256 levels" in refusal(nested(257)).reason
    assert "deeper than 256 levels" in refusal(nested(256, {"k": 1})).reason
    assert "deeper than 256 levels" in refusal(nested(256, (1,))).reason


def test_a_default_that_returns_its_argument_is_stopped() -> None:
    reason = refusal([Opaque()], default=lambda v: v).reason
    assert reason == "payload is not serializable: default() returned the Opaque it was given"


def test_default_exceptions_are_the_cause_or_pass_through() -> None:
    def refuse(value: Any) -> Any:
        raise LookupError(f"no {type(value).__name__}")

    err = refusal({"a": (Opaque(),)}, default=refuse)
    assert err.reason == "payload is not serializable: default() raised on a Opaque: LookupError: no Opaque"
    assert isinstance(err.__cause__, LookupError)
    stop = SystemExit(3)

    def exit_now(value: Any) -> Any:
        raise stop

    with pytest.raises(SystemExit) as exited:
        encode([1, Opaque()], default=exit_now)
    assert exited.value is stop
    with pytest.raises(ep.PayloadNotSerializable) as inner:
        encode(Opaque(), default=lambda v: encode([v]))
    assert inner.value.__cause__ is None
    assert inner.value.reason == "payload is not serializable: Opaque is not msgpack-serializable"


def test_default_may_encode_payloads_itself() -> None:
    def default(value: Any) -> Any:
        return encode({"inner": "x" * 3000, "n": [1, 2]})

    value = ["y" * 2000, Opaque(), "z" * 4000]
    assert encode(value, default=default) == packb(
        ["y" * 2000, packb({"inner": "x" * 3000, "n": [1, 2]}), "z" * 4000]
    )


def test_an_encoding_after_a_refusal_starts_clean() -> None:
    for bad in (["x" * 3000, Opaque()], {"a": "y" * 2000, "b": {1: 2}}):
        refusal(bad)
        assert encode(["ok", "x" * 3000]) == packb(["ok", "x" * 3000])
