"""The report: machine information, the table rows, the Markdown table and the JSON document."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import eventpak as ep
import msgpack

from benches._workload import PAYLOAD_BYTES
from benches.compare.harness import WORKER_BATCH, Bench, log, median_ratio, perf
from benches.compare.peers import lmdb, sqlite

REPO_ROOT = Path(__file__).resolve().parents[2]
# Row unit -> the label the JSON carries (labels are unique: the table maps them back).
UNIT_LABELS = {
    "seconds": "s",
    "us": "us",
    "ns": "ns",
    "rate": "events/s",
    "mib": "MiB",
    "bytes": "B",
    "count": "count",
}


def machine_info(root: Path) -> dict[str, Any]:
    real = os.path.realpath(root)
    fs: dict[str, str] = {}
    try:
        best = ""
        with open("/proc/self/mounts") as fh:
            for line in fh:
                dev, mnt, fstype, opts = line.split()[:4]
                mnt = mnt.replace("\\040", " ")
                if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                    best, fs = mnt, {"mount": mnt, "type": fstype, "device": dev, "options": opts}
    except OSError:
        pass
    cpu = ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    except OSError:
        pass
    mem_gib = None
    with contextlib.suppress(ValueError, OSError):
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    commit = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    lmdb_version, py_lmdb_version = lmdb.versions()
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": mem_gib,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_impl": platform.python_implementation(),
        "tmp_dir": real,
        "filesystem": fs,
        "eventpak": getattr(ep, "__version__", "?"),
        "eventpak_git": commit,
        "sqlite": sqlite.VERSION,
        "lmdb": lmdb_version,
        "py_lmdb": py_lmdb_version,
        "msgpack": ".".join(map(str, msgpack.version)),
        "msgspec": package_version("msgspec"),
        "eventsourcing": package_version("eventsourcing"),
    }


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def fmt_value(v: float, unit: str) -> str:
    if unit == "seconds":
        return f"{v:.3f} s" if v >= 1 else f"{v * 1000:.1f} ms"
    if unit == "us":
        return f"{v:,.1f} us" if v < 1000 else f"{v / 1000:,.2f} ms"
    if unit == "ns":
        return f"{v:,.1f} ns" if abs(v) < 100 else f"{v:,.0f} ns"
    if unit == "mib":
        return f"{v:,.1f} MiB"
    if unit == "bytes":
        return f"{v:,.1f} B"
    if unit == "count":
        return f"{v:,.2f}"
    return f"{v:,.0f} ev/s"


def build_rows(b: Bench) -> list[dict[str, Any]]:
    out = []
    for row in b.rows:
        if row.case not in b.samples or row.key not in b.samples[row.case]:
            continue
        samples = b.samples[row.case][row.key]
        vals = [row.value(s) for s in samples]
        med = statistics.median(vals)
        ratio = median_ratio(b, row) if row.ratio else None
        ratio_label = row.ratio[2] if row.ratio else None
        if row.ratio_to is not None:
            ratio, ratio_label = med / row.ratio_to[0], row.ratio_to[1]
        met = None
        if row.check is not None and (ratio is not None or ratio_label is None):
            met = bool(row.check(med, ratio))
        peer = b.peers[row.case][row.key]
        out.append(
            {
                "case": row.case,
                "key": row.key,
                "system": peer.system,
                "config": f"{peer.config}: **{row.note}**" if row.note else peer.config,
                "unit": UNIT_LABELS[row.unit],
                "metric": row.metric or None,
                "median": med,
                "min": min(vals),
                "max": max(vals),
                "rounds": len(vals),
                "events_per_round": int(statistics.median(s.events for s in samples))
                if samples[0].events
                else None,
                "ratio_label": ratio_label,
                "ratio": ratio,
                "aim": row.aim or None,
                "met": met,
            }
        )
    return out


def machine_lines(m: dict[str, Any]) -> list[str]:
    """The machine, the versions and the temp dir's file system, one line each."""
    fs = m["filesystem"]
    return [
        f"Machine: {m['nproc']} CPUs ({m['cpu'] or 'unknown CPU'}), {m['memory_gib']} GiB RAM, "
        f"{m['platform']}",
        f"Python {m['python']}, eventpak {m['eventpak']} ({m['eventpak_git'] or 'no git'}), "
        f"sqlite {m['sqlite']}, lmdb {m['lmdb']}, msgpack {m['msgpack']}, msgspec {m.get('msgspec')}, "
        f"eventsourcing {m['eventsourcing']}",
        f"Temp dir: {m['tmp_dir']} on {fs.get('type', '?')} "
        f"({fs.get('device', '?')} mounted at {fs.get('mount', '?')})",
    ]


def table_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The Markdown table of the rows built by :func:`build_rows`."""
    lines = [
        "| Case | System | Configuration | Events/round | Result (median) | Range "
        "| Ratio (median of rounds) | Aim | Met |",
        "|---|---|---|---:|---:|---:|---|---|---|",
    ]
    units = {label: unit for unit, label in UNIT_LABELS.items()}
    for r in rows:
        unit = units[r["unit"]]
        rng = f"{fmt_value(r['min'], unit)} .. {fmt_value(r['max'], unit)}" if r["rounds"] > 1 else "1 run"
        ratio = f"{r['ratio_label']} = **{r['ratio']:.2f}**" if r["ratio"] is not None else ""
        met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
        events = f"{r['events_per_round']:,}" if r["events_per_round"] else ""
        lines.append(
            f"| ({r['case']}) | {r['system']} | {r['config']} | {events} | {fmt_value(r['median'], unit)} | "
            f"{rng} | {ratio} | {r['aim'] or ''} | {met} |"
        )
    return lines


def report_text(head: list[str], b: Bench, rows: list[dict[str, Any]], label: str = "Lines") -> str:
    """A run's printed report: ``head`` (the machine and settings lines), the table of ``rows``,
    what each case or line is (``label``: "Cases" or "Lines") and the run's notes."""
    titles = "; ".join(f"({k}) {v}" for k, v in b.titles.items())
    lines = [*head, "", *table_lines(rows), "", f"{label}: {titles}.", *(f"Note: {note}" for note in b.notes)]
    return "\n".join(lines)


def markdown(b: Bench, rows: list[dict[str, Any]], machine: dict[str, Any]) -> str:
    a = b.args
    lines = [
        *machine_lines(machine),
        f"Settings: events={a.events:,}, write_events={a.write_events:,}, durable {a.durable_seconds:g} s or "
        f"{a.durable_max_ops:,} calls per system and round, rounds={a.rounds}, threads={a.threads}, "
        f"batch={a.batch_size}, worker batch={WORKER_BATCH}, latency appends={a.latency_appends:,}, "
        f"payload={PAYLOAD_BYTES} B msgpack, projection events={a.projection_events:,}, "
        f"projection calls={a.projection_calls:,}",
    ]
    return report_text(lines, b, rows, label="Cases")


def json_document(
    b: Bench,
    args: argparse.Namespace,
    argv: list[str] | None,
    machine: dict[str, Any],
    rows: list[dict[str, Any]],
    table: str,
    total: float,
    module: str = "benches.compare",
) -> dict[str, Any]:
    """The JSON of a run: settings, machine, table rows and every round of every system."""
    return {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": [
            Path(sys.executable).name,
            "-m",
            module,
            *(argv if argv is not None else sys.argv[1:]),
        ],
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "machine": machine,
        "wall_seconds": round(total, 1),
        "rows": rows,
        "cases": {
            case: {
                "title": b.titles.get(case, ""),
                "systems": {
                    key: {
                        "system": b.peers[case][key].system,
                        "config": b.peers[case][key].config,
                        "rounds": [
                            {"events": s.events, "seconds": s.seconds, "events_per_s": s.rate, **s.extra}
                            for s in ss
                        ],
                    }
                    for key, ss in per.items()
                },
            }
            for case, per in b.samples.items()
        },
        "setup": b.setup,
        "notes": b.notes,
        "markdown": table,
    }


def finish_run(
    b: Bench,
    argv: list[str] | None,
    machine: dict[str, Any],
    started: float,
    table_of: Callable[[list[dict[str, Any]]], str],
    module: str = "benches.compare",
) -> None:
    """Ends a bench's run: its rows, its table (``table_of(rows)``) and its JSON, printed and
    written to ``--json``, with the wall time since ``started``."""
    total = perf() - started
    rows = build_rows(b)
    table = table_of(rows)
    doc = json_document(b, b.args, argv, machine, rows, table, total, module=module)
    write_run(table, total, doc, b.args.json)


def write_run(table: str, total: float, doc: dict[str, Any], path: str) -> None:
    """Prints a run's table and wall time, and writes its JSON document to ``path``."""
    print(table)
    print(f"\nTotal wall time {total:.0f} s.")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    log(f"wrote {out}")
