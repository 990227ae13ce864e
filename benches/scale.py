"""What a big store costs where it should cost nothing more: looking up one entity among a
million, appending while the index grows, and the first append after a reopen.

    .venv/bin/python -m benches.scale               # stores of 1,000,000 events
    .venv/bin/python -m benches.scale --events 200000 --rounds 3
    .venv/bin/python -m benches.scale --quick       # 20,000 events (a smoke run)

Each case is a ratio inside one run, so a noisy machine weighs on both sides alike:

- (entity) ``query(Region.entity(name, exact=True))`` of an entity holding one event, in a
  store of N events over 1,000 entities and in one of N events each of its own entity: the
  time per query in the second over the first (aim: about 1, the lookup does not grow with
  the names the store holds). sqlite3 with an index on the entity, on the second store's
  rows, is the reference.
- (growth) ``append_batch`` of 100 events of new entities until the store holds N events:
  the slowest batch over the median one (aim: far below 100; a growing index that is copied
  or rehashed whole under its lock shows here as one batch hundreds of times the median).
- (reopen) in a fresh process, the first append after opening the N-event store from its
  index checkpoint, over the median of the 100 appends after it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import eventpak as ep

PROBE = "probe:0"
REOPEN_CHILD = """
import sys, time
import eventpak as ep
with ep.Store.open(sys.argv[1], sync="never") as store:
    times = []
    for i in range(101):
        start = time.perf_counter()
        store.append(("after-reopen", "s"), "k", i)
        times.append(time.perf_counter() - start)
print(times[0], sorted(times[1:])[50])
"""


def fill(path: Path, events: int, entities: int | None) -> list[float]:
    """N events in batches of 100 (entity i % entities, or each its own), then the probe
    entity's one event; the time of each batch."""
    times = []
    with ep.Store.open(path, sync="never") as store:
        for start in range(0, events, 100):
            batch = [
                ((f"e:{i if entities is None else i % entities}", "s"), "k", {"i": i})
                for i in range(start, min(events, start + 100))
            ]
            began = time.perf_counter()
            store.append_batch(batch)
            times.append(time.perf_counter() - began)
        store.append((PROBE, "s"), "k", {"probe": True})
    return times


def lookup_time(path: Path, lookups: int) -> float:
    """Median seconds of one exact-entity query of the probe, in blocks of ``lookups``."""
    region = ep.Region.entity(PROBE, exact=True)
    with ep.Store.open(path, read_only=True) as store:
        blocks = []
        for _ in range(5):
            began = time.perf_counter()
            for _ in range(lookups):
                store.query(region)
            blocks.append((time.perf_counter() - began) / lookups)
        assert len(store.query(region)) == 1
    return statistics.median(blocks)


def sqlite_lookup_time(root: Path, events: int, lookups: int) -> float:
    db = sqlite3.connect(root / "lookup.db")
    db.execute("CREATE TABLE ev (seq INTEGER PRIMARY KEY, entity TEXT, kind TEXT, payload BLOB)")
    db.execute("CREATE INDEX ev_entity ON ev (entity, seq)")
    rows = ((i, f"e:{i}", "k", b"\x81\xa1i\x00") for i in range(events))
    db.executemany("INSERT INTO ev VALUES (?, ?, ?, ?)", rows)
    db.execute("INSERT INTO ev VALUES (?, ?, 'k', x'80')", (events, PROBE))
    db.commit()
    query = "SELECT seq, entity, kind, payload FROM ev WHERE entity = ? ORDER BY seq"
    blocks = []
    for _ in range(5):
        began = time.perf_counter()
        for _ in range(lookups):
            db.execute(query, (PROBE,)).fetchall()
        blocks.append((time.perf_counter() - began) / lookups)
    db.close()
    return statistics.median(blocks)


def reopen_times(path: Path) -> tuple[float, float]:
    done = subprocess.run(
        [sys.executable, "-c", REOPEN_CHILD, str(path)], capture_output=True, text=True, check=True
    )
    first, median = (float(x) for x in done.stdout.split())
    return first, median


def row(case: str, key: str, what: str, median: float, unit: str, **ratio: Any) -> dict[str, Any]:
    return {"case": case, "key": key, "what": what, "median": median, "unit": unit, **ratio}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benches.scale", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=None, help="events per store (default 1,000,000)")
    p.add_argument("--rounds", type=int, default=None, help="rounds of the reopen case (default 3)")
    p.add_argument("--quick", action="store_true", help="a smoke run: 20,000 events, one round")
    p.add_argument("--dir", type=Path, default=None, help="where the temporary stores go")
    p.add_argument(
        "--json", type=Path, default=Path("benches/results/scale.json"), help="where the JSON goes"
    )
    args = p.parse_args(argv)
    events = args.events or (20_000 if args.quick else 1_000_000)
    rounds = args.rounds or (1 if args.quick else 3)
    lookups = 200 if args.quick else 2_000
    root = Path(tempfile.mkdtemp(prefix="eventpak-scale-", dir=args.dir))
    rows = []
    try:
        few, many = root / "few", root / "many"
        fill(few, events, 1_000)
        growth = fill(many, events, None)
        few_time, many_time = lookup_time(few, lookups), lookup_time(many, lookups)
        sqlite_time = sqlite_lookup_time(root, events, lookups)
        rows += [
            row("entity", "few", f"one-entity query, {events:,} events over 1,000 entities", few_time, "s"),
            row(
                "entity",
                "many",
                f"one-entity query, {events:,} events each of its own entity",
                many_time,
                "s",
                ratio_label="many entities / few",
                ratio=many_time / few_time,
            ),
            row(
                "entity",
                "sqlite3",
                "SELECT ... WHERE entity = ? (indexed), the same rows",
                sqlite_time,
                "s",
                ratio_label="eventpak / sqlite3",
                ratio=many_time / sqlite_time,
            ),
        ]
        median_batch = statistics.median(growth)
        rows.append(
            row(
                "growth",
                "eventpak",
                f"append_batch(100) of new entities up to {events:,} events",
                median_batch,
                "s",
                ratio_label="slowest batch / median",
                ratio=max(growth) / median_batch,
            )
        )
        reopened = [reopen_times(many) for _ in range(rounds)]
        first = statistics.median(f for f, _ in reopened)
        later = statistics.median(m for _, m in reopened)
        rows.append(
            row(
                "reopen",
                "eventpak",
                f"first append after opening {events:,} events from index.ckpt",
                first,
                "s",
                ratio_label="first / later appends",
                ratio=first / later,
            )
        )
    finally:
        shutil.rmtree(root)
    print("| Case | System | What | Median | Ratio |")
    print("|---|---|---|---:|---|")
    for r in rows:
        ratio = f"{r['ratio_label']} = **{r['ratio']:.2f}**" if "ratio" in r else ""
        print(f"| ({r['case']}) | {r['key']} | {r['what']} | {r['median'] * 1e6:,.1f} us | {ratio} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"events": events, "rounds": rounds, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
