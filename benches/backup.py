"""Online backups: a full ``store.backup()`` against ``cp -r`` of the same data dir, and an
incremental backup after 1,000 new events against a full one, side by side in one run.

    .venv/bin/python -m benches.backup              # N = 1,000,000 events
    .venv/bin/python -m benches.backup --quick      # smoke run, N = 20,000

Cases:

  (full): events/s of a full backup of N events of the shared workload (150-byte payloads)
      into a new folder, against ``cp -r`` of the data dir into a new folder (which fsyncs
      nothing, while the backup fsyncs each file and folder once) and against ``cp -r``
      followed by ``sync -f`` of the copy (the backup's durability); aim: the backup at least
      0.8x the speed of ``cp -r``
  (incremental): seconds of a backup into a folder holding a backup taken 1,000 events
      earlier, against a full backup of the same store; aim: at most 5% of the full one

The store is written once (the page cache is warm for every system); rounds rotate the order
of the systems, and each ratio is the median of the per-round ratios, as in benches.compare,
whose harness and report this reuses.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import eventpak as ep

from benches._workload import KIND, SCOPE, make_entities, make_payloads
from benches.compare.harness import RESULTS_DIR, Bench, Peer, Row, Sample, perf
from benches.compare.report import (
    finish_run,
    machine_info,
    machine_lines,
    report_text,
)

BATCH = 4096
NEW_EVENTS = 1_000


def fill(store: ep.Store, start: int, events: int) -> None:
    """Appends ``events`` events of the shared workload in batches."""
    payloads, entities = make_payloads(), make_entities()
    done = start
    while done < start + events:
        n = min(BATCH, start + events - done)
        store.append_batch(
            [((entities[i & 1023], SCOPE), KIND, payloads[i & 1023]) for i in range(done, done + n)]
        )
        done += n


def full_case(b: Bench, store: ep.Store, data_dir: Path, events: int) -> None:
    def backup(d: Path) -> Sample:
        os.sync()  # every system starts with nothing left to write back
        t0 = perf()
        report = store.backup(d / "backup")
        secs = perf() - t0
        assert report.events == events and not report.incremental
        return Sample(events, secs, {"bytes": report.bytes_copied})

    def cp(d: Path) -> Sample:
        os.sync()
        t0 = perf()
        subprocess.run(["cp", "-r", str(data_dir), str(d / "copy")], check=True)
        return Sample(events, perf() - t0)

    def cp_sync(d: Path) -> Sample:
        # The same durability as the backup's: the copy's files and folders on disk.
        os.sync()
        t0 = perf()
        subprocess.run(["cp", "-r", str(data_dir), str(d / "copy")], check=True)
        subprocess.run(["sync", "-f", str(d / "copy")], check=True)
        return Sample(events, perf() - t0)

    peers = [
        Peer("eventpak", "eventpak", "store.backup(dest)", backup),
        Peer("cp", "cp -r", "cp -r DIR DEST", cp),
        Peer("cp_sync", "cp -r; sync", "cp -r DIR DEST; sync -f DEST", cp_sync),
    ]
    b.run_case("full", f"a full backup of {events:,} events into a new folder, events/s", peers)
    b.rows.append(
        Row(
            "full",
            "eventpak",
            ratio=("eventpak", "cp", "backup / cp -r"),
            aim=">= 0.8",
            check=lambda v, r: r is not None and r >= 0.8,
        )
    )
    b.rows.append(Row("full", "cp"))
    b.rows.append(Row("full", "cp_sync", ratio=("eventpak", "cp_sync", "backup / (cp -r; sync)")))


def incremental_case(b: Bench, store: ep.Store, base: Path, events: int) -> None:
    def incremental(d: Path) -> Sample:
        dest = d / "backup"
        shutil.copytree(base, dest)  # the earlier backup, not timed
        os.sync()  # written back first, so the backup's fsyncs do not pay for the copy
        t0 = perf()
        report = store.backup(dest)
        secs = perf() - t0
        assert report.incremental and report.events == events
        return Sample(0, secs, {"bytes": report.bytes_copied})

    def full(d: Path) -> Sample:
        os.sync()
        t0 = perf()
        report = store.backup(d / "backup")
        return Sample(0, perf() - t0, {"bytes": report.bytes_copied})

    peers = [
        Peer("incremental", "eventpak", f"store.backup(dest) after {NEW_EVENTS:,} new events", incremental),
        Peer("full", "eventpak", "store.backup(new folder)", full),
    ]
    b.run_case("incremental", f"a backup of {events:,} events, seconds", peers)
    b.rows.append(
        Row(
            "incremental",
            "incremental",
            unit="seconds",
            ratio=("incremental", "full", "incremental / full"),
            aim="<= 0.05",
            check=lambda v, r: r is not None and r <= 0.05,
        )
    )
    b.rows.append(Row("incremental", "full", unit="seconds"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    description = (__doc__ or "").split("\n\n")[0]
    p = argparse.ArgumentParser(prog="python -m benches.backup", description=description)
    p.add_argument("--quick", action="store_true", help="small smoke run")
    p.add_argument("--events", type=int, help="events in the store (default 1,000,000; quick 20,000)")
    p.add_argument("--rounds", type=int, help="rounds per case (default 3; quick 2)")
    p.add_argument("--dir", help="parent directory for the temporary stores (default: the system temp dir)")
    p.add_argument(
        "--json",
        help="where to write the JSON (default benches/results/backup.json; quick backup-quick.json)",
    )
    a = p.parse_args(argv)
    if a.events is None:
        a.events = 20_000 if a.quick else 1_000_000
    if a.rounds is None:
        a.rounds = 2 if a.quick else 3
    if a.json is None:
        a.json = str(RESULTS_DIR / ("backup-quick.json" if a.quick else "backup.json"))
    if min(a.events, a.rounds) < 1:
        p.error("--events and --rounds must be positive")
    return a


def markdown(b: Bench, rows: list[dict[str, Any]], machine: dict[str, Any], size: int) -> str:
    a = b.args
    lines = [
        *machine_lines(machine),
        f"Settings: events={a.events:,} ({size / 1e6:,.1f} MB of segments), rounds={a.rounds}, "
        f"incremental after {NEW_EVENTS:,} new events, warm page cache",
    ]
    return report_text(lines, b, rows, label="Cases")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = perf()
    with tempfile.TemporaryDirectory(prefix="eventpak-backup-bench-", dir=args.dir) as tmp:
        root = Path(tmp)
        machine = machine_info(root)
        b = Bench(args, root)
        data_dir, base = root / "data", root / "base-backup"
        with ep.Store.open(data_dir, sync="never") as store:
            fill(store, 0, args.events - NEW_EVENTS)
            store.backup(base)
            fill(store, args.events - NEW_EVENTS, NEW_EVENTS)
        with ep.Store.open(data_dir, read_only=True) as store:
            size = store.stats()["bytes"]
            full_case(b, store, data_dir, args.events)
            incremental_case(b, store, base, args.events)
        b.notes.append(
            "the backup fsyncs every file and folder it writes once; cp -r fsyncs nothing, so the "
            "backup does more for its figure"
        )
    finish_run(
        b, argv, machine, started, lambda rows: markdown(b, rows, machine, size), module="benches.backup"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
