"""The optional Prometheus collector: a scrape shows the store's metrics under their stable
names with the values of a known workload; without prometheus_client the module says how to
get it."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import eventpak as ep
import pytest

prometheus_client = pytest.importorskip("prometheus_client")
from eventpak.prometheus import StoreCollector, register  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

A = ep.Region.entity("a")


def _scrape(
    registry: prometheus_client.CollectorRegistry,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = prometheus_client.generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_scrape_shows_the_store_s_figures(open_store) -> None:
    store = open_store(sync="always")
    store.append_batch([((f"a:{i}", "eu"), "k", i) for i in range(6)] + [(("b", "eu"), "k", 0)])
    store.append(("a:0", "eu"), "k", "more")
    cursor = store.cursor(A)
    cursor.poll_batch(2)
    cursor.commit("indexer")
    store.append(("a:9", "eu"), "poison", {})

    def fails_on_poison(batch: list[ep.Event], _s: ep.Store, _w: object) -> None:
        if any(e.kind == "poison" for e in batch):
            raise ValueError("poison")
        if batch[-1].kind == "done":
            done.set()

    done = threading.Event()
    handle = store.cursor_worker(
        A, fails_on_poison, ep.CursorWorkerConfig(checkpoint_id="dl", dead_letter_after=1)
    )
    store.append(("a:10", "eu"), "done", {})
    assert done.wait(30)
    handle.stop_and_join(timeout=30)

    registry = prometheus_client.CollectorRegistry()
    register(store, registry)
    samples = _scrape(registry)
    metrics = store.metrics()
    # appends: the batch, three singles, the worker's one dead letter
    assert samples[("eventpak_appends_total", ())] == metrics["appends"] == 5
    assert samples[("eventpak_appended_events_total", ())] == metrics["appended_events"] == 11
    assert samples[("eventpak_fsyncs_total", ())] == metrics["fsyncs"]
    assert samples[("eventpak_events", ())] == samples[("eventpak_visible_events", ())] == 11
    assert samples[("eventpak_durable_events", ())] == 11
    assert samples[("eventpak_log_bytes", ())] == metrics["bytes"] > 0
    assert samples[("eventpak_segments", ())] == 1
    assert samples[("eventpak_entities", ())] == 10  # a:0..a:5, b, a:9, a:10, the dead-letter entity
    indexer, dl = (("checkpoint_id", "indexer"),), (("checkpoint_id", "dl"),)
    assert samples[("eventpak_checkpoint_position", indexer)] == 1
    assert samples[("eventpak_checkpoint_lag_events", indexer)] == 7 - 2 + 2  # a:*: 7, +poison, +done
    assert samples[("eventpak_checkpoint_lag_seconds", indexer)] > 0
    assert samples[("eventpak_checkpoint_dead_letters", indexer)] == 0
    assert samples[("eventpak_checkpoint_lag_events", dl)] == 0
    assert samples[("eventpak_checkpoint_lag_seconds", dl)] == 0
    assert samples[("eventpak_checkpoint_dead_letters", dl)] == 1
    assert samples[("eventpak_checkpoint_position", dl)] == metrics["checkpoints"]["dl"]["position"]


def test_names_are_stable_and_a_store_name_labels_every_sample(store: ep.Store) -> None:
    store.append(("a", "eu"), "k", 1)
    store.cursor(A).commit("fresh")  # never started: no position sample
    registry = prometheus_client.CollectorRegistry()
    collector = register(store, registry, store_name="orders")
    samples = _scrape(registry)
    assert {name for name, _ in samples} == {
        "eventpak_appends_total",
        "eventpak_appended_events_total",
        "eventpak_fsyncs_total",
        "eventpak_events",
        "eventpak_visible_events",
        "eventpak_durable_events",
        "eventpak_log_bytes",
        "eventpak_segments",
        "eventpak_entities",
        "eventpak_checkpoint_lag_events",
        "eventpak_checkpoint_lag_seconds",
        "eventpak_checkpoint_dead_letters",
        "eventpak_checkpoint_corrupt",
    }
    assert all(dict(labels)["store"] == "orders" for _, labels in samples)
    assert samples[("eventpak_checkpoint_lag_events", (("checkpoint_id", "fresh"), ("store", "orders")))] == 1
    assert isinstance(collector, StoreCollector)
    registry.unregister(collector)
    assert _scrape(registry) == {}


def test_a_corrupt_checkpoint_is_scraped_as_corrupt_beside_the_others(store: ep.Store) -> None:
    store.append(("a", "eu"), "k", 1)
    store.cursor(A).commit("good")
    (Path(store.path) / "cursors" / "bad.ckpt").write_bytes(b"not a checkpoint")
    registry = prometheus_client.CollectorRegistry()
    register(store, registry)
    samples = _scrape(registry)
    good, bad = (("checkpoint_id", "good"),), (("checkpoint_id", "bad"),)
    assert samples[("eventpak_checkpoint_corrupt", good)] == 0
    assert samples[("eventpak_checkpoint_corrupt", bad)] == 1
    assert samples[("eventpak_checkpoint_lag_events", good)] == 1
    assert ("eventpak_checkpoint_lag_events", bad) not in samples
    assert samples[("eventpak_events", ())] == 1


def test_a_closed_store_is_scraped_without_samples(open_store) -> None:
    store = open_store()
    registry = prometheus_client.CollectorRegistry()
    register(store, registry)
    store.close()
    assert _scrape(registry) == {}
    assert "# TYPE eventpak_appends_total counter" in prometheus_client.generate_latest(registry).decode()


def test_without_prometheus_client_the_import_says_how_to_get_it() -> None:
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "try:\n    import eventpak.prometheus\n"
        "except ImportError as e:\n    print(e)\n"
        "import eventpak\nprint(eventpak.Store)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'eventpak[prometheus]'" in out.splitlines()[0]
    assert "eventpak.store.Store" in out.splitlines()[1]  # the package itself does not need it
