"""``python -m benches.compaction --quick`` runs to the end and reports its one case.

A smoke run of the compaction bench (benches/compaction.py): it checks that the bench works
and that its JSON holds both systems and the ratio, never a figure of it (performance is
measured by the benches, not by timed tests)."""

from __future__ import annotations

from pathlib import Path

from bench_support import run_quick_bench


def test_compaction_bench_quick_run(tmp_path: Path) -> None:
    doc, stdout = run_quick_bench("benches.compaction", tmp_path, timeout=300)
    rows = {(row["case"], row["key"]): row for row in doc["rows"]}
    assert rows[("compact-half", "eventpak")]["median"] > 0
    copy = rows[("compact-half", "copy")]
    assert copy["median"] > 0 and copy["ratio_label"] == "eventpak / copy" and copy["ratio"] > 0
    assert "eventpak / copy" in stdout
