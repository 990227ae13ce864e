"""Prometheus metrics of a store (optional extra: ``pip install 'eventpak[prometheus]'``).

``register(store)`` adds a collector to ``prometheus_client``'s default registry (or the one
given); every scrape reads ``store.metrics()`` afresh::

    from prometheus_client import start_http_server
    import eventpak.prometheus

    eventpak.prometheus.register(store)
    start_http_server(9100)

Names (stable; ``checkpoint_id`` labels the per-checkpoint ones, and every sample carries
``store="<name>"`` when a ``store_name`` is given):

==========================================  ========  ================================================
``eventpak_appends_total``                  counter   appends that wrote events (a batch counts once)
``eventpak_appended_events_total``          counter   events those appends wrote
``eventpak_fsyncs_total``                   counter   fsyncs done for durability
``eventpak_events``                         gauge     events in the log (fenced ones included)
``eventpak_visible_events``                 gauge     events readers can see
``eventpak_durable_events``                 gauge     leading events covered by an fsync
``eventpak_log_bytes``                      gauge     bytes of segment files
``eventpak_segments``                       gauge     segment files
``eventpak_entities``                       gauge     distinct entities
``eventpak_checkpoint_position``            gauge     last committed global sequence (absent before any)
``eventpak_checkpoint_lag_events``          gauge     region events after the position
``eventpak_checkpoint_lag_seconds``         gauge     age of the oldest of them (0 when caught up)
``eventpak_checkpoint_dead_letters``        gauge     dead letters parked under the checkpoint
==========================================  ========  ================================================

The counters count since the store was opened in this process (a restart starts them over,
which Prometheus' ``rate()`` expects of a counter).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

try:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry
except ImportError as exc:  # pragma: no cover - exercised with the package hidden
    raise ImportError(
        "eventpak.prometheus needs the prometheus_client package: pip install 'eventpak[prometheus]'"
    ) from exc

if TYPE_CHECKING:
    from .store import Store

__all__ = ["StoreCollector", "register"]

# (name, metrics() key, help) of the store-wide figures.
_COUNTERS = (
    ("eventpak_appends", "appends", "Appends through this store that wrote events (a batch counts once)."),
    ("eventpak_appended_events", "appended_events", "Events written by those appends."),
    ("eventpak_fsyncs", "fsyncs", "fsyncs this store did for durability."),
)
_GAUGES = (
    ("eventpak_events", "events", "Events in the log, including events hidden by a fence."),
    ("eventpak_visible_events", "visible_events", "Events readers can see."),
    ("eventpak_durable_events", "durable_events", "Leading events covered by an fsync."),
    ("eventpak_log_bytes", "bytes", "Bytes of segment files."),
    ("eventpak_segments", "segments", "Segment files."),
    ("eventpak_entities", "entities", "Distinct entities."),
)
_PER_CHECKPOINT = (
    ("eventpak_checkpoint_position", "position", "Last committed global sequence of the checkpoint."),
    ("eventpak_checkpoint_lag_events", "lag_events", "Events of the checkpoint's region after its position."),
    ("eventpak_checkpoint_lag_seconds", "lag_seconds", "Age of the oldest event after the position."),
    ("eventpak_checkpoint_dead_letters", "dead_letters", "Dead letters parked under the checkpoint."),
    ("eventpak_checkpoint_corrupt", "corrupt", "1 when the checkpoint file cannot be trusted."),
)


class StoreCollector(Collector):
    """A Prometheus collector reading ``store.metrics()`` at every scrape. A closed store
    yields the metric families without samples."""

    def __init__(self, store: Store, *, store_name: str | None = None) -> None:
        self._store = store
        self._labels = [] if store_name is None else ["store"]
        self._values = [] if store_name is None else [store_name]

    def describe(self) -> Iterator[Metric]:
        """The metric families, without samples (what registering checks names against)."""
        yield from self._families(None)

    def collect(self) -> Iterator[Metric]:
        """The metric families with the store's current figures."""
        yield from self._families(None if self._store.closed else dict(self._store.metrics()))

    def _families(self, metrics: Mapping[str, Any] | None) -> Iterator[Metric]:
        labels, values = self._labels, self._values
        for name, key, text in _COUNTERS:
            counter = CounterMetricFamily(name, text, labels=labels)
            if metrics is not None:
                counter.add_metric(values, metrics[key])
            yield counter
        for name, key, text in _GAUGES:
            gauge = GaugeMetricFamily(name, text, labels=labels)
            if metrics is not None:
                gauge.add_metric(values, metrics[key])
            yield gauge
        checkpoints: Mapping[str, Mapping[str, Any]] = {} if metrics is None else metrics["checkpoints"]
        for name, key, text in _PER_CHECKPOINT:
            gauge = GaugeMetricFamily(name, text, labels=[*labels, "checkpoint_id"])
            for checkpoint_id, figures in checkpoints.items():
                if figures[key] is not None:
                    gauge.add_metric([*values, checkpoint_id], float(figures[key]))
            yield gauge


def register(
    store: Store, registry: CollectorRegistry = REGISTRY, *, store_name: str | None = None
) -> StoreCollector:
    """Registers a :class:`StoreCollector` of ``store`` with ``registry`` (the default one
    unless given) and returns it; ``registry.unregister(collector)`` removes it. Give each
    store a ``store_name`` when one registry collects several stores."""
    collector = StoreCollector(store, store_name=store_name)
    registry.register(collector)
    return collector
