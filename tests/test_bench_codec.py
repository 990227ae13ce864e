"""``python -m benches.codec --quick`` runs to the end and reports every line.

A smoke run of the Python-boundary bench (benches/codec.py): it checks that the bench works and
that its JSON holds every line, never a figure of it (performance is measured by the benches,
not by timed tests). The bench's peers, msgspec and ormsgpack, are benchmark-only dependencies
(requirements-dev.txt, which `make test` installs); the bench runs in a subprocess and fails
there if one is missing.
"""

from __future__ import annotations

from pathlib import Path

from bench_support import run_quick_bench

PEERS = ("msgspec", "ormsgpack", "msgpack")
CODEC_LINES = [f"{d}-{s}" for d in ("enc", "dec") for s in ("flat", "order", "doc")]


def test_codec_bench_quick_run(tmp_path: Path) -> None:
    doc, stdout = run_quick_bench("benches.codec", tmp_path, timeout=120)
    assert set(doc["machine"]["codecs"]) == set(PEERS)

    rows = {(row["case"], row["key"], row["metric"]): row for row in doc["rows"]}
    for line in CODEC_LINES:
        assert rows[(line, "eventpak", "ns_per_call")]["median"] > 0
        for peer in PEERS:
            row = rows[(line, peer, "ns_per_call")]
            assert row["median"] > 0, row
            assert row["ratio_label"] == f"eventpak / {peer}" and row["ratio"] > 0, row
        assert rows[(line, "msgspec", "ns_per_call")]["aim"] == "<= 1.0"
    for line, total, alone in (
        ("items", "convert_ns", "encode_ns"),
        ("items-fresh", "convert_ns", "encode_ns"),
        ("event", "event_ns", "decode_ns"),
    ):
        assert rows[(line, "eventpak", total)]["median"] > 0
        assert rows[(line, "eventpak", alone)]["median"] > 0
        beyond = rows[(line, "eventpak", "beyond_ns")]
        assert beyond["aim"] is not None and beyond["met"] is not None, beyond

    # Every round of (event) read every stored event.
    rounds = doc["cases"]["event"]["systems"]["eventpak"]["rounds"]
    assert rounds and all(r["events"] == doc["settings"]["events"] for r in rounds)
    assert "| (enc-order) |" in stdout and "| (event) |" in stdout
    assert list(tmp_path.iterdir()) == [tmp_path / "codec-quick.json"]  # the temporary store is gone
