"""Payload types beyond JSON's: aware datetimes travel as msgpack timestamps (extension type -1),
readable by any msgpack implementation, and values msgpack cannot carry go through a
``default`` callable, as in ``json.dumps(default=)``."""

from __future__ import annotations

import datetime as dt
import struct
from typing import Any

import eventpak as ep
import msgpack
import pytest
from eventpak import _native
from hypothesis import given, settings
from hypothesis import strategies as st

encode = _native.encode_payload
decode = _native.decode_payload

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)

# Each form of the spec: 32-bit seconds; 64-bit (34-bit seconds and nanoseconds);
# 96-bit (signed seconds, before 1970 or from 2514 on).
INSTANTS = {
    "ts32-epoch": (EPOCH, 0xD6),
    "ts32": (dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), 0xD6),
    "ts32-last": (EPOCH + dt.timedelta(seconds=2**32 - 1), 0xD6),
    "ts64-micros": (dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC), 0xD7),
    "ts64-past-2106": (EPOCH + dt.timedelta(seconds=2**32), 0xD7),
    "ts64-last": (EPOCH + dt.timedelta(seconds=2**34 - 1, microseconds=999999), 0xD7),
    "ts96-2514": (EPOCH + dt.timedelta(seconds=2**34), 0xC7),
    "ts96-before-1970": (dt.datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC), 0xC7),
    "ts96-min": (dt.datetime.min.replace(tzinfo=UTC), 0xC7),
    "ts96-max": (dt.datetime.max.replace(tzinfo=UTC), 0xC7),
    "offset": (dt.datetime(2024, 1, 1, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))), 0xD6),
    "negative-offset": (
        dt.datetime(2024, 1, 1, 1, 30, 0, 7, tzinfo=dt.timezone(dt.timedelta(hours=-8))),
        0xD7,
    ),
}


@pytest.mark.parametrize(("when", "marker"), INSTANTS.values(), ids=INSTANTS.keys())
def test_an_aware_datetime_is_a_msgpack_timestamp(when: dt.datetime, marker: int) -> None:
    data = encode(when)
    assert data[0] == marker  # fixext 4, fixext 8, or ext 8 of 12 bytes
    assert struct.unpack_from(">b", data, 2 if marker == 0xC7 else 1)[0] == -1  # the timestamp type
    # Byte for byte what msgpack-python writes, and read back by it as the same instant.
    assert data == msgpack.packb(when, datetime=True)
    assert msgpack.unpackb(data, timestamp=3) == when
    back = decode(data)
    assert back == when and back.tzinfo is UTC
    assert back.utcoffset() == dt.timedelta(0)


OFFSETS = st.builds(
    dt.timezone,
    st.timedeltas(
        min_value=dt.timedelta(hours=-23, minutes=-59), max_value=dt.timedelta(hours=23, minutes=59)
    ),
)


@settings(max_examples=500, deadline=None)
@given(st.datetimes(min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 12, 31), timezones=OFFSETS))
def test_any_aware_datetime_round_trips_as_msgpack_python_writes_it(when: dt.datetime) -> None:
    data = encode({"at": when})
    assert data == msgpack.packb({"at": when}, datetime=True)
    back = decode(data)["at"]
    assert back == when and back.tzinfo is UTC and back == msgpack.unpackb(data, timestamp=3)["at"]


def test_timestamps_written_elsewhere_decode_as_datetimes() -> None:
    when = dt.datetime(2031, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)
    assert decode(msgpack.packb({"at": [when]}, datetime=True)) == {"at": [when]}
    for seconds, nanos in [(0, 0), (1, 999_999_999), (2**34 - 1, 1), (-1, 1_500), (-(2**35), 0)]:
        data = msgpack.packb(msgpack.Timestamp(seconds, nanos))
        expected = EPOCH + dt.timedelta(seconds=seconds, microseconds=nanos // 1000)
        assert decode(data) == expected, (seconds, nanos)  # nanoseconds floor to microseconds


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (msgpack.packb(msgpack.ExtType(5, b"abcd")), "extension type 5 is not supported"),
        (b"\xc7\x03\xffabc", "4, 8 or 12 bytes"),
        (b"\xd7\xff" + struct.pack(">Q", (1_000_000_000 << 34) | 1), "nanoseconds"),
        (b"\xc7\x0c\xff" + struct.pack(">Iq", 0, 2**62), "out of range"),
    ],
    ids=["other-extension", "bad-length", "bad-nanoseconds", "past-year-9999"],
)
def test_extensions_that_are_not_datetimes_are_refused_on_decode(data: bytes, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        decode(data)


def test_a_naive_datetime_is_refused_like_an_unknown_type(store: ep.Store) -> None:
    naive = dt.datetime(2024, 1, 1)
    with pytest.raises(ep.PayloadNotSerializable, match="naive datetime") as info:
        store.append(("e", "s"), "k", {"at": naive})
    assert isinstance(info.value, TypeError)
    with pytest.raises(ep.PayloadNotSerializable):
        encode(naive)
    assert store.stats()["events"] == 0
    # Like any unknown value, it goes to `default`.
    assert decode(encode([naive], default=lambda d: d.replace(tzinfo=UTC))) == [naive.replace(tzinfo=UTC)]


@pytest.mark.parametrize(
    "when",
    [
        dt.datetime(9999, 12, 31, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))),  # 10000-01-01 UTC
        dt.datetime(1, 1, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=23, minutes=59))),  # year 0 UTC
    ],
)
def test_an_aware_datetime_no_utc_datetime_can_hold_is_refused_not_stored(
    store: ep.Store, when: dt.datetime
) -> None:
    with pytest.raises(ep.PayloadNotSerializable, match="outside years 1 to 9999"):
        store.append(("e", "s"), "k", {"at": when})
    assert store.stats()["events"] == 0
    # Like any value it cannot carry, it goes to `default`, and what that gives reads back.
    assert decode(encode({"at": when}, default=dt.datetime.isoformat)) == {"at": when.isoformat()}
    # The last instants that fit still round-trip.
    edges = [dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), dt.datetime(1, 1, 1, tzinfo=UTC)]
    assert decode(encode(edges)) == edges


def test_datetimes_round_trip_through_the_store(store: ep.Store) -> None:
    when = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    payload = {"at": when, "history": [EPOCH, (INSTANTS["ts96-before-1970"][0],)], "n": 1}
    receipt = store.append(("acct", "eu"), "k", payload)
    event = store.get(receipt.event_id)
    expected = {"at": when, "history": [EPOCH, [INSTANTS["ts96-before-1970"][0]]], "n": 1}
    assert event.payload == expected and event.payload["at"].tzinfo is UTC
    assert msgpack.unpackb(event.payload_bytes, timestamp=3) == expected
    assert event.payload_bytes == msgpack.packb(payload, datetime=True)


# --- default= ----------------------------------------------------------------------------------------


class Money:
    def __init__(self, cents: int) -> None:
        self.cents = cents


class Wrapper:
    def __init__(self, inner: Any) -> None:
        self.inner = inner


def _default(value: Any) -> Any:
    if isinstance(value, Money):
        return {"cents": value.cents}
    if isinstance(value, Wrapper):
        return value.inner
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, int):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not supported")


def test_default_converts_what_msgpack_cannot_carry() -> None:
    calls: list[Any] = []

    def default(value: Any) -> Any:
        calls.append(value)
        return _default(value)

    value = {"price": Money(250), "tags": {"b", "a"}, "big": 2**70, "plain": [1, "x", None, 1.5, b"\x00"]}
    data = encode(value, default=default)
    assert decode(data) == {
        "price": {"cents": 250},
        "tags": ["a", "b"],
        "big": str(2**70),
        "plain": [1, "x", None, 1.5, b"\x00"],
    }
    assert data == msgpack.packb(
        {
            "price": {"cents": 250},
            "tags": ["a", "b"],
            "big": str(2**70),
            "plain": [1, "x", None, 1.5, b"\x00"],
        }
    )
    # Called once per unknown value, never for what msgpack carries itself.
    assert [type(c).__name__ for c in calls] == ["Money", "set", "int"]
    with pytest.raises(ep.PayloadNotSerializable):
        encode(value, default=None)


def test_default_is_called_again_on_a_result_that_is_itself_unknown() -> None:
    assert decode(encode(Wrapper(Wrapper(Money(3))), default=_default)) == {"cents": 3}
    assert decode(encode([Wrapper({"x": Wrapper(1)})], default=_default)) == [{"x": 1}]


def test_a_default_that_never_converts_is_stopped() -> None:
    with pytest.raises(ep.PayloadNotSerializable, match="returned the Money it was given"):
        encode(Money(1), default=lambda v: v)
    with pytest.raises(ep.PayloadNotSerializable, match="deeper than 256 levels"):
        encode(Money(1), default=lambda v: Money(v.cents + 1))


def test_dict_keys_never_go_through_default() -> None:
    seen: list[Any] = []
    with pytest.raises(ep.PayloadNotSerializable, match="dict key 1 is not a str"):
        encode({1: "a"}, default=lambda v: seen.append(v) or str(v))
    assert seen == []


def test_an_exception_from_default_is_the_cause_of_payload_not_serializable() -> None:
    def refuse(value: Any) -> Any:
        raise ValueError(f"no {type(value).__name__} here")

    with pytest.raises(ep.PayloadNotSerializable) as info:
        encode({"a": [Money(1)]}, default=refuse)
    assert isinstance(info.value, TypeError) and isinstance(info.value, ep.EventpakError)
    assert isinstance(info.value.__cause__, ValueError) and str(info.value.__cause__) == "no Money here"
    assert "default() raised on a Money: ValueError: no Money here" in str(info.value)
    # json.dumps-style defaults raise TypeError: still a TypeError to `except TypeError`.
    with pytest.raises(TypeError) as typed:
        encode(object(), default=_default)
    assert isinstance(typed.value, ep.PayloadNotSerializable)
    assert isinstance(typed.value.__cause__, TypeError) and typed.value.__cause__ is not typed.value


def test_interrupts_and_payload_errors_from_default_pass_through_unchanged() -> None:
    interrupt = KeyboardInterrupt()

    def interrupted(value: Any) -> Any:
        raise interrupt

    with pytest.raises(KeyboardInterrupt) as stopped:
        encode(Money(1), default=interrupted)
    assert stopped.value is interrupt
    # A default that encodes with eventpak itself: its own refusal is not wrapped twice.
    with pytest.raises(ep.PayloadNotSerializable) as nested:
        encode(Money(1), default=lambda v: encode(object()))
    assert nested.value.__cause__ is None and "object is not msgpack-serializable" in str(nested.value)


# --- default= on the store ----------------------------------------------------------------


class _Money:
    def __init__(self, cents: int) -> None:
        self.cents = cents


def _money_default(value: object) -> object:
    if isinstance(value, _Money):
        return {"cents": value.cents}
    raise TypeError(f"cannot store {type(value).__name__}")


def test_store_default_converts_unknown_types_in_every_append_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with ep.Store.open(tmp_path / "data", default=_money_default) as store:
        store.append(("a", "s"), "paid", {"amount": _Money(5)})
        store.append_batch(
            [(("a", "s"), "paid", [_Money(6)]), ep.AppendRequest(("a", "s"), "paid", _Money(7))]
        )
        with store.fence() as fence:
            fence.append(("a", "s"), "paid", _Money(8))
        payloads = [e.payload for e in store.query(ep.Region.all())]
    assert payloads == [{"amount": {"cents": 5}}, [{"cents": 6}], {"cents": 7}, {"cents": 8}]


def test_store_default_that_raises_writes_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with ep.Store.open(tmp_path / "data", default=_money_default) as store:
        with pytest.raises(ep.PayloadNotSerializable) as refused:
            store.append(("a", "s"), "paid", {"when": object()})
        assert isinstance(refused.value.__cause__, TypeError)
        assert store.stats()["events"] == 0


def test_without_default_unknown_types_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with ep.Store.open(tmp_path / "data") as store:
        with pytest.raises(ep.PayloadNotSerializable):
            store.append(("a", "s"), "paid", _Money(5))
        assert store.stats()["events"] == 0
    with pytest.raises(ep.InvalidConfig, match="default must be callable"):
        ep.Store.open(tmp_path / "other", default=42)  # type: ignore[arg-type]
