"""The ``eventsourcing`` library's own recorder and factory test cases, unmodified, on
``eventpak.eventsourcing``: each subclass writes only what the library asks of it (the recorder
or factory to test, in a fresh data dir per test)."""

from __future__ import annotations

import gc
import shutil
import tempfile
from uuid import uuid4

import pytest

pytest.importorskip("eventsourcing")

import eventsourcing.tests.persistence as library
from eventpak.eventsourcing import (
    EventpakAggregateRecorder,
    EventpakApplicationRecorder,
    EventpakFactory,
    EventpakProcessRecorder,
    EventpakTrackingRecorder,
)
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    ProcessRecorder,
    TrackingRecorder,
)
from eventsourcing.utils import Environment


class _FreshDataDir:
    """A factory on a data dir of its own for each test, closed and removed after it."""

    factory: EventpakFactory

    def setUp(self) -> None:
        self.data_dir = tempfile.mkdtemp(prefix="eventpak-es-")
        self.factory = EventpakFactory(Environment(env={"EVENTPAK_DATA_DIR": self.data_dir}))
        super().setUp()  # type: ignore[misc]

    def tearDown(self) -> None:
        super().tearDown()  # type: ignore[misc]
        self.factory.close()
        gc.collect()  # recorders and subscriptions of the test go before their files
        shutil.rmtree(self.data_dir, ignore_errors=True)


class TestAggregateRecorder(_FreshDataDir, library.AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        return self.factory.aggregate_recorder()


class TestAggregateRecorderWithStrIds(TestAggregateRecorder):
    def new_originator_id(self) -> str:
        return f"str-id/{uuid4()}..|=%\x01"


class TestApplicationRecorder(_FreshDataDir, library.ApplicationRecorderTestCase[ApplicationRecorder]):
    def create_recorder(self) -> ApplicationRecorder:
        return self.factory.application_recorder()

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestApplicationRecorderWithStrIds(TestApplicationRecorder):
    def new_originator_id(self) -> str:
        return f"account:{uuid4()}"


class TestNonInterleavingNotificationIds(_FreshDataDir, library.NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> ApplicationRecorder:
        return self.factory.application_recorder()


class TestTrackingRecorder(_FreshDataDir, library.TrackingRecorderTestCase):
    def create_recorder(self) -> TrackingRecorder:
        return self.factory.tracking_recorder()


class TestProcessRecorder(_FreshDataDir, library.ProcessRecorderTestCase):
    def create_recorder(self) -> ProcessRecorder:
        return self.factory.process_recorder()


class _CustomTrackingRecorder(EventpakTrackingRecorder):
    pass


class TestInfrastructureFactory(library.InfrastructureFactoryTestCase[EventpakFactory]):
    def setUp(self) -> None:
        self.data_dir = tempfile.mkdtemp(prefix="eventpak-es-")
        self.env = Environment("TestCase")
        self.env[InfrastructureFactory.PERSISTENCE_MODULE] = "eventpak.eventsourcing"
        self.env[EventpakFactory.EVENTPAK_DATA_DIR] = self.data_dir
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        gc.collect()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def expected_factory_class(self) -> type[EventpakFactory]:
        return EventpakFactory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return EventpakAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return EventpakApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return EventpakTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return _CustomTrackingRecorder

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return EventpakProcessRecorder
