"""The ``eventsourcing`` library's example application test, unmodified, on
``eventpak.eventsourcing`` selected through the environment, as an application would be."""

from __future__ import annotations

import gc
import os
import shutil
import tempfile

import pytest

pytest.importorskip("eventsourcing")

import eventsourcing.tests.application as library


class TestExampleApplication(library.ExampleApplicationTestCase):
    expected_factory_topic = "eventpak.eventsourcing:EventpakFactory"

    def setUp(self) -> None:
        self.data_dir = tempfile.mkdtemp(prefix="eventpak-es-")
        os.environ["PERSISTENCE_MODULE"] = "eventpak.eventsourcing"
        os.environ["EVENTPAK_DATA_DIR"] = self.data_dir
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        del os.environ["PERSISTENCE_MODULE"]
        del os.environ["EVENTPAK_DATA_DIR"]
        gc.collect()  # the test leaves its application open: collecting it releases the store
        shutil.rmtree(self.data_dir, ignore_errors=True)
