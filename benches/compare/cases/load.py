"""(load) the set-up of (e)-(h): N events bulk-loaded into one store per system, not interleaved,
timed once for information. Built once, by the first of (e)-(h) that runs, and shared through
``Bench.shared``: the eventpak store serves (e), (f), (g) and (h), the lmdb one (e) and (g); the
sqlite3 one is only built when (e) runs."""

from __future__ import annotations

from pathlib import Path

from benches.compare.harness import BULK_CHUNK, Bench, Peer, Row, Sample, log, perf
from benches.compare.peers import eventpak, lmdb, sqlite


def read_stores(b: Bench) -> dict[str, Path]:
    """The paths of the N-event stores (``"eventpak"``, ``"sqlite"``, ``"lmdb"``), built on first use."""
    if "read_stores" not in b.shared:
        b.shared["read_stores"] = build_read_stores(b, b.args.events)
    paths: dict[str, Path] = b.shared["read_stores"]
    return paths


def build_read_stores(b: Bench, n: int) -> dict[str, Path]:
    """Load n events into one store per system (not interleaved; timed once, for information)."""
    users = "/".join(c for c in "efgh" if c in b.args.cases)
    with_sqlite = "e" in b.args.cases
    log(f"== building {n:,}-event stores for ({users})")
    paths: dict[str, Path] = {}
    build: dict[str, Sample] = {}

    d = b.fresh_dir("read-eventpak")
    t0 = perf()
    with eventpak.open_store(d, sync="never") as store:
        eventpak.bulk_load(store, n)
        store.sync()
    build["eventpak"] = Sample(n, perf() - t0)
    paths["eventpak"] = d / "store"

    if with_sqlite:
        d = b.fresh_dir("read-sqlite")
        t0 = perf()
        conn = sqlite.open_db(d / "db.sqlite", "OFF")
        sqlite.bulk_load(conn, n)
        conn.close()
        build["sqlite"] = Sample(n, perf() - t0)
        paths["sqlite"] = d / "db.sqlite"

    if lmdb.AVAILABLE:
        d = b.fresh_dir("read-lmdb")
        t0 = perf()
        env = lmdb.open_env(d, sync=False, map_size=lmdb.map_size_for(n))
        lmdb.bulk_load(env, n)
        env.close()
        build["lmdb"] = Sample(n, perf() - t0)
        paths["lmdb"] = d
    for key, s in build.items():
        log(f"   bulk load {key:<10} {s.seconds:.2f} s ({s.rate:,.0f} ev/s)")
    b.samples["load"] = {k: [v] for k, v in build.items()}
    b.titles["load"] = (
        f"bulk load of {n:,} events (set-up of {users}; chunks of {BULK_CHUNK}, not durable, 1 run)"
    )
    b.peers["load"] = {
        "eventpak": Peer(
            "eventpak", "eventpak", f'append_batch({BULK_CHUNK}), sync="never"', lambda d: Sample(0, 0)
        ),
        "sqlite": Peer(
            "sqlite",
            "sqlite3",
            f"WAL, synchronous=OFF, executemany({BULK_CHUNK}) per txn",
            lambda d: Sample(0, 0),
        ),
    }
    b.rows += [
        Row("load", "eventpak"),
        Row("load", "sqlite", ratio=("eventpak", "sqlite", "eventpak / sqlite3")),
    ]
    if lmdb.AVAILABLE:
        b.peers["load"]["lmdb"] = Peer(
            "lmdb", "lmdb", f"sync=False, putmulti({BULK_CHUNK}) per txn", lambda d: Sample(0, 0)
        )
        b.rows.append(Row("load", "lmdb", ratio=("eventpak", "lmdb", "eventpak / lmdb")))
    return paths
