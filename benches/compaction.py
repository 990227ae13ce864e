"""Compaction against copying the same bytes.

    .venv/bin/python -m benches.compaction                # N = 1,000,000 events
    .venv/bin/python -m benches.compaction --quick        # smoke run, < 20 s

One case, two systems, interleaved rounds:

- ``eventpak``: ``store.compact(ep.Retention(kinds=["b"]))`` on a store of N events of the
  shared workload's payloads (half of kind ``a``, half ``b``, interleaved) in 16 MiB segments:
  it removes half the events of every sealed segment, rewriting each (read, copy of the kept
  frames, fsync, atomic swap). The store is a fresh copy of one template per round (copied and
  opened untimed).
- ``copy``: ``shutil.copyfile`` of the same sealed segment files, each followed by an
  ``fsync``: the cost of moving every byte the compaction reads once through the file system.

The rate is events of the sealed segments per second; the ratio ``eventpak / copy`` is what
compaction costs against that copy (the aim is at least 0.5).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import eventpak as ep

from benches._workload import SCOPE, make_entities, make_payloads
from benches.compare.harness import RESULTS_DIR, Bench, Peer, Row, Sample, perf
from benches.compare.report import (
    finish_run,
    machine_info,
    machine_lines,
    report_text,
)

BATCH = 4096
CASE = "compact-half"


def fill(path: Path, events: int, segment_bytes: int) -> None:
    payloads, entities = make_payloads(), make_entities()
    with ep.Store.open(path, sync="never", segment_max_bytes=segment_bytes) as store:
        for start in range(0, events, BATCH):
            items = [
                ((entities[i & 1023], SCOPE), "a" if i % 2 else "b", payloads[i & 1023])
                for i in range(start, min(events, start + BATCH))
            ]
            store.append_batch(items)


def sealed_segments(path: Path) -> list[Path]:
    """Every segment file but the newest (the active one, which compaction leaves alone)."""
    return sorted((path / "segments").glob("*.seg"))[:-1]


def sealed_events(path: Path, segment_bytes: int) -> int:
    with ep.Store.open(path, read_only=True, segment_max_bytes=segment_bytes) as store:
        newest = sorted((path / "segments").glob("*.seg"))[-1].read_bytes()
        first_active = int.from_bytes(newest[24:32], "little")
        return sum(1 for e in store.query(ep.Region.all()) if e.global_sequence < first_active)


def compaction_peer(template: Path, events: int, segment_bytes: int) -> Peer:
    def run(d: Path) -> Sample:
        store_dir = d / "store"
        shutil.copytree(template, store_dir)
        with ep.Store.open(store_dir, sync="never", segment_max_bytes=segment_bytes) as store:
            t0 = perf()
            report = store.compact(ep.Retention(kinds=["b"]))
            seconds = perf() - t0
        if report.removed * 2 not in (events, events + 1, events - 1):
            raise RuntimeError(f"removed {report.removed} of {events} sealed events")
        return Sample(events, seconds, {"removed": report.removed, "bytes_freed": report.bytes_freed})

    return Peer("eventpak", "eventpak", 'store.compact(ep.Retention(kinds=["b"])), half the events', run)


def copy_peer(template: Path, events: int) -> Peer:
    def run(d: Path) -> Sample:
        t0 = perf()
        for segment in sealed_segments(template):
            target = d / segment.name
            shutil.copyfile(segment, target)
            with open(target, "rb+") as fh:
                os.fsync(fh.fileno())
        return Sample(events, perf() - t0)

    return Peer("copy", "copy", "shutil.copyfile + fsync of the sealed segments", run)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benches.compaction", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument("--quick", action="store_true", help="small smoke run (< 20 s)")
    p.add_argument("--events", type=int, help="events in the store (default 1,000,000; quick 20,000)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 5; quick 2)")
    p.add_argument("--dir", help="parent directory for the temporary stores (default: the system temp dir)")
    p.add_argument(
        "--json",
        help="where to write the JSON (default benches/results/compaction.json; quick compaction-quick.json)",
    )
    a = p.parse_args(argv)
    if a.events is None:
        a.events = 20_000 if a.quick else 1_000_000
    if a.rounds is None:
        a.rounds = 2 if a.quick else 5
    a.segment_bytes = (256 << 10) if a.quick else (16 << 20)
    if a.json is None:
        a.json = str(RESULTS_DIR / ("compaction-quick.json" if a.quick else "compaction.json"))
    if a.events < 1000 or a.rounds < 1:
        p.error("--events must be at least 1,000 and --rounds at least 1")
    return a


def markdown(b: Bench, rows: list[dict[str, Any]], machine: dict[str, Any]) -> str:
    a = b.args
    lines = [
        *machine_lines(machine),
        f"Settings: events={a.events:,} ({b.setup['sealed_events']:,} in sealed segments of "
        f"{a.segment_bytes >> 10:,} KiB, {b.setup['sealed_bytes']:,} B), rounds={a.rounds}",
    ]
    return report_text(lines, b, rows, label="Cases")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = perf()
    with tempfile.TemporaryDirectory(prefix="eventpak-compaction-bench-", dir=args.dir) as tmp:
        root = Path(tmp)
        machine = machine_info(root)
        b = Bench(args, root)
        template = root / "template"
        fill(template, args.events, args.segment_bytes)
        sealed = sealed_events(template, args.segment_bytes)
        b.setup["sealed_events"] = sealed
        b.setup["sealed_bytes"] = sum(p.stat().st_size for p in sealed_segments(template))
        peers = [compaction_peer(template, sealed, args.segment_bytes), copy_peer(template, sealed)]
        b.run_case(
            CASE, "remove half the events of the sealed segments, events of those segments per second", peers
        )
        b.rows.append(Row(CASE, "eventpak"))
        b.rows.append(
            Row(
                CASE,
                "copy",
                ratio=("eventpak", "copy", "eventpak / copy"),
                aim=">= 0.5",
                check=lambda v, r: r is not None and r >= 0.5,
            )
        )
        b.notes.append(
            "the copy moves every byte of the sealed segments; compaction reads them all and writes half"
        )
        finish_run(
            b, argv, machine, started, lambda rows: markdown(b, rows, machine), module="benches.compaction"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
