"""Strict payload decoding: the bytes must hold exactly one msgpack value, and every msgpack
``str`` must be UTF-8. Trailing bytes, or a ``str`` that is not UTF-8 (which a lenient decoder
hands back as ``bytes``, a different type), raise ``ep.PayloadNotDecodable`` (a ``ValueError``)
instead of decoding to something the writer never wrote."""

from __future__ import annotations

import datetime as dt
import math
import struct
from typing import Any

import eventpak as ep
import msgpack
import pytest
from eventpak import _native
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

encode = _native.encode_payload
decode = _native.decode_payload


def refused(data: bytes) -> ep.PayloadNotDecodable:
    with pytest.raises(ep.PayloadNotDecodable) as info:
        decode(data)
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, ep.EventpakError)
    assert str(err) == f"payload is not valid msgpack: {err.reason}"
    return err


def str8(raw: bytes) -> bytes:
    """A msgpack str8 holding ``raw`` as it is, valid UTF-8 or not."""
    return b"\xd9" + bytes([len(raw)]) + raw


# --- trailing bytes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [None, 0, "text", b"bin", [1, 2], {"amount": 1}, dt.datetime(2024, 1, 1, tzinfo=dt.UTC)]
)
@pytest.mark.parametrize("suffix", [b"\x00", b"\xc0", b"\x01\x02\x03", b"\x81\xa1k\x01"])
def test_trailing_bytes_after_a_value_are_refused(value: Any, suffix: bytes) -> None:
    data = encode(value)
    err = refused(data + suffix)
    assert err.reason == f"{len(suffix)} trailing bytes after the value, from byte {len(data)}"


def test_two_concatenated_payloads_are_not_read_as_the_first() -> None:
    refused(encode({"a": 1}) + encode({"b": 2}))


# --- str that is not UTF-8 ---------------------------------------------------------------------

NOT_UTF8 = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"ok\x80", b"\xf8\x88\x80\x80\x80"]


@pytest.mark.parametrize("raw", NOT_UTF8, ids=["ff", "cut-2-byte", "surrogate", "after-ascii", "5-byte"])
def test_a_str_that_is_not_utf8_is_refused_not_returned_as_bytes(raw: bytes) -> None:
    fixstr = bytes([0xA0 | len(raw)]) + raw
    for data in (fixstr, str8(raw)):
        assert "is not valid UTF-8" in refused(data).reason
    # The same bytes as msgpack bin are bytes, as they always were.
    assert decode(b"\xc4" + bytes([len(raw)]) + raw) == raw


def test_a_long_str_that_is_not_utf8_is_refused() -> None:
    raw = "é".encode() * 40_000 + b"\xff"
    data = b"\xdb" + struct.pack(">I", len(raw)) + raw  # str32
    err = refused(data)
    assert err.reason == f"the str at byte 5 is not valid UTF-8 (byte {5 + len(raw) - 1})"


@pytest.mark.parametrize(
    "key", [b"\xff", b"k\xfe", b"long key " * 5 + b"\x80"], ids=["short", "cached", "long"]
)
def test_a_map_key_that_is_not_utf8_is_refused(key: bytes) -> None:
    valid = key.decode("utf-8", "replace").replace("\ufffd", "")
    assert decode(encode({valid: 1})) == {valid: 1}  # puts the valid neighbour in the key cache
    data = b"\x81" + str8(key) + b"\x01"
    assert "is not valid UTF-8" in refused(data).reason
    assert decode(encode({valid: 1})) == {valid: 1}  # the refusal left the cache as it was


def test_a_bad_str_deep_inside_a_payload_is_refused_with_its_position() -> None:
    good = encode({"outer": [1, {"inner": ["fine", "BAD!"]}]})
    at = good.index(b"\xa4BAD!")
    bad = good.replace(b"BAD!", b"BA\xff!")
    err = refused(bad)
    assert err.reason == f"the str at byte {at + 1} is not valid UTF-8 (byte {at + 3})"


def test_the_reference_library_refuses_the_same_bytes() -> None:
    for data in (str8(b"\xff"), encode([1]) + b"\x00"):
        with pytest.raises((UnicodeDecodeError, ValueError)):
            msgpack.unpackb(data, raw=False)


# --- other malformed input, and what still decodes ---------------------------------------------


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "cut short: 1 bytes needed at byte 0, 0 left"),
        (b"\x92\x01", "cut short: 2 values claimed at byte 1, 1 bytes left"),
        (b"\x92\x01\xcd\x01", "cut short: 2 bytes needed at byte 3, 1 left"),
        (b"\xcd\x01", "cut short: 2 bytes needed at byte 1, 1 left"),
        (b"\xdd\xff\xff\xff\xff\xc0", "cut short: 4294967295 values claimed at byte 5, 1 bytes left"),
        (b"\xc1", "the reserved marker 0xc1 at byte 0"),
        (b"\x81\xc0\x01", "a dict key that is not a str, an int or bytes at byte 1"),
        (b"\x91" * 1025 + b"\xc0", "nesting deeper than 1024 levels at byte 1024"),
    ],
    ids=["empty", "cut-array", "cut-item", "cut-int", "forged-length", "reserved", "nil-key", "too-deep"],
)
def test_malformed_bytes_say_what_and_where(data: bytes, says: str) -> None:
    assert refused(data).reason == says


def test_valid_payloads_decode_as_before() -> None:
    value = {
        "none": None,
        "bools": [True, False],
        "ints": [0, 127, 128, -32, -33, 2**63 - 1, -(2**63), 2**64 - 1],
        "float": 1.5,
        "text": "h\u00e9llo \u20ac \U0001f600",
        "bytes": b"\x00\xff\xc3",
        "nested": {"a": [{"b": []}], "": {}},
        "at": dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC),
    }
    assert decode(encode(value)) == value
    assert decode(msgpack.packb(value, use_bin_type=True, datetime=True)) == value
    # Integer and bytes keys, float32, and every int width, as another writer may write them.
    assert decode(b"\x82\x01\xa1a\xc4\x01k\xa1b") == {1: "a", b"k": "b"}
    assert decode(b"\xca" + struct.pack(">f", 0.5)) == 0.5
    assert decode(b"\x94\xd0\x80\xd1\x80\x00\xd2\x80\x00\x00\x00\xce\xff\xff\xff\xff") == [
        -128,
        -32768,
        -(2**31),
        2**32 - 1,
    ]


def test_a_stored_payload_reads_back_the_same(store: ep.Store) -> None:
    payload = {"amount": 10, "note": "caf\u00e9", "raw": b"\xff"}
    store.append(("acct:1", "eu"), "deposit", payload)
    (event,) = store.query(ep.Region.all())
    assert event.payload == payload and decode(event.payload_bytes) == payload


# --- properties --------------------------------------------------------------------------------

leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.binary(max_size=40)
    | st.datetimes(timezones=st.just(dt.UTC))
)
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)
PROPERTY = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(values, st.binary(min_size=1, max_size=8))
def test_every_encodable_value_round_trips_and_nothing_may_follow_it(value: Any, suffix: bytes) -> None:
    data = encode(value)
    assert decode(data) == value
    assert encode(decode(data)) == data
    refused(data + suffix)


@PROPERTY
@given(st.text(min_size=1, max_size=20), st.integers(min_value=0, max_value=19), st.sampled_from(NOT_UTF8))
def test_spoiling_any_str_of_a_payload_is_refused(text: str, at: int, spoiler: bytes) -> None:
    raw = text.encode()
    cut = at % (len(raw) + 1)
    spoiled = raw[:cut] + spoiler + raw[cut:]
    assert decode(b"\x81\xa1k\x91" + str8(raw)) == {"k": [text]}
    for data in (b"\x81\xa1k\x91" + str8(spoiled), b"\x81" + str8(spoiled) + b"\xc0"):  # as a value, as a key
        refused(data)


@PROPERTY
@given(st.binary(max_size=48))
def test_what_decodes_is_what_the_reference_library_reads(data: bytes) -> None:
    try:
        value = decode(data)
    except ep.PayloadNotDecodable:
        return
    reference = msgpack.unpackb(data, raw=False, strict_map_key=False, timestamp=3)
    assert same(value, reference)


def same(a: Any, b: Any) -> bool:
    """Equality that tells bool from int and sees NaN as equal to NaN."""
    if isinstance(b, tuple):
        b = list(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@pytest.mark.parametrize("data", ["\x90", bytearray(b"\x90"), memoryview(b"\x90"), None, 144])
def test_decode_takes_bytes_only(data: Any) -> None:
    with pytest.raises(TypeError, match=rf"argument must be bytes, not {type(data).__name__}$"):
        decode(data)


def test_decode_takes_exactly_one_positional_argument() -> None:
    import inspect

    assert str(inspect.signature(decode)) == "(data, /)"
    assert decode.__module__ == "eventpak._native" and "PayloadNotDecodable" in (decode.__doc__ or "")
    with pytest.raises(TypeError):
        decode()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        decode(b"\x90", b"\x90")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        decode(data=b"\x90")  # type: ignore[call-arg]
    assert decode(b"\x90") == []
