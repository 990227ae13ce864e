"""The Python boundary: eventpak's payload codec, its batch item conversion and its Event build,
side by side with the fastest msgpack codecs for Python, in one run.

    .venv/bin/python -m benches.codec              # full run, ~40 s on 2 cores
    .venv/bin/python -m benches.codec --quick      # smoke run, < 20 s
    .venv/bin/python -m benches.codec --lines enc-order,items --rounds 9

Lines (see benches/README.md, "The Python boundary"):

  (enc-flat), (enc-order), (enc-doc): ns per encode of a flat small dict, an order with two
      nested lines and a 4 KiB document (``benches._shapes``): ``eventpak._native.
      encode_payload`` (the store's own codec) against ``msgspec.msgpack.Encoder().encode``,
      ``ormsgpack.packb`` and ``msgpack.packb``
  (dec-flat), (dec-order), (dec-doc): ns per decode of the same shapes, every decoder given the
      same bytes: ``eventpak._native.decode_payload`` against ``msgspec.msgpack.Decoder().
      decode``, ``ormsgpack.unpackb`` and ``msgpack.unpackb``
  (items), (items-fresh): ``eventpak._native._convert_items`` of 1,000 ``(coord, kind,
      payload)`` tuples (as ``append_batch`` converts them, appending nothing), per item, minus
      ``encode_payload`` of the same payloads alone; with pre-built coordinates and one kind
      object, then with fresh str objects per item
  (event): N stored order events read through ``store.cursor(Region.all())`` in
      ``poll_batch(1000)`` batches touching every ``e.payload``, per event, minus
      ``decode_payload`` of the same stored bytes alone

Every call loop is timed as the best of ``--repeats`` blocks within a round; rounds are
interleaved and each ratio is the median of the per-round ratios, as in benches.compare, whose
harness and report this reuses. Before timing, every decoder is checked to return the payload
that was encoded, and every encoder's bytes to decode to it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import msgspec
import ormsgpack
from eventpak import _native

from benches import _boundary
from benches._shapes import DOCUMENT, DOCUMENT_BYTES, FLAT, ORDER
from benches.compare.harness import RESULTS_DIR, Bench, Peer, Row, perf
from benches.compare.report import (
    finish_run,
    machine_info,
    machine_lines,
    package_version,
    report_text,
)

SHAPES: dict[str, tuple[str, dict[str, Any]]] = {
    "flat": ("flat small dict", FLAT),
    "order": ("order payload", ORDER),
    "doc": (f"{DOCUMENT_BYTES // 1024} KiB document", DOCUMENT),
}
# (key, system, configuration, function) per direction; eventpak first, then the aim's peer.
ENCODERS: list[tuple[str, str, str, Callable[[Any], bytes]]] = [
    ("eventpak", "eventpak", "eventpak._native.encode_payload(v), the store's codec", _native.encode_payload),
    ("msgspec", "msgspec", "msgspec.msgpack.Encoder().encode(v)", msgspec.msgpack.Encoder().encode),
    ("ormsgpack", "ormsgpack", "ormsgpack.packb(v)", ormsgpack.packb),
    ("msgpack", "msgpack", "msgpack.packb(v)", msgpack.packb),
]
DECODERS: list[tuple[str, str, str, Callable[[bytes], Any]]] = [
    ("eventpak", "eventpak", "eventpak._native.decode_payload(b), the store's codec", _native.decode_payload),
    ("msgspec", "msgspec", "msgspec.msgpack.Decoder().decode(b)", msgspec.msgpack.Decoder().decode),
    ("ormsgpack", "ormsgpack", "ormsgpack.unpackb(b)", ormsgpack.unpackb),
    ("msgpack", "msgpack", "msgpack.unpackb(b)", msgpack.unpackb),
]
CODEC_LINES = [f"{d}-{s}" for d in ("enc", "dec") for s in SHAPES]
ALL_LINES = [*CODEC_LINES, "items", "items-fresh", "event"]


def check_codecs() -> None:
    """Every encoder's bytes decode to the payload, and every decoder returns the payload."""
    for name, (_label, value) in SHAPES.items():
        data = _native.encode_payload(value)
        for key, _system, _config, encode in ENCODERS:
            if _native.decode_payload(encode(value)) != value:
                raise RuntimeError(f"{key} encodes the {name} payload to other bytes than the value")
        for key, _system, _config, decode in DECODERS:
            if decode(data) != value:
                raise RuntimeError(f"{key} decodes the {name} payload to another value")


def codec_line(b: Bench, line: str) -> None:
    """One codec line: every system's ns per call on one shape, one direction."""
    direction, shape = line.split("-")
    label, value = SHAPES[shape]
    systems, arg = (ENCODERS, value) if direction == "enc" else (DECODERS, _native.encode_payload(value))
    calls = _boundary.calls_for(systems[0][3], arg, b.args.block_seconds)
    peers = [
        Peer(key, system, config, _boundary.call_loop(fn, arg, calls, b.args.repeats))
        for key, system, config, fn in systems
    ]
    verb = "encode" if direction == "enc" else "decode"
    size = len(_native.encode_payload(value))
    b.run_case(line, f"{verb} of the {label} ({size:,} B of msgpack), ns per call", peers)
    b.rows.append(Row(line, "eventpak", unit="ns", metric="ns_per_call"))
    for key, _system, _config, _fn in systems[1:]:
        row = Row(line, key, unit="ns", metric="ns_per_call", ratio=("eventpak", key, f"eventpak / {key}"))
        if key == "msgspec":
            row.aim, row.check = "<= 1.0", lambda v, r: r is not None and r <= 1.0
        b.rows.append(row)


# --------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    description = (__doc__ or "").split("\n\n")[0]
    p = argparse.ArgumentParser(prog="python -m benches.codec", description=description)
    p.add_argument("--quick", action="store_true", help="small smoke run (< 20 s)")
    p.add_argument("--rounds", type=int, help="interleaved rounds per line (default 7; quick 2)")
    p.add_argument(
        "--repeats", type=int, help="timed blocks per system and round, best kept (default 3; quick 2)"
    )
    p.add_argument(
        "--block-seconds", type=float, help="length of one timed block of calls (default 0.02; quick 0.005)"
    )
    p.add_argument("--batches", type=int, help="batches of 1,000 per block in (items) (default 20; quick 5)")
    p.add_argument("--events", type=int, help="stored events read in (event) (default 200,000; quick 20,000)")
    p.add_argument(
        "--clock",
        choices=sorted(_boundary.CLOCKS),
        default="cpu",
        help="what the loops are timed with: the process's CPU time, which leaves out waits for a "
        "core on a busy machine (default), or the wall clock",
    )
    p.add_argument("--lines", default=",".join(ALL_LINES), help="which lines, comma-separated (default all)")
    p.add_argument("--dir", help="parent directory for the temporary store (default: the system temp dir)")
    p.add_argument(
        "--json", help="where to write the JSON (default benches/results/codec.json; quick codec-quick.json)"
    )
    a = p.parse_args(argv)
    defaults = {
        "rounds": (7, 2),
        "repeats": (3, 2),
        "block_seconds": (0.02, 0.005),
        "batches": (20, 5),
        "events": (200_000, 20_000),
    }
    for name, (full, quick) in defaults.items():
        if getattr(a, name) is None:
            setattr(a, name, quick if a.quick else full)
    if a.json is None:
        a.json = str(RESULTS_DIR / ("codec-quick.json" if a.quick else "codec.json"))
    a.lines = [name.strip() for name in a.lines.split(",") if name.strip()]
    unknown = set(a.lines) - set(ALL_LINES)
    if unknown or not a.lines:
        p.error(f"--lines takes names among {', '.join(ALL_LINES)}")
    if min(a.rounds, a.repeats, a.batches, a.events) < 1 or a.block_seconds <= 0:
        p.error("sizes and times must be positive")
    return a


def codec_versions() -> dict[str, str | None]:
    return {name: package_version(name) for name in ("msgspec", "ormsgpack", "msgpack")}


def markdown(b: Bench, rows: list[dict[str, Any]], machine: dict[str, Any]) -> str:
    a = b.args
    codecs = ", ".join(f"{name} {v}" for name, v in machine["codecs"].items())
    lines = [
        *machine_lines(machine),
        f"Codecs: {codecs}",
        f"Settings: timed with {a.clock} time (time.{_boundary.CLOCKS[a.clock].__name__}), "
        f"rounds={a.rounds}, best of {a.repeats} blocks of ~{a.block_seconds * 1000:g} ms per system "
        f"and round, items: {a.batches} batches of {_boundary.BATCH:,} per block, event: {a.events:,} events",
    ]
    return report_text(lines, b, rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = perf()
    check_codecs()
    _boundary.use_clock(args.clock)
    with tempfile.TemporaryDirectory(prefix="eventpak-codec-bench-", dir=args.dir) as tmp:
        root = Path(tmp)
        machine = machine_info(root)
        machine["codecs"] = codec_versions()
        b = Bench(args, root)
        for line in ALL_LINES:  # always in this order, whatever the order of --lines
            if line not in args.lines:
                continue
            if line in CODEC_LINES:
                codec_line(b, line)
            elif line == "event":
                _boundary.event_line(b)
            else:
                _boundary.items_line(b, fresh=line == "items-fresh")
    finish_run(b, argv, machine, started, lambda rows: markdown(b, rows, machine), module="benches.codec")
    return 0


if __name__ == "__main__":
    sys.exit(main())
