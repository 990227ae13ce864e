"""How long the store shared by ``eventpak.eventsourcing`` factories stays open: while a
factory or a recorder it made holds it, and no longer once the last one lets go."""

from __future__ import annotations

import gc
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("eventsourcing")

import eventpak as ep
from eventpak.eventsourcing import EventpakFactory, EventpakTrackingRecorder
from eventsourcing.application import Application
from eventsourcing.dcb.api import DCBEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import InfrastructureFactory, StoredEvent, Tracking
from eventsourcing.projection import Projection, ProjectionRunner
from eventsourcing.utils import Environment


def _env(tmp_path: Path) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "eventpak.eventsourcing", "EVENTPAK_DATA_DIR": str(tmp_path / "data")}


def _insert_and_read(recorder: Any) -> None:
    originator_id = uuid.uuid4()
    recorder.insert_events([StoredEvent(originator_id, 1, "t", b"s")])
    assert [s.originator_version for s in recorder.select_events(originator_id)] == [1]


def _track(recorder: Any) -> None:
    recorder.insert_tracking(Tracking("upstream", 7))
    assert recorder.max_tracking_id("upstream") == 7


def _dcb(recorder: Any) -> None:
    position = recorder.append([DCBEvent(type="Placed", data=b"", tags=["order:1"])])
    assert [e.position for e in recorder.read()] == [position]


RECORDERS: dict[str, tuple[Callable[[EventpakFactory], Any], Callable[[Any], None]]] = {
    "aggregate": (lambda f: f.aggregate_recorder("snapshots"), _insert_and_read),
    "application": (lambda f: f.application_recorder(), _insert_and_read),
    "tracking": (lambda f: f.tracking_recorder(), _track),
    "process": (lambda f: f.process_recorder(), _track),
    "dcb": (lambda f: f.dcb_recorder(), _dcb),
}


@pytest.mark.parametrize("kind", sorted(RECORDERS))
def test_a_recorder_keeps_the_store_after_its_factory_is_dropped_and_closes_it_when_dropped(
    tmp_path: Path, kind: str
) -> None:
    make, use = RECORDERS[kind]
    recorder = make(InfrastructureFactory.construct(env=_env(tmp_path)))  # the factory is dropped
    gc.collect()
    store = recorder.store
    assert not store.closed
    use(recorder)
    del recorder
    gc.collect()
    assert store.closed  # the last holder went: the data dir is free for another open
    ep.Store.open(tmp_path / "data").close()


def test_the_librarys_projection_runner_uses_its_view_after_dropping_the_factory(tmp_path: Path) -> None:
    class View(EventpakTrackingRecorder):
        pass

    class Counts(Projection[View]):
        name = "counts"
        topics = ()

        def process_event(self, domain_event: Any, tracking: Tracking) -> None:
            self.view.insert_tracking(tracking)

    with ProjectionRunner(
        application_class=Application[uuid.UUID], projection_class=Counts, view_class=View, env=_env(tmp_path)
    ) as runner:
        recordings = runner.app.save(Aggregate())
        runner.projection.view.wait(runner.app.name, recordings[-1].notification.id, timeout=10)
        assert runner.projection.view.max_tracking_id(runner.app.name) == recordings[-1].notification.id


def test_closing_the_factory_closes_the_store_its_live_recorders_hold(tmp_path: Path) -> None:
    app: Application[uuid.UUID] = Application(env=_env(tmp_path))
    app.save(Aggregate())
    recorder = app.recorder  # still referenced
    app.close()
    assert recorder.store.closed  # type: ignore[attr-defined]
    ep.Store.open(tmp_path / "data").close()  # Application.close() freed the data dir


def test_a_factory_closing_leaves_the_store_to_another_factorys_recorder(tmp_path: Path) -> None:
    env = Environment(env=_env(tmp_path))
    one, two = EventpakFactory(env), EventpakFactory(env)
    kept = two.application_recorder()
    del two  # dropped, not closed: its recorder still holds the store
    gc.collect()
    one.application_recorder()
    one.close()
    _insert_and_read(kept)
    store = kept.store  # type: ignore[attr-defined]
    del kept
    gc.collect()
    assert store.closed


def test_a_factory_opening_the_dir_while_the_last_holder_closes_it_waits_for_the_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = Environment(env=_env(tmp_path))
    first = EventpakFactory(env)
    store = first.store
    closing, go_on = threading.Event(), threading.Event()
    real_close = store.close

    def held_close(timeout: float | None = None) -> None:
        closing.set()
        go_on.wait()
        real_close(timeout)

    monkeypatch.setattr(store, "close", held_close)
    closer = threading.Thread(target=first.close)
    closer.start()
    outcome: dict[str, Any] = {}

    def open_second() -> None:
        try:
            second = EventpakFactory(env)
            outcome["factory"], outcome["store"] = second, second.store
        except Exception as exc:
            outcome["error"] = exc

    opener = threading.Thread(target=open_second)
    try:
        assert closing.wait(10)
        opener.start()
        # An open that does not wait for the close meets the closing store's lock
        # (StoreLocked) at once; one that waits is still waiting, whatever the timing, until
        # go_on is set.
        opener.join(timeout=1.0)
        assert "error" not in outcome and opener.is_alive()
    finally:
        go_on.set()
        closer.join()
        if opener.is_alive():
            opener.join()
    assert "error" not in outcome
    assert outcome["store"] is not store and not outcome["store"].closed
    outcome["factory"].close()
    assert outcome["store"].closed
