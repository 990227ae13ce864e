"""The ``eventsourcing`` library's DCB recorder test case, unmodified, on
``eventpak.eventsourcing``: its two checks run as the library's own DCB recorders run them."""

from __future__ import annotations

import gc
import shutil
import tempfile

import pytest

pytest.importorskip("eventsourcing")

import eventpak as ep
import eventsourcing.dcb.tests as library
from eventpak.eventsourcing import EventpakFactory
from eventsourcing.dcb.api import DCBRecorder
from eventsourcing.utils import Environment

needs_tags = pytest.mark.skipif(
    not (hasattr(ep, "AppendCondition") and hasattr(ep.Region, "any_of")),
    reason="this eventpak core has no tags and append conditions (ep.AppendCondition, Region.any_of) yet",
)


@needs_tags
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
