"""Versioned payloads: every event stores a ``payload_version``; upcasters registered with
``ep.Upcasters`` bring old payloads to the newest version of their kind on every read path,
lazily and once per event; a failing upcaster raises ``ep.UpcastFailed`` from its error."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest
from eventpak import _native

ACCT = ("acct:1", "eu")


def v0_to_v1(payload: dict[str, Any]) -> dict[str, Any]:
    """Version 1 added a currency."""
    return {**payload, "currency": "EUR"}


def v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """Version 2 renamed amount to cents."""
    payload = dict(payload)
    payload["cents"] = payload.pop("amount") * 100
    return payload


def deposit_upcasters() -> ep.Upcasters:
    return ep.Upcasters().add("deposit", 0, v0_to_v1).add("deposit", 1, v1_to_v2)


NEWEST = {"cents": 500, "currency": "EUR"}


def fill(store: ep.Store) -> list[ep.AppendReceipt]:
    """A deposit at each version, all reading as ``NEWEST``, each caused by the one before."""
    first = store.append(ACCT, "deposit", {"amount": 5})
    second = store.append(
        ACCT, "deposit", {"amount": 5, "currency": "EUR"}, payload_version=1, caused_by=first
    )
    third = store.append(ACCT, "deposit", NEWEST, payload_version=2, caused_by=second)
    return [first, second, third]


def read_paths(store: ep.Store, receipts: list[ep.AppendReceipt]) -> dict[str, list[ep.Event]]:
    first, _, third = receipts
    region = ep.Region.all()
    polled = store.cursor(region)
    return {
        "get": [store.get(r.event_id) for r in receipts],
        "query": store.query(region),
        "walk_ancestors": store.walk_ancestors(third.event_id)[::-1],
        "causes": store.causes(third.event_id)[::-1],
        "effects+descendants": [store.get(first.event_id), *store.descendants(first.event_id)],
        "correlated": store.correlated(first.event_id),
        "cursor.poll": [e for e in (polled.poll(), polled.poll(), polled.poll()) if e is not None],
        "cursor.poll_batch": store.cursor(region).poll_batch(10),
        "cursor.pull_batch": store.cursor(region).pull_batch(10, 0.0),
    }


def test_every_read_path_shows_the_newest_version(open_store: Callable[..., ep.Store]) -> None:
    store = open_store(upcasters=deposit_upcasters())
    receipts = fill(store)
    assert [e.event_id for e in store.effects(receipts[0].event_id)] == [receipts[1].event_id]
    for path, events in read_paths(store, receipts).items():
        assert [e.payload for e in events] == [NEWEST] * 3, path
        assert [e.payload_version for e in events] == [2, 2, 2], path
        assert [e.stored_payload_version for e in events] == [0, 1, 2], path


def test_payload_bytes_stay_as_stored(open_store: Callable[..., ep.Store]) -> None:
    store = open_store(upcasters=deposit_upcasters())
    fill(store)
    events = store.query(ep.Region.all())
    assert [e.payload for e in events] == [NEWEST] * 3
    assert [_native.decode_payload(e.payload_bytes) for e in events] == [
        {"amount": 5},
        {"amount": 5, "currency": "EUR"},
        NEWEST,
    ]


def test_upcasting_runs_on_first_payload_access_only_then_is_cached(
    open_store: Callable[..., ep.Store],
) -> None:
    calls: list[Any] = []

    def counted(payload: dict[str, Any]) -> dict[str, Any]:
        calls.append(payload)
        payload["seen"] = True  # a payload is decoded for this read alone: in place is fine
        return payload

    store = open_store(upcasters=ep.Upcasters().add("deposit", 0, counted))
    store.append(ACCT, "deposit", {"amount": 1})
    event = store.query(ep.Region.all())[0]
    assert event.payload_version == 1  # known from the registry, without running the step
    assert calls == []
    first = event.payload
    assert event.payload is first and first == {"amount": 1, "seen": True}
    assert len(calls) == 1


def test_two_threads_reading_one_event_while_its_upcaster_runs_get_the_same_object(
    open_store: Callable[..., ep.Store],
) -> None:
    """The first thread's upcaster lets the GIL go; the second thread reads the same event
    meanwhile and fills its payload first: the first thread then returns that payload, not
    its own, so an event's payload is one object whichever thread asked first."""
    first_inside, second_done = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow_for_the_first(payload: dict[str, Any]) -> dict[str, Any]:
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            first_inside.set()
            assert second_done.wait(30)
        return dict(payload, by=threading.current_thread().name)

    store = open_store(upcasters=ep.Upcasters().add("deposit", 0, slow_for_the_first))
    store.append(ACCT, "deposit", {"amount": 1})
    event = store.query(ep.Region.all())[0]
    got: dict[str, Any] = {}

    def read(name: str) -> None:
        got[name] = event.payload
        if name == "second":
            second_done.set()

    first = threading.Thread(target=read, args=("first",), name="first")
    first.start()
    assert first_inside.wait(30)
    second = threading.Thread(target=read, args=("second",), name="second")
    second.start()
    second.join(30)
    first.join(30)
    assert calls == ["first", "second"]
    assert got["first"] is got["second"] is event.payload
    assert event.payload == {"amount": 1, "by": "second"}


def test_other_kinds_and_versions_outside_the_chain_are_left_as_stored(
    open_store: Callable[..., ep.Store],
) -> None:
    ups = ep.Upcasters().add("deposit", 1, v1_to_v2)  # nothing registered from version 0
    store = open_store(upcasters=ups)
    store.append(ACCT, "withdraw", {"amount": 1})
    store.append(ACCT, "deposit", {"amount": 2})  # below the first step
    store.append(ACCT, "deposit", {"cents": 3}, payload_version=2)  # already the newest
    store.append(ACCT, "deposit", {"cents": 4, "x": 1}, payload_version=7)  # newer than known
    store.append(ACCT, "deposit", {"amount": 5}, payload_version=1)
    events = store.query(ep.Region.all())
    assert [(e.payload, e.payload_version, e.stored_payload_version) for e in events] == [
        ({"amount": 1}, 0, 0),
        ({"amount": 2}, 0, 0),
        ({"cents": 3}, 2, 2),
        ({"cents": 4, "x": 1}, 7, 7),
        ({"cents": 500}, 2, 1),
    ]


def test_steps_may_be_registered_in_any_order(open_store: Callable[..., ep.Store]) -> None:
    ups = ep.Upcasters().add("deposit", 1, v1_to_v2).add("deposit", 0, v0_to_v1)
    store = open_store(upcasters=ups)
    store.append(ACCT, "deposit", {"amount": 5})
    assert store.query(ep.Region.all())[0].payload == NEWEST


def test_add_is_chainable_and_shows_what_it_holds() -> None:
    ups = ep.Upcasters()
    assert ups.add("deposit", 0, v0_to_v1) is ups
    assert ups.add("withdraw", 3, v1_to_v2) is ups
    assert repr(ups) == "Upcasters({'deposit': [0], 'withdraw': [3]})"
    assert ups.chains() == {"deposit": (0, (v0_to_v1,)), "withdraw": (3, (v1_to_v2,))}


def test_a_gap_in_a_chain_is_refused_at_open_and_nothing_is_created(data_dir: Path) -> None:
    ups = ep.Upcasters().add("deposit", 0, v0_to_v1).add("deposit", 2, v1_to_v2)
    with pytest.raises(ep.InvalidConfig, match=r"kind 'deposit' go from version 1 to 2.*from version 1"):
        ep.Store.open(data_dir, upcasters=ups)
    with pytest.raises(ep.InvalidConfig, match="from version 1"):
        ep.StoreConfig(data_dir, upcasters=ups)
    assert not data_dir.exists()


def test_a_duplicate_step_is_refused_and_the_first_one_stays() -> None:
    ups = ep.Upcasters().add("deposit", 0, v0_to_v1)
    with pytest.raises(ep.InvalidArgument, match="already registered") as refused:
        ups.add("deposit", 0, v1_to_v2)
    assert refused.value.argument == "from_version"
    assert ups.chains() == {"deposit": (0, (v0_to_v1,))}


@pytest.mark.parametrize(
    ("kind", "from_version", "fn", "error", "says"),
    [
        (1, 0, v0_to_v1, TypeError, "kind must be a str"),
        ("eventpak.denial", 0, v0_to_v1, ep.InvalidKind, "reserved prefix"),
        ("a/b", 0, v0_to_v1, ep.InvalidKind, "'/'"),
        ("", 0, v0_to_v1, ep.InvalidKind, "empty"),
        ("deposit", -1, v0_to_v1, ep.InvalidArgument, "from_version"),
        ("deposit", 2**32 - 1, v0_to_v1, ep.InvalidArgument, "from_version"),
        ("deposit", True, v0_to_v1, TypeError, "from_version must be an int, not bool"),
        ("deposit", "1", v0_to_v1, TypeError, "from_version must be an int, not str"),
        ("deposit", 0, "v0_to_v1", TypeError, "must be callable"),
    ],
)
def test_bad_registrations_raise_typed_errors_and_register_nothing(
    kind: Any, from_version: Any, fn: Any, error: type[Exception], says: str
) -> None:
    ups = ep.Upcasters()
    with pytest.raises(error, match=says):
        ups.add(kind, from_version, fn)
    assert ups.chains() == {}


def test_upcasters_must_be_an_upcasters_object(data_dir: Path) -> None:
    with pytest.raises(ep.InvalidConfig, match=r"must be an ep\.Upcasters, not dict"):
        ep.Store.open(data_dir, upcasters={"deposit": (0, (v0_to_v1,))})  # type: ignore[arg-type]
    assert not data_dir.exists()


def test_the_store_keeps_the_steps_registered_at_open(open_store: Callable[..., ep.Store]) -> None:
    ups = ep.Upcasters().add("deposit", 0, v0_to_v1)
    store = open_store(upcasters=ups)
    ups.add("deposit", 1, v1_to_v2)  # after open: not the store's
    store.append(ACCT, "deposit", {"amount": 5})
    event = store.query(ep.Region.all())[0]
    assert (event.payload, event.payload_version) == ({"amount": 5, "currency": "EUR"}, 1)


def test_a_failing_upcaster_raises_upcast_failed_from_its_error(open_store: Callable[..., ep.Store]) -> None:
    failures = [ValueError("no currency for this account")]

    def flaky(payload: dict[str, Any]) -> dict[str, Any]:
        if failures:
            raise failures.pop()
        return v1_to_v2(payload)

    store = open_store(upcasters=ep.Upcasters().add("deposit", 0, v0_to_v1).add("deposit", 1, flaky))
    receipt = store.append(ACCT, "deposit", {"amount": 5})
    event = store.get(receipt.event_id)
    with pytest.raises(ep.UpcastFailed) as failed:
        event.payload  # noqa: B018 -- the read under test
    err = failed.value
    assert isinstance(err, ep.EventpakError)
    assert (err.kind, err.version, err.global_sequence) == ("deposit", 1, receipt.global_sequence)
    assert isinstance(err.__cause__, ValueError) and str(err.__cause__) == "no currency for this account"
    assert "kind 'deposit' from version 1" in str(err) and "fix that upcaster" in str(err)
    # A failure is not cached: once the upcaster works, the same event reads.
    assert event.payload == NEWEST
    assert _native.decode_payload(event.payload_bytes) == {"amount": 5}


def test_a_failed_upcast_leaves_the_stored_event_untouched(data_dir: Path) -> None:
    def broken(payload: Any) -> Any:
        raise KeyError("amount")

    with ep.Store.open(data_dir, upcasters=ep.Upcasters().add("deposit", 0, broken)) as store:
        store.append(ACCT, "deposit", {"amount": 5})
        with pytest.raises(ep.UpcastFailed):
            store.query(ep.Region.all())[0].payload  # noqa: B018
    with ep.Store.open(data_dir) as store:
        (event,) = store.query(ep.Region.all())
        assert (event.payload, event.payload_version, event.stored_payload_version) == ({"amount": 5}, 0, 0)


class Abort(BaseException):
    """Stands for Ctrl-C or SystemExit: not an error of the upcaster's."""


def test_a_base_exception_from_an_upcaster_passes_through_unchanged(
    open_store: Callable[..., ep.Store],
) -> None:
    def interrupted(payload: Any) -> Any:
        raise Abort

    store = open_store(upcasters=ep.Upcasters().add("deposit", 0, interrupted))
    store.append(ACCT, "deposit", {"amount": 5})
    with pytest.raises(Abort):
        store.query(ep.Region.all())[0].payload  # noqa: B018


def test_workers_deliver_upcast_payloads(open_store: Callable[..., ep.Store]) -> None:
    store = open_store(upcasters=deposit_upcasters())
    fill(store)
    seen: list[tuple[Any, int, int]] = []
    done = threading.Event()

    def handler(batch: list[ep.Event], _store: ep.Store, _witness: Any) -> ep.CursorWorkerAction:
        seen.extend((e.payload, e.payload_version, e.stored_payload_version) for e in batch)
        if len(seen) >= 3:
            done.set()
            return ep.CursorWorkerAction.STOP
        return ep.CursorWorkerAction.CONTINUE

    handle = store.cursor_worker(ep.Region.all(), handler)
    assert done.wait(10)
    handle.join(10)
    assert seen == [(NEWEST, 2, 0), (NEWEST, 2, 1), (NEWEST, 2, 2)]


class Cents(ep.Projection[int]):
    name = "cents"
    kinds = ("deposit",)

    def initial(self) -> int:
        return 0

    def apply(self, state: int, event: ep.Event) -> int:
        assert event.payload_version == 2
        cents: int = event.payload["cents"]
        return state + cents


def test_projections_fold_upcast_payloads(open_store: Callable[..., ep.Store], tmp_path: Path) -> None:
    store = open_store(upcasters=deposit_upcasters(), projection_cache=ep.NativeCache(tmp_path / "cache"))
    fill(store)
    assert store.project("acct:1", Cents()) == 1500
    assert store.project(ep.Region.entity("acct"), Cents()) == 1500
    assert store.project_if_changed("acct:1", Cents(), None) == (2, 1500)


def test_a_projection_whose_upcaster_fails_raises_it(open_store: Callable[..., ep.Store]) -> None:
    def broken(payload: Any) -> Any:
        raise RuntimeError("bad step")

    store = open_store(upcasters=ep.Upcasters().add("deposit", 1, broken))
    store.append(ACCT, "deposit", {"amount": 5}, payload_version=1)
    with pytest.raises(ep.UpcastFailed) as failed:
        store.project("acct:1", Cents())
    assert isinstance(failed.value.__cause__, RuntimeError)


@pytest.mark.parametrize("index_checkpoint", [True, False], ids=["index-checkpoint", "no-index-checkpoint"])
def test_payload_versions_survive_reopening(data_dir: Path, index_checkpoint: bool) -> None:
    with ep.Store.open(data_dir, enable_index_checkpoint=index_checkpoint) as store:
        fill(store)
        store.append_batch([ep.AppendRequest(ACCT, "deposit", {"cents": 1}, payload_version=2**32 - 1)])
    with ep.Store.open(data_dir, enable_index_checkpoint=index_checkpoint) as store:
        events = store.query(ep.Region.all())
        assert [e.stored_payload_version for e in events] == [0, 1, 2, 2**32 - 1]
        assert [e.payload_version for e in events] == [0, 1, 2, 2**32 - 1]
    with ep.Store.open(
        data_dir, enable_index_checkpoint=index_checkpoint, upcasters=deposit_upcasters()
    ) as store:
        events = store.query(ep.Region.all())
        assert [e.stored_payload_version for e in events] == [0, 1, 2, 2**32 - 1]
        assert [e.payload for e in events[:3]] == [NEWEST] * 3


def test_a_replay_with_another_payload_version_is_an_idempotency_conflict(store: ep.Store) -> None:
    first = store.append(ACCT, "deposit", {"amount": 5}, idempotency_key="k1")
    assert store.append(ACCT, "deposit", {"amount": 5}, idempotency_key="k1") == first
    with pytest.raises(ep.IdempotencyConflict):
        store.append(ACCT, "deposit", {"amount": 5}, idempotency_key="k1", payload_version=1)
    with pytest.raises(ep.IdempotencyConflict):
        store.append_batch(
            [ep.AppendRequest(ACCT, "deposit", {"amount": 5}, idempotency_key="k1", payload_version=3)]
        )
    assert store.stats()["events"] == 1


@pytest.mark.parametrize(
    "ups",
    [None, ep.Upcasters(), ep.Upcasters().add("withdraw", 0, v0_to_v1)],
    ids=["none", "empty", "other-kind"],
)
def test_without_upcasters_for_a_kind_its_events_read_as_stored(
    open_store: Callable[..., ep.Store], ups: ep.Upcasters | None
) -> None:
    store = open_store(upcasters=ups)
    store.append(ACCT, "deposit", {"amount": 5}, payload_version=1)
    (event,) = store.query(ep.Region.all())
    assert (event.payload, event.payload_version, event.stored_payload_version) == ({"amount": 5}, 1, 1)
    assert event.payload_bytes == _native.encode_payload({"amount": 5})


def test_a_pickled_event_shows_the_stored_payload(open_store: Callable[..., ep.Store]) -> None:
    store = open_store(upcasters=deposit_upcasters())
    store.append(ACCT, "deposit", {"amount": 5})
    event = store.query(ep.Region.all())[0]
    assert event.payload == NEWEST
    copy = pickle.loads(pickle.dumps(event))
    assert copy == event
    assert (copy.payload, copy.payload_version, copy.stored_payload_version) == ({"amount": 5}, 0, 0)
