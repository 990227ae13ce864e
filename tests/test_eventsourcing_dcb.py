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
from eventpak.eventsourcing import EventpakDCBRecorder, EventpakFactory
from eventsourcing.dcb.api import DCBAppendCondition, DCBEvent, DCBQuery, DCBQueryItem, DCBRecorder
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
