"""Payload encoding reads the payload through borrowed references and takes references of its
own only when Python code runs (``default``, a tzinfo). These tests check that it leaks and
frees nothing, that a ``default`` which mutates or drops what is being encoded cannot make it
read freed memory, and that the deepest nesting allowed fits a thread's stack."""

from __future__ import annotations

import datetime as dt
import sys
import threading
from typing import Any

import eventpak as ep
import msgpack
import pytest
from eventpak import _native

encode = _native.encode_payload


def packb(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


class Opaque:
    def __init__(self, tag: str = "") -> None:
        self.tag = tag


def fresh(text: str) -> str:
    """A new str object, referenced only by the caller (literals and small strs are shared)."""
    return "".join([text[:1], text[1:]])


class Shift(dt.tzinfo):
    """A tzinfo written in Python: reading the offset runs Python code."""

    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(hours=2)

    def dst(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)


def parts() -> tuple[dict[str, Any], list[Any]]:
    """A payload of unique objects (so reference counts are its own), and those objects."""
    leaves: list[Any] = [
        fresh("short key value"),
        fresh("long " * 400),
        b"blob" * 500,
        2**40 + 12345,
        2**63 + 7,
        1.5e300,
        dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=Shift()),
    ]
    inner = {"leaves": list(leaves), "tuple": (leaves[0], leaves[1])}
    payload = {"inner": inner, "list": [inner, leaves[2]], "opaque": Opaque("x" * 2000)}
    return payload, [payload, inner, inner["leaves"], inner["tuple"], payload["list"], *leaves]


def default(value: Any) -> Any:
    if isinstance(value, Opaque):
        return {"tag": value.tag, "copy": fresh(value.tag)}
    raise TypeError("no")


def counts(objects: list[Any]) -> list[int]:
    return [sys.getrefcount(o) for o in objects]


def test_encoding_takes_and_keeps_no_reference() -> None:
    payload, objects = parts()
    before = counts(objects)
    expected = encode(payload, default=default)
    for _ in range(200):
        assert encode(payload, default=default) == expected
    assert counts(objects) == before


def test_a_refused_encoding_keeps_no_reference() -> None:
    payload, objects = parts()
    payload["list"].append({"late": Opaque(), "bad": {1, 2}})
    objects.append(payload["list"][-1])

    def refuse_sets(value: Any) -> Any:
        if isinstance(value, set):
            raise ValueError("no sets")
        return default(value)

    before = counts(objects)
    for options in ({}, {"default": refuse_sets}, {"default": lambda v: v}):
        for _ in range(100):
            with pytest.raises(ep.PayloadNotSerializable):
                encode(payload, **options)
    assert counts(objects) == before


def test_default_dropping_a_long_str_already_noted_does_not_free_it() -> None:
    # The long str is noted (its bytes copied into the result only at the end) before
    # `default` runs and drops the list's reference to it: the encoding must hold it.
    items: list[Any] = [fresh("y" * 5000), Opaque()]
    expected = packb(["y" * 5000, "replaced the str"])

    def drop_the_str(value: Any) -> Any:
        items[0] = None
        return "replaced the str"

    assert encode(items, default=drop_the_str) == expected


def test_default_dropping_the_container_being_encoded_does_not_free_it() -> None:
    outer: list[Any] = [[Opaque(), fresh("w" * 3000), [fresh("v" * 2000)]]]
    table: dict[str, Any] = {"k": {"o": Opaque(), "s": fresh("s" * 3000)}}

    def drop_parent(value: Any) -> Any:
        outer[:] = [0]  # the inner list's and dict's last other references
        table["k"] = 0
        return fresh("c" * 1500)

    assert encode(outer, default=drop_parent) == packb([["c" * 1500, "w" * 3000, ["v" * 2000]]])
    assert outer == [0]
    table["k"] = {"o": Opaque(), "s": fresh("s" * 3000)}
    assert encode(table, default=drop_parent) == packb({"k": {"o": "c" * 1500, "s": "s" * 3000}})
    assert table == {"k": 0}


LIST_RESIZES = {
    "clear": list.clear,
    "append": lambda items: items.append(1),
    "pop": list.pop,
    "insert": lambda items: items.insert(0, 1),
}
DICT_RESIZES = {
    "clear": dict.clear,
    "add": lambda table: table.update(z=1),
    "pop-next": lambda table: table.pop("b"),
    "pop-done": lambda table: table.pop("a"),
}


@pytest.mark.parametrize("resize", LIST_RESIZES.values(), ids=LIST_RESIZES.keys())
def test_default_resizing_a_list_being_encoded_is_refused(resize: Any) -> None:
    items: list[Any] = [fresh("a" * 2000), Opaque(), fresh("b" * 2000)]
    with pytest.raises(ep.PayloadNotSerializable, match="list changed size while it was being encoded"):
        encode({"t": items}, default=lambda value: resize(items))


@pytest.mark.parametrize("resize", DICT_RESIZES.values(), ids=DICT_RESIZES.keys())
def test_default_resizing_a_dict_being_encoded_is_refused(resize: Any) -> None:
    table: dict[str, Any] = {"a": fresh("a" * 2000), "o": Opaque(), "b": 1}
    with pytest.raises(ep.PayloadNotSerializable, match="dict changed size while it was being encoded"):
        encode([table], default=lambda value: resize(table))


def test_default_moving_a_dicts_keys_without_changing_its_size_is_refused() -> None:
    # Keys taken out and put back after a resize renumbered the entries: the size is the
    # same, but going on from where the walk was would write a key twice.
    table: dict[str, Any] = {"a": Opaque(), "b": 2}

    def shuffle(value: Any) -> Any:
        del table["a"], table["b"]
        for i in range(12):  # enough to make the dict resize, which renumbers its entries
            table[f"t{i}"] = i
        for i in range(12):
            del table[f"t{i}"]
        table["b"], table["a"] = 2, 1
        return "converted"

    with pytest.raises(ep.PayloadNotSerializable, match="dict changed while it was being encoded"):
        encode(table, default=shuffle)


def test_a_store_refusing_a_dict_changed_during_encoding_keeps_nothing(tmp_path) -> None:
    table: dict[str, Any] = {"a": Opaque(), "b": 2}

    def shuffle(value: Any) -> Any:
        del table["a"], table["b"]
        for i in range(12):
            table[f"t{i}"] = i
        for i in range(12):
            del table[f"t{i}"]
        table["b"], table["a"] = 2, 1
        return "converted"

    with ep.Store.open(tmp_path / "s", default=shuffle) as store:
        store.append(("e", "s"), "k", {"before": 1})
        with pytest.raises(ep.PayloadNotSerializable):
            store.append_batch([(("e", "s"), "k", table)])
        assert [e.payload for e in store.query(ep.Region.all())] == [{"before": 1}]


def test_default_replacing_items_of_the_same_size_encodes_what_is_read() -> None:
    items: list[Any] = [Opaque(), fresh("old" * 500)]

    def replace(value: Any) -> Any:
        items[1] = fresh("new" * 500)
        return 1

    assert encode(items, default=replace) == packb([1, "new" * 500])


class Dropping(dt.tzinfo):
    """A tzinfo whose offset lookup runs ``then`` first."""

    def __init__(self, then: Any) -> None:
        self.then = then

    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
        self.then()
        return dt.timedelta(0)

    def dst(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)


def test_a_tzinfo_dropping_the_container_being_encoded_does_not_free_it() -> None:
    table: dict[str, Any] = {}
    when = dt.datetime(2024, 1, 1, tzinfo=Dropping(lambda: table.update(a=0)))
    table["a"] = [fresh("q" * 4000), when, fresh("r" * 1200)]
    expected = {"a": ["q" * 4000, dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "r" * 1200]}
    assert encode(table) == msgpack.packb(expected, datetime=True)
    holder: list[Any] = []
    holder.append([fresh("q" * 4000), dt.datetime(2024, 1, 1, tzinfo=Dropping(holder.clear))])
    with pytest.raises(ep.PayloadNotSerializable, match="list changed size"):
        encode(holder)


def run_in_thread(stack: int, target: Any) -> None:
    """Runs ``target`` in a thread with a ``stack``-byte stack; re-raises what it raised."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as e:
            errors.append(e)

    previous = threading.stack_size(stack)
    try:
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
    finally:
        threading.stack_size(previous)
    if errors:
        raise errors[0]


def nested(depth: int, inner: Any = None) -> Any:
    for _ in range(depth):
        inner = [inner]
    return inner


def test_the_deepest_nesting_fits_a_small_thread_stack() -> None:
    # 256 levels, each reached through a call of `default` (which runs on the same stack),
    # need about 128 KiB here; 1 MiB leaves room for other interpreters' larger frames.
    def deepest() -> None:
        chain = encode(Opaque(), default=lambda v: Opaque(v.tag + "x") if len(v.tag) < 255 else "bottom")
        assert chain == packb("bottom")  # 256 calls of `default`, "bottom" at level 256
        lists = encode(Opaque(), default=lambda v: [Opaque(v.tag + "x")] if len(v.tag) < 127 else "bottom")
        assert lists == packb(nested(127, "bottom"))
        with pytest.raises(ep.PayloadNotSerializable, match="deeper than 256 levels"):
            encode(Opaque(), default=lambda v: [Opaque()])
        assert encode(nested(256)) == packb(nested(256))

    run_in_thread(1 << 20, deepest)
