"""(j) cold projection of one ``--projection-events``-event entity (every 10th a note the fold
skips): ``store.project(PROJ_ENTITY, Sum())`` with the default ``NoCache``, against eventsourcing's
``repository.get`` (SQLite file, no snapshots, no aggregate cache) and sqlite3 (indexed SELECT +
``msgpack.unpackb`` + inline fold). The three stores are loaded once, untimed (load times in the
JSON, ``setup``); every system first runs once unmeasured."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from benches.compare.harness import (
    DEPOSIT,
    NOTE_EVERY,
    PROJ_ENTITY,
    Bench,
    Peer,
    Row,
    Sample,
    log,
    perf,
    projection_kind,
    projection_sum,
)
from benches.compare.peers import eventpak, eventsourcing, sqlite
from benches.compare.peers.eventpak import Sum


def build_projection_stores(b: Bench, n: int) -> dict[str, Any]:
    """One store per system holding the n events of the one entity of (j), and nothing else."""
    log(f"== building the {n:,}-event entity of (j)")
    out: dict[str, Any] = {}
    setup: dict[str, float] = {}

    d = b.fresh_dir("proj-eventpak")
    t0 = perf()
    with eventpak.open_store(d, sync="never") as store:
        eventpak.load_entity(store, n)
        store.sync()
    setup["eventpak"] = perf() - t0
    out["eventpak"] = d / "store"

    d = b.fresh_dir("proj-sqlite")
    t0 = perf()
    conn = sqlite.open_db(d / "db.sqlite", "OFF")
    sqlite.load_entity(conn, n, PROJ_ENTITY, projection_kind)
    conn.close()
    setup["sqlite"] = perf() - t0
    out["sqlite"] = d / "db.sqlite"

    if eventsourcing.AVAILABLE:
        d = b.fresh_dir("proj-eventsourcing")
        t0 = perf()
        es_id = eventsourcing.load_entity(d / "es.sqlite", n, projection_kind)
        setup["eventsourcing"] = perf() - t0
        out["eventsourcing"] = (d / "es.sqlite", es_id)
    for key, secs in setup.items():
        log(f"   load {key:<14} {secs:.2f} s ({n / secs:,.0f} ev/s)")
    b.setup["j"] = {k: {"events": n, "seconds": v} for k, v in setup.items()}
    return out


def run(b: Bench) -> None:
    n = b.args.projection_events
    if not eventsourcing.AVAILABLE:
        b.notes.append("eventsourcing is not installed: its (j) row is missing")
    paths = build_projection_stores(b, n)
    expected = projection_sum(n)
    store = eventpak.reopen(paths["eventpak"])  # projection_cache defaults to NoCache: cold every time
    conn = sqlite.connect(paths["sqlite"])
    app = None
    if "eventsourcing" in paths:
        es_path, es_id = paths["eventsourcing"]
        app = eventsourcing.open_app(es_path)

    def timed(fn: Callable[[], int]) -> Callable[[Path], Sample]:
        def run(d: Path) -> Sample:
            t0 = perf()
            state = fn()
            secs = perf() - t0
            if state != expected:
                raise RuntimeError(f"the fold gave {state}, expected {expected}")
            return Sample(n, secs)

        return run

    select = sqlite.fold_select(DEPOSIT)
    plan = sqlite.query_plan(conn, select, (PROJ_ENTITY,))
    if "INDEX" not in plan:
        b.notes.append(f"(j) the sqlite3 query does not use the entity index: {plan}")
    peers = [
        Peer(
            "eventpak",
            "eventpak",
            f'store.project("{PROJ_ENTITY}", Sum()), kinds=("{DEPOSIT}",), NoCache (default)',
            timed(lambda: store.project(PROJ_ENTITY, Sum())),
        )
    ]
    if app is not None:
        peers.append(
            Peer(
                "eventsourcing",
                "eventsourcing",
                "application.repository.get(id), SQLite file, JSON transcoder (default), "
                "no snapshots, no aggregate cache; every event is applied",
                timed(eventsourcing.read_balance(app, es_id)),
            )
        )
    peers.append(
        Peer(
            "sqlite",
            "sqlite3",
            f"SELECT kind, payload WHERE entity=? AND kind='{DEPOSIT}' ORDER BY seq (index on entity) "
            "+ msgpack.unpackb + inline fold",
            timed(sqlite.fold_amounts(conn, PROJ_ENTITY, DEPOSIT)),
        )
    )
    try:
        title = (
            f"cold projection of one {n:,}-event entity (every {NOTE_EVERY}th a note) to a sum "
            "(warm page cache)"
        )
        b.run_case("j", title, peers, warmup=True)
    finally:
        store.close()
        conn.close()
        if app is not None:
            app.close()
    b.rows.append(Row("j", "eventpak"))
    if app is not None:
        b.rows.append(
            Row(
                "j",
                "eventsourcing",
                ratio=("eventpak", "eventsourcing", "eventpak / eventsourcing"),
                aim=">= 5",
                check=lambda v, r: r >= 5,
            )
        )
    b.rows.append(
        Row(
            "j",
            "sqlite",
            ratio=("eventpak", "sqlite", "eventpak / sqlite3"),
            aim=">= 2",
            check=lambda v, r: r >= 2,
        )
    )
