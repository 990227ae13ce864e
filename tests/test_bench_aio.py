"""``python -m benches.aio --quick`` runs to the end and reports every line on every loop.

A smoke run of the asyncio bench (benches/aio.py): it checks that the bench works, never a
figure of it (performance is measured by the benches, not by timed tests).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

from bench_support import run_quick_bench


def test_aio_bench_quick_run(tmp_path: Path) -> None:
    doc, stdout = run_quick_bench("benches.aio", tmp_path, timeout=120)
    loops = ["asyncio"] + (["uvloop"] if importlib.util.find_spec("uvloop") else [])
    assert list(doc["machine"]["loops"]) == loops

    keys = {(row["case"], row["key"]) for row in doc["rows"]}
    for loop in loops:
        expected = {
            ("1", f"aio-{loop}"),
            ("1", f"to_thread-{loop}"),
            ("2", f"events-{loop}"),
            ("2", f"batches-{loop}"),
            ("2", f"pull-{loop}"),
            ("3", f"worker-{loop}"),
            ("3", f"subscribe-{loop}"),
            ("3", f"bridge-{loop}"),
            ("3", f"floor-{loop}"),
            ("3", f"task-{loop}"),
        }
        assert expected <= keys, expected - keys
    assert ("1", "threads") in keys
    for row in doc["rows"]:
        if row["case"] == "3" and row["unit"] == "us":
            # A latency taken from an append's return is signed: on a busy machine the
            # handler can see the event before the appending thread gets the GIL back (the
            # bench counts those as before_return), so only that a figure exists is checked.
            assert math.isfinite(row["median"]), row
            if row["ratio_label"] is not None:
                assert row["ratio"] is not None and math.isfinite(row["ratio"]), row
            continue
        assert row["median"] > 0, row
        if row["ratio_label"] is not None:
            assert row["ratio"] is not None and row["ratio"] > 0, row

    # Every delivery saw every event, every latency run every timed append.
    cases = doc["cases"]
    for rounds in (system["rounds"] for system in cases["2"]["systems"].values()):
        assert all(r["events"] == doc["settings"]["events"] for r in rounds)
    for rounds in (system["rounds"] for system in cases["3"]["systems"].values()):
        assert all(r["events"] == doc["settings"]["latency_appends"] for r in rounds)
    assert "| (3) |" in stdout
