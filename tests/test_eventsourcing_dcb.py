"""The ``eventsourcing`` library's DCB recorder test case, unmodified, on
``eventpak.eventsourcing`` (its two checks run as the library's own DCB recorders run them), and
how DCB positions, types, tags, heads and conditions map onto eventpak."""

from __future__ import annotations

import gc
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("eventsourcing")

import eventpak as ep
import eventsourcing.dcb.tests as library
from eventpak.errors import InvalidTag
from eventpak.eventsourcing import EventpakDCBRecorder, EventpakFactory
from eventsourcing.dcb.api import DCBAppendCondition, DCBEvent, DCBQuery, DCBQueryItem, DCBRecorder
from eventsourcing.dcb.application import DCBApplication
from eventsourcing.dcb.domain import EnduringObject
from eventsourcing.dcb.msgpack import Decision, InitialDecision
from eventsourcing.dcb.popo import InMemoryDCBRecorder
from eventsourcing.persistence import IntegrityError, ProgrammingError, StoredEvent
from eventsourcing.utils import Environment


class TestDCBRecorder(library.DCBRecorderTestCase):
    def setUp(self) -> None:
        self.data_dir = tempfile.mkdtemp(prefix="eventpak-dcb-")
        self.factory = EventpakFactory(Environment(env={"EVENTPAK_DATA_DIR": self.data_dir}))

    def tearDown(self) -> None:
        self.factory.close()
        gc.collect()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def create_recorder(self) -> DCBRecorder:
        return self.factory.dcb_recorder()

    def test_append_read(self) -> None:
        self._test_append_read(self.create_recorder())

    def test_append_subscribe(self) -> None:
        self._test_append_subscribe(self.create_recorder())


@pytest.fixture
def dcb(tmp_path: Path) -> Iterator[EventpakDCBRecorder]:
    factory = EventpakFactory(Environment(env={"EVENTPAK_DATA_DIR": str(tmp_path / "data")}))
    yield factory.dcb_recorder()
    factory.close()


def _event(type_: str, *tags: str, data: bytes = b"{}") -> DCBEvent:
    return DCBEvent(type=type_, data=data, tags=list(tags))


def test_positions_are_global_sequences_plus_one_with_other_tables_between(tmp_path: Path) -> None:
    factory = EventpakFactory(Environment("Courses", env={"EVENTPAK_DATA_DIR": str(tmp_path / "data")}))
    try:
        dcb, app = factory.dcb_recorder(), factory.application_recorder()
        assert dcb.append([_event("A", "x")]) == 1
        app.insert_events([StoredEvent(uuid.uuid4(), 1, "topic", b"state")])  # global sequence 1
        assert dcb.append([_event("B", "x"), _event("C", "y")]) == 4
        read = dcb.read()
        assert [(e.position, e.event.type) for e in read] == [(1, "A"), (3, "B"), (4, "C")]
        assert read.head == 4
        assert [e.position for e in dcb.read(after=1)] == [3, 4]
        assert [e.position for e in dcb.read(after=2)] == [3, 4]
        with pytest.raises(IntegrityError):  # B, after position 2, is in the boundary
            dcb.append([_event("D")], DCBAppendCondition(DCBQuery([DCBQueryItem(tags=["x"])]), after=2))
        dcb.append([_event("D")], DCBAppendCondition(DCBQuery([DCBQueryItem(tags=["x"])]), after=3))
        assert factory.store.query(ep.Region.scope("courses_dcb"))[0].tags == ("x",)
    finally:
        factory.close()


def test_types_and_tags_round_trip_and_match_literally(dcb: EventpakDCBRecorder) -> None:
    long_type = "module.sub:" + "T" * 300
    written = [
        _event("a..b/c", "course:c1", "student:s7", data=b"\x00\x01"),
        _event(long_type, "student:s7"),
        _event("eventpak.reserved", "t=1|x", data=b"third"),
    ]
    dcb.append(written)
    assert [e.event for e in dcb.read()] == written
    assert [e.event.type for e in dcb.read(DCBQuery([DCBQueryItem(types=[long_type])]))] == [long_type]
    both = DCBQuery([DCBQueryItem(tags=["course:c1", "student:s7"])])
    assert [e.position for e in dcb.read(both)] == [1]
    either = DCBQuery([DCBQueryItem(tags=["course:c1"]), DCBQueryItem(tags=["t=1|x"])])
    assert [e.position for e in dcb.read(either)] == [1, 3]


def test_a_tag_no_event_can_carry_matches_nothing(dcb: EventpakDCBRecorder) -> None:
    dcb.append([_event("A", "x")])
    impossible = DCBQuery([DCBQueryItem(tags=["bad\ntag"])])
    assert list(dcb.read(impossible)) == []
    assert [e.position for e in dcb.read(DCBQuery([*impossible.items, DCBQueryItem(tags=["x"])]))] == [1]
    dcb.append([_event("B")], DCBAppendCondition(impossible))  # nothing can match: no conflict
    with pytest.raises(ep.InvalidTag):
        dcb.append([_event("C", "bad\ntag")])


def test_a_tag_that_is_not_a_str_is_refused_not_read_as_matching_nothing(dcb: EventpakDCBRecorder) -> None:
    dcb.append([_event("A", "3")])
    wrong = DCBQuery([DCBQueryItem(types=[], tags=[3])])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"tags\[0\] must be a str, not int"):
        list(dcb.read(wrong))
    with pytest.raises(ep.InvalidTag):  # a condition that matches nothing would let it through
        dcb.append([_event("B")], DCBAppendCondition(wrong))
    assert [e.position for e in dcb.read()] == [1]


def test_head_is_taken_before_the_read(dcb: EventpakDCBRecorder) -> None:
    assert dcb.read().head is None
    dcb.append([_event("A", "x"), _event("B", "y")])
    read = dcb.read(DCBQuery([DCBQueryItem(tags=["x"])]))
    assert read.head == 2  # the newest DCB event, though the query matched only the first
    assert dcb.read(DCBQuery([DCBQueryItem(tags=["x"])]), limit=5).head == 1  # with a limit: the last read
    assert dcb.read(limit=0).head is None


def test_a_subscription_follows_its_query(dcb: EventpakDCBRecorder) -> None:
    dcb.append([_event("A", "x"), _event("B", "y")])
    with dcb.subscribe(DCBQuery([DCBQueryItem(tags=["x"])]), after=0) as subscription:
        assert next(subscription).position == 1
        dcb.append([_event("C", "y"), _event("D", "x")])
        assert next(subscription).position == 4


def test_append_without_events_is_refused(dcb: EventpakDCBRecorder) -> None:
    with pytest.raises(ProgrammingError):
        dcb.append([])


def test_a_repeated_tag_is_stored_once_and_matches_as_in_the_in_memory_recorder(
    dcb: EventpakDCBRecorder,
) -> None:
    memory = InMemoryDCBRecorder()
    written = [_event("A", "b", "a", "b", "a", "c"), _event("B", "a", "a"), _event("C", "c")]
    for recorder in (dcb, memory):
        recorder.append(written)
    # Each tag once, in the order of its first occurrence: the in-memory recorder's tags as a set.
    assert [e.event.tags for e in dcb.read()] == [["b", "a", "c"], ["a"], ["c"]]
    assert [set(e.event.tags) for e in dcb.read()] == [set(e.event.tags) for e in memory.read()]
    assert dcb.store.query(ep.Region.scope("stored_dcb"))[0].tags == ("b", "a", "c")
    for tags in (["a"], ["a", "b"], ["b", "b"], ["c", "a", "c"], ["a", "a"]):
        query = DCBQuery([DCBQueryItem(tags=tags)])
        assert [e.position for e in dcb.read(query)] == [e.position for e in memory.read(query)]


class Thing(EnduringObject[Decision, str]):
    class Created(InitialDecision):
        thing_id: str

    class Renamed(Decision):
        name: str

        def apply(self, obj: Thing) -> None:
            obj.renames += 1

    def __init__(self) -> None:
        super().__init__()
        self.renames = 0

    def rename(self, name: str, *related: str) -> None:
        self.trigger_event(self.Renamed, [self.id, *related], name=name)


def test_an_enduring_object_naming_itself_among_its_tags_is_saved_and_read_back(tmp_path: Path) -> None:
    env = {
        "PERSISTENCE_MODULE": "eventpak.eventsourcing",
        "EVENTPAK_DATA_DIR": str(tmp_path / "data"),
        "MAPPER_TOPIC": "eventsourcing.dcb.msgpack:MessagePackMapper",
    }
    app = DCBApplication(env=env)
    try:
        thing = Thing()
        thing.rename("x", thing.id, "group:1")  # trigger_event puts thing.id first a second time
        app.repository.save(thing)
        assert app.repository.get(thing.id).renames == 1
        assert [t.renames for t in app.repository.get_many(thing.id)] == [1]  # type: ignore[union-attr]
        assert [e.event.tags for e in app.recorder.read()][-1] == [thing.id, "group:1"]
    finally:
        app.close()


@pytest.mark.parametrize(
    "tags",
    [[""], ["a\nb"], ["\x7f"], ["x" * 256], [f"t{i}" for i in range(65)]],
    ids=["empty", "newline", "delete", "256 bytes", "65 tags"],
)
def test_the_other_tag_rules_raise_invalid_tag_and_write_nothing(
    dcb: EventpakDCBRecorder, tags: list[str]
) -> None:
    dcb.append([_event("A", "ok")])
    with pytest.raises(InvalidTag):
        dcb.append([_event("B", "ok", "ok"), _event("C", *tags)])
    assert [e.position for e in dcb.read()] == [1]


def test_at_most_64_distinct_tags_after_repeats_are_left_out(dcb: EventpakDCBRecorder) -> None:
    tags = [f"t{i}" for i in range(64)]
    dcb.append([_event("A", *tags, "t0", "t63")])
    assert [e.event.tags for e in dcb.read()] == [tags]
