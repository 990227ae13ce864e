"""How ``eventpak.eventsourcing`` maps the library's concepts onto eventpak, beyond what the
library's own test cases check: names and topics that eventpak names refuse, version numbering
other than the library's default, reads against the library's in-memory recorder as an oracle,
stale clocks, settings, shared stores and several applications in one data dir."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("eventsourcing")

import eventpak as ep
from eventpak import _native
from eventpak.eventsourcing import EventpakFactory
from eventpak.eventsourcing._names import (
    entity_name,
    escape,
    kind_for_topic,
    originator_id_of,
    topic_of_kind,
    tracking_name,
    unescape,
)
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.popo import POPOAggregateRecorder
from eventsourcing.utils import Environment
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[EventpakFactory]:
    f = EventpakFactory(Environment(env={"EVENTPAK_DATA_DIR": str(tmp_path / "data")}))
    yield f
    f.close()


def _stored(
    originator_id: uuid.UUID | str, version: int, topic: str = "t", state: bytes = b"s"
) -> StoredEvent:
    return StoredEvent(originator_id=originator_id, originator_version=version, topic=topic, state=state)


# --- names ------------------------------------------------------------------------------------


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(min_size=1, max_size=60))
def test_escaped_text_is_a_valid_name_and_unescapes_to_itself(text: str) -> None:
    name = escape(text)
    assert unescape(name) == text
    ep.Coordinate(name, "scope")  # raises for a name eventpak refuses


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_every_topic_has_a_valid_kind_that_gives_it_back(topic: str) -> None:
    kind, hashed = kind_for_topic(topic)
    _native.validate_kind(kind)
    assert hashed == (topic_of_kind(kind) is None)
    if not hashed:
        assert topic_of_kind(kind) == topic


def test_kinds_of_distinct_topics_differ() -> None:
    topics = [
        "a..b",
        "a.%2Eb",
        "a/b",
        "a%2Fb",
        "eventpak.x",
        "%65ventpak.x",
        "~x",
        "%7Ex",
        "",
        "x" * 300,
        "x" * 301,
    ]
    kinds = [kind_for_topic(topic)[0] for topic in topics]
    assert len(set(kinds)) == len(topics)
    assert kind_for_topic("eventsourcing.tests.domain:BankAccount.Opened") == (
        "eventsourcing.tests.domain:BankAccount.Opened",
        False,
    )


def test_originator_ids_keep_their_type() -> None:
    some_uuid = uuid.uuid4()
    for originator_id in (some_uuid, str(some_uuid), "str:x", "a/b|c=d..e%f", "🐈"):
        entity = entity_name("app_events", originator_id)
        ep.Coordinate(entity, "app_events")
        back = originator_id_of(entity, len("app_events:"))
        assert back == originator_id and type(back) is type(originator_id)


# --- topics and ids through a recorder --------------------------------------------------------

ODD_TOPICS = [
    "a..b",
    "x/y|z=w",
    "100%",
    "eventpak.internal:Thing",
    "~tilde",
    "",
    "t" * 400,
    "mod:Class.<locals>.Ev",
]


def test_odd_topics_and_ids_round_trip(factory: EventpakFactory) -> None:
    recorder = factory.application_recorder()
    ids: list[uuid.UUID | str] = [uuid.uuid4(), "plain", "../..|=%\x7f", str(uuid.uuid4())]
    written = []
    for i, topic in enumerate(ODD_TOPICS):
        stored = _stored(ids[i % len(ids)], i // len(ids) + 1, topic, f"state {i}".encode())
        written.append(stored)
        recorder.insert_events([stored])
    for originator_id in ids:
        assert list(recorder.select_events(originator_id)) == [
            s for s in written if s.originator_id == originator_id
        ]
    notifications = recorder.select_notifications(None, 100)
    assert [(n.originator_id, n.originator_version, n.topic, n.state) for n in notifications] == [
        (s.originator_id, s.originator_version, s.topic, s.state) for s in written
    ]
    for topic in ODD_TOPICS:
        [only] = recorder.select_notifications(None, 100, topics=[topic])
        assert only.topic == topic


def test_a_uuid_and_its_str_are_two_originators(factory: EventpakFactory) -> None:
    recorder = factory.aggregate_recorder()
    some_uuid = uuid.uuid4()
    recorder.insert_events([_stored(some_uuid, 1, state=b"uuid")])
    recorder.insert_events([_stored(str(some_uuid), 1, state=b"str")])
    [by_uuid] = recorder.select_events(some_uuid)
    [by_str] = recorder.select_events(str(some_uuid))
    assert (by_uuid.state, type(by_uuid.originator_id)) == (b"uuid", uuid.UUID)
    assert (by_str.state, type(by_str.originator_id)) == (b"str", str)


def test_the_library_numbering_stores_the_state_bytes_as_the_payload(factory: EventpakFactory) -> None:
    recorder = factory.application_recorder()
    originator_id = uuid.uuid4()
    recorder.insert_events([_stored(originator_id, 1, state=b"a"), _stored(originator_id, 2, state=b"b")])
    recorder.insert_events([_stored(originator_id, 4, state=b"d")])  # a gap: the version is stored
    events = factory.store.query(ep.Region.all())
    assert [(e.entity_sequence, e.payload) for e in events] == [(0, b"a"), (1, b"b"), (2, [4, b"d"])]
    assert [e.kind for e in events] == ["t", "t", "t"]
    assert {e.scope for e in events} == {"stored_events"}
    assert events[0].entity == f"stored_events:{originator_id}"


# --- versions: the library's in-memory recorder as the oracle ----------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    versions=st.lists(st.integers(min_value=0, max_value=40), min_size=0, max_size=12, unique=True).map(
        sorted
    ),
    gt=st.none() | st.integers(min_value=-1, max_value=42),
    lte=st.none() | st.integers(min_value=-1, max_value=42),
    desc=st.booleans(),
    limit=st.none() | st.integers(min_value=1, max_value=5),
)
def test_select_events_reads_what_the_in_memory_recorder_reads(
    factory: EventpakFactory,
    versions: list[int],
    gt: int | None,
    lte: int | None,
    desc: bool,
    limit: int | None,
) -> None:
    recorder = factory.aggregate_recorder(purpose=f"p{uuid.uuid4().hex}")
    oracle = POPOAggregateRecorder()
    originator_id = uuid.uuid4()
    stored = [_stored(originator_id, v, state=str(v).encode()) for v in versions]
    for chunk in (stored[:3], stored[3:]):  # two inserts, so that the second is checked against the first
        recorder.insert_events(chunk)
        oracle.insert_events(chunk)
    assert list(recorder.select_events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)) == list(
        oracle.select_events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)
    )


def test_versions_must_increase(factory: EventpakFactory) -> None:
    recorder = factory.aggregate_recorder()
    originator_id = uuid.uuid4()
    recorder.insert_events([_stored(originator_id, 5)])
    for bad in ([_stored(originator_id, 5)], [_stored(originator_id, 3)], [_stored(originator_id, 7)] * 2):
        with pytest.raises(IntegrityError):
            recorder.insert_events(bad)
    assert [s.originator_version for s in recorder.select_events(originator_id)] == [5]


def test_a_snapshot_older_than_the_newest_is_taken_as_recorded_and_not_stored(tmp_path: Path) -> None:
    # Another process may snapshot the aggregate further first; the library takes snapshots
    # after the events are committed, so the older one must not make save() raise.
    class Counter(Aggregate):
        @event("Opened")
        def __init__(self) -> None:
            self.n = 0

        @event("Bumped")
        def bump(self) -> None:
            self.n += 1

    env = {"PERSISTENCE_MODULE": "eventpak.eventsourcing", "EVENTPAK_DATA_DIR": str(tmp_path / "data")}
    app: Application[Any] = Application(env={**env, "IS_SNAPSHOTTING_ENABLED": "y"})
    try:
        counter = Counter()
        for _ in range(6):
            counter.bump()
        app.save(counter)
        app.take_snapshot(counter.id, version=6)
        app.take_snapshot(counter.id, version=4)  # older: no error, nothing stored
        assert app.snapshots is not None
        assert [s.originator_version for s in app.snapshots.get(counter.id)] == [6]
        assert app.repository.get(counter.id, version=5).n == 4
        assert app.repository.get(counter.id).n == 6
        with pytest.raises(IntegrityError):  # the same version twice is still refused
            app.take_snapshot(counter.id, version=6)
        with pytest.raises(IntegrityError):  # and events must still increase
            app.events.recorder.insert_events([_stored(counter.id, 3)])
    finally:
        app.close()


def test_a_batch_of_several_originators_is_atomic(factory: EventpakFactory) -> None:
    recorder = factory.application_recorder()
    first, second = uuid.uuid4(), uuid.uuid4()
    recorder.insert_events([_stored(second, 1)])
    with pytest.raises(IntegrityError):
        recorder.insert_events([_stored(first, 1), _stored(first, 2), _stored(second, 1)])
    assert recorder.select_events(first) == []
    assert recorder.max_notification_id() == 1
    assert recorder.insert_events([_stored(first, 1), _stored(second, 2)]) == [2, 3]


def test_a_recorder_with_a_stale_clock_rereads_it(tmp_path: Path) -> None:
    env = Environment(env={"EVENTPAK_DATA_DIR": str(tmp_path / "data")})
    one, two = EventpakFactory(env), EventpakFactory(env)
    try:
        assert one.store is two.store  # one open store per data dir in a process
        writer, other = one.application_recorder(), two.application_recorder()
        originator_id = uuid.uuid4()
        writer.insert_events([_stored(originator_id, 1)])  # the writer now remembers clock 1
        other.insert_events([_stored(originator_id, 2), _stored(originator_id, 3)])
        with pytest.raises(IntegrityError):
            writer.insert_events([_stored(originator_id, 2)])
        writer.insert_events([_stored(originator_id, 4)])
        assert [s.originator_version for s in other.select_events(originator_id)] == [1, 2, 3, 4]
    finally:
        one.close()
        two.close()


def test_concurrent_writers_of_one_version_only_one_wins(factory: EventpakFactory) -> None:
    recorders = [factory.application_recorder() for _ in range(8)]
    originator_id = uuid.uuid4()
    recorders[0].insert_events([_stored(originator_id, 1)])
    outcomes: list[str] = []
    start = threading.Barrier(len(recorders))

    def write(recorder: Any) -> None:
        recorder.select_events(originator_id)  # every recorder knows clock 1
        start.wait()
        try:
            recorder.insert_events([_stored(originator_id, 2)])
            outcomes.append("won")
        except IntegrityError:
            outcomes.append("lost")

    threads = [threading.Thread(target=write, args=(r,)) for r in recorders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]
    assert [s.originator_version for s in recorders[0].select_events(originator_id)] == [1, 2]


# --- subscriptions ----------------------------------------------------------------------------


def test_a_subscription_wakes_on_commit_and_stops_from_another_thread(factory: EventpakFactory) -> None:
    recorder = factory.application_recorder()
    received: list[int] = []
    subscription = recorder.subscribe(gt=None)

    def consume() -> None:
        with subscription:
            for notification in subscription:
                received.append(notification.id)

    consumer = threading.Thread(target=consume)
    consumer.start()
    originator_id = uuid.uuid4()
    for version in (1, 2, 3):
        recorder.insert_events([_stored(originator_id, version)])
    deadline = time.monotonic() + 10
    while len(received) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)  # observing the consumer only
    assert received == [1, 2, 3]
    subscription.stop()
    consumer.join(timeout=10)
    assert not consumer.is_alive()


def test_a_subscription_skips_other_tables_and_topics(factory: EventpakFactory) -> None:
    recorder = factory.application_recorder()
    snapshots = factory.aggregate_recorder("snapshots")
    originator_id = uuid.uuid4()
    recorder.insert_events([_stored(originator_id, 1, "a")])
    snapshots.insert_events([_stored(originator_id, 1, "a")])
    recorder.insert_events([_stored(originator_id, 2, "b"), _stored(originator_id, 3, "a")])
    with recorder.subscribe(gt=1, topics=["a"]) as subscription:
        first = next(subscription)
    assert (first.id, first.originator_version) == (4, 3)
    assert recorder.max_notification_id() == 4
    assert [n.id for n in recorder.select_notifications(None, 10)] == [1, 3, 4]


# --- the factory ------------------------------------------------------------------------------


def test_settings_come_from_the_environment(tmp_path: Path) -> None:
    env = Environment(
        "Orders",
        env={
            "ORDERS_EVENTPAK_DATA_DIR": str(tmp_path / "orders"),
            "EVENTPAK_DATA_DIR": str(tmp_path / "other"),
            "EVENTPAK_SYNC": "always",
            "EVENTPAK_SEGMENT_MAX_BYTES": "65536",
            "ORDERS_EVENTPAK_SHARED": "y",
            "EVENTPAK_SOMETHING_ELSE": "ignored",
        },
    )
    factory = EventpakFactory(env)
    try:
        assert factory.store_options == {"sync": "always", "segment_max_bytes": 65536, "shared": True}
        assert factory.data_dir == str(tmp_path / "orders")
        assert factory.store.stats()["sync"] == "always"
        assert factory.application_recorder().events_table == "orders_events"  # type: ignore[attr-defined]
    finally:
        factory.close()
    assert factory._lease is None


def test_an_encryption_key_setting_seals_the_applications_payloads(tmp_path: Path) -> None:
    key = ep.generate_encryption_key()
    env = {"EVENTPAK_DATA_DIR": str(tmp_path / "data"), "EVENTPAK_ENCRYPTION_KEY": key.hex()}
    factory = EventpakFactory(Environment(env=env))
    try:
        recorder = factory.application_recorder()
        marker = b"sealed-marker-5e1d"
        event = StoredEvent(originator_id=uuid.uuid4(), originator_version=1, topic="t", state=marker)
        recorder.insert_events([event])
        assert [e.state for e in recorder.select_events(event.originator_id)] == [marker]
    finally:
        factory.close()
    files = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert files and not any(marker in p.read_bytes() for p in files)
    with pytest.raises(ep.InvalidConfig):  # the same dir without its key
        ep.Store.open(tmp_path / "data")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "EVENTPAK_DATA_DIR"),
        ({"EVENTPAK_DATA_DIR": "x", "EVENTPAK_ENCRYPTION_KEY": "not hex"}, "EVENTPAK_ENCRYPTION_KEY"),
        ({"EVENTPAK_DATA_DIR": "x", "EVENTPAK_SYNC_INTERVAL_MS": "soon"}, "EVENTPAK_SYNC_INTERVAL_MS"),
        ({"EVENTPAK_DATA_DIR": "x", "EVENTPAK_SHARED": "perhaps"}, "EVENTPAK_SHARED"),
    ],
)
def test_missing_or_bad_settings_raise_oserror(env: dict[str, str], message: str) -> None:
    with pytest.raises(OSError, match=message):
        EventpakFactory(Environment(env=env))


def test_a_bad_option_value_is_refused_before_the_disk_is_touched(tmp_path: Path) -> None:
    with pytest.raises(ep.InvalidConfig):
        EventpakFactory(
            Environment(env={"EVENTPAK_DATA_DIR": str(tmp_path / "d"), "EVENTPAK_SYNC": "sometimes"})
        )
    assert not (tmp_path / "d").exists()


def test_factories_share_a_store_until_the_last_closes(tmp_path: Path) -> None:
    env = {"EVENTPAK_DATA_DIR": str(tmp_path / "data")}
    one, two = EventpakFactory(Environment(env=env)), EventpakFactory(Environment(env=env))
    store = one.store
    assert two.store is store
    one.close()
    assert not store.closed
    two.close()
    assert store.closed
    with pytest.raises(OSError, match="other options"):
        a = EventpakFactory(Environment(env=env))
        a.store  # noqa: B018 - opens it
        try:
            EventpakFactory(Environment(env={**env, "EVENTPAK_SYNC": "never"})).store  # noqa: B018
        finally:
            a.close()


class _Dog(Aggregate):
    def __init__(self, name: str) -> None:
        self.name = name
        self.tricks: list[str] = []

    @event("TrickAdded")
    def add_trick(self, trick: str) -> None:
        self.tricks.append(trick)


class DogSchool(Application[uuid.UUID]):
    pass


class CatSchool(Application[uuid.UUID]):
    pass


def test_two_applications_share_a_data_dir_and_reopen(tmp_path: Path) -> None:
    env = {"PERSISTENCE_MODULE": "eventpak.eventsourcing", "EVENTPAK_DATA_DIR": str(tmp_path / "data")}
    dogs, cats = DogSchool(env=env), CatSchool(env=env)
    fido = _Dog(name="Fido")
    fido.add_trick("roll over")
    dogs.save(fido)
    felix = _Dog(name="Felix")
    cats.save(felix)
    fido.add_trick("play dead")
    dogs.save(fido)
    assert [n.id for n in dogs.notification_log.select(start=1, limit=10)] == [1, 2, 4]
    assert [n.id for n in cats.notification_log.select(start=1, limit=10)] == [3]
    assert cats.recorder.max_notification_id() == 3
    dogs.close()
    cats.close()

    dogs = DogSchool(env=env)
    try:
        again: _Dog = dogs.repository.get(fido.id)
        assert again.tricks == ["roll over", "play dead"]
        again.add_trick("fetch")
        dogs.save(again)
        assert dogs.recorder.max_notification_id() == 5
    finally:
        dogs.close()


def test_tracking_names_fit_the_tracking_rules() -> None:
    assert tracking_name("orders_tracking", "Payments") == "orders_tracking:Payments"
    assert tracking_name("orders_tracking", "a|b\n") == "orders_tracking:a%7Cb%0A"
    long_names = {tracking_name("orders_tracking", "P" * n) for n in (300, 301)}
    assert len(long_names) == 2
    for name in long_names:
        assert name.startswith("~") and len(name) == 33


def test_without_the_library_the_import_says_which_extra_to_install() -> None:
    code = (
        "import sys\n"
        "for name in ('eventsourcing', 'eventsourcing.persistence', 'eventsourcing.dcb'):\n"
        "    sys.modules[name] = None\n"
        "try:\n"
        "    import eventpak.eventsourcing\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pip install 'eventpak[eventsourcing]'" in done.stdout
