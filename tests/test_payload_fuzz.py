"""Fuzzing the payload codec (msgpack, in Rust): arbitrary bytes into ``decode_payload`` either
raise ``ValueError`` or return a plain value, never crash, hang or allocate from a forged
length; every payload value round-trips; and whatever the codec accepts, the reference
``msgpack`` library reads as the same value.

``EVENTPAK_EXTENDED=1`` multiplies the number of examples by 10.
"""

from __future__ import annotations

import datetime
import math
import os
import struct
from typing import Any

import eventpak as ep
import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from payload_values import normalized, same

EXTENDED = os.environ.get("EVENTPAK_EXTENDED", "") not in ("", "0")
encode = ep._native.encode_payload
decode = ep._native.decode_payload

FUZZ = settings(
    max_examples=20_000 if EXTENDED else 2_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ROUND_TRIP = settings(max_examples=10_000 if EXTENDED else 1_000, deadline=None)


def check_plain(value: Any, depth: int = 0) -> None:
    """What a decoded payload may be made of (dict keys: str, int or bytes)."""
    assert depth <= 1025, "decoded deeper than the decoder's depth limit"
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return
    if isinstance(value, datetime.datetime):  # the msgpack timestamp extension
        assert value.tzinfo is datetime.UTC
        return
    if isinstance(value, list):
        for item in value:
            check_plain(item, depth + 1)
        return
    assert isinstance(value, dict), f"decoded an unexpected type {type(value)!r}"
    for key, item in value.items():
        assert isinstance(key, str | int | bytes), f"unexpected dict key type {type(key)!r}"
        check_plain(item, depth + 1)


def reference_decode(data: bytes) -> tuple[bool, Any]:
    """The reference library's reading of ``data``: ``(accepted, value)``."""
    try:
        return True, msgpack.unpackb(data, raw=False, strict_map_key=False, timestamp=3)
    except Exception:
        return False, None


def decode_or_value_error(data: bytes) -> tuple[bool, Any]:
    try:
        value = decode(data)
    except ep.PayloadNotDecodable:  # a ValueError, and the only error decoding raises
        return False, None
    check_plain(value)
    return True, value


# --- arbitrary bytes ---------------------------------------------------------------------------

# msgpack markers, many with length fields that claim far more than the input holds.
MARKERS = [
    b"\xc0",
    b"\xc2",
    b"\xc3",
    b"\xc1",  # reserved
    b"\x91",
    b"\x9f",
    b"\x81",
    b"\x8f",
    b"\xa3",
    b"\xbf",
    b"\xdc\xff\xff",  # array16
    b"\xdd\xff\xff\xff\xff",  # array32 claiming 4G items
    b"\xdd\x7f\xff\xff\xff",
    b"\xde\xff\xff",  # map16
    b"\xdf\xff\xff\xff\xff",  # map32
    b"\xd9\xff",  # str8
    b"\xda\xff\xff",  # str16
    b"\xdb\xff\xff\xff\xff",  # str32
    b"\xc4\xff",  # bin8
    b"\xc5\xff\xff",
    b"\xc6\xff\xff\xff\xff",  # bin32
    b"\xc7\xff\x01",  # ext8
    b"\xc8\xff\xff\x01",
    b"\xc9\xff\xff\xff\xff\x01",  # ext32
    b"\xd4\x01",
    b"\xd6\xff",  # timestamp 32
    b"\xd7\xff",
    b"\xca",
    b"\xcb",
    b"\xcc",
    b"\xcf",
    b"\xd3",
    b"\xe0",
    b"\x7f",
]
msgpack_like = st.lists(st.sampled_from(MARKERS) | st.binary(min_size=1, max_size=6), max_size=24).map(
    b"".join
)


@FUZZ
@given(st.binary(max_size=96))
def test_random_bytes_decode_to_a_plain_value_or_raise_value_error(data: bytes) -> None:
    decode_or_value_error(data)


@FUZZ
@given(msgpack_like)
def test_msgpack_shaped_garbage_decodes_or_raises_value_error(data: bytes) -> None:
    accepted, value = decode_or_value_error(data)
    # Both refuse trailing bytes and a str that is not UTF-8, so whatever this codec accepts,
    # the reference library reads as the same value.
    ref_ok, ref_value = reference_decode(data)
    if accepted:
        assert ref_ok and same(value, normalized(ref_value))


@pytest.mark.parametrize(
    "data",
    [
        b"\x91" * 100_000 + b"\xc0",  # nested arrays far deeper than any limit
        b"\x81\xa1k" * 50_000 + b"\xc0",  # nested maps
        b"\xdd\xff\xff\xff\xff" * 3,
        b"\xdf\xff\xff\xff\xff\xa1k",
        b"\xdb\xff\xff\xff\xffabc",
        b"\xc6\xff\xff\xff\xffabc",
        b"\xc9\xff\xff\xff\xff\x01",
        b"",
    ],
    ids=["deep-arrays", "deep-maps", "array32", "map32", "str32", "bin32", "ext32", "empty"],
)
def test_hostile_payloads_raise_value_error(data: bytes) -> None:
    with pytest.raises(ep.PayloadNotDecodable, match="not valid msgpack"):
        decode(data)


def test_nesting_up_to_the_depth_limit_decodes() -> None:
    value = decode(b"\x91" * 1000 + b"\xc0")
    for _ in range(1000):
        assert isinstance(value, list) and len(value) == 1
        value = value[0]
    assert value is None


# --- values ------------------------------------------------------------------------------------

keys = st.text(max_size=6)
leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.sampled_from([0, -1, 2**63 - 1, -(2**63), 2**64 - 1, 2**32, -(2**31) - 1, 127, 128, -32, -33])
    | st.floats()
    | st.text(max_size=12)
    | st.binary(max_size=12)
)
values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.tuples(inner, inner) | st.dictionaries(keys, inner, max_size=4)
    ),
    max_leaves=20,
)


@ROUND_TRIP
@given(values)
def test_every_payload_value_round_trips(value: Any) -> None:
    data = encode(value)
    back = decode(data)
    assert same(back, normalized(value))
    # The encoding is canonical, and the reference library reads it the same way.
    assert encode(back) == data
    assert same(normalized(msgpack.unpackb(data, raw=False, strict_map_key=False)), normalized(value))
    # And this codec reads what the reference library writes.
    assert same(decode(msgpack.packb(value, use_bin_type=True)), normalized(value))


def _nested(depth: int) -> Any:
    value: Any = None
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "value",
    [
        2**64,
        -(2**63) - 1,
        {1: "int key"},
        {"set": {1, 2}},
        object(),
        bytearray(b"x"),
        _nested(100_000),
        [1, 2, complex(1, 2)],
    ],
    ids=["u64-overflow", "i64-underflow", "int-key", "set", "object", "bytearray", "deep", "complex"],
)
def test_unserializable_values_raise_before_anything_is_written(value: Any) -> None:
    with pytest.raises(ep.PayloadNotSerializable) as info:
        encode(value)
    assert isinstance(info.value, TypeError)


def test_a_self_referencing_payload_is_refused_not_a_crash() -> None:
    loop: list[Any] = []
    loop.append(loop)
    looped: dict[str, Any] = {}
    looped["self"] = looped
    for value in (loop, looped):
        with pytest.raises(ep.PayloadNotSerializable):
            encode(value)


def test_a_stored_payload_is_read_back_through_the_store(tmp_path) -> None:
    weird = {"f": [math.inf, -0.0, float("nan")], "b": b"\x00\xff", "t": (1, "\u20ac"), "n": None}
    with ep.Store.open(tmp_path / "data", sync="never") as store:
        store.append(("acct", "s"), "k", weird)
        (event,) = store.query(ep.Region.all())
        assert same(event.payload, normalized(weird))
        assert event.payload_bytes == encode(weird)
        assert struct.unpack_from(">B", event.payload_bytes)[0] == 0x84  # a fixmap of 4
