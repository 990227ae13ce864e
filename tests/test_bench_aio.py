"""``python -m benches.aio --quick`` runs to the end and reports every line on every loop.

A smoke run of the asyncio bench (benches/aio.py): it checks that the bench works, never a
figure of it (performance is measured by the benches, not by timed tests).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_aio_bench_quick_run(tmp_path: Path) -> None:
    out = tmp_path / "aio-quick.json"
    done = subprocess.run(
        [sys.executable, "-m", "benches.aio", "--quick", "--dir", str(tmp_path), "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,  # a safety net against a hang; the quick run takes about 10 s
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    doc = json.loads(out.read_text())
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
        assert row["median"] > 0, row
        if row["ratio_label"] is not None:
            assert row["ratio"] is not None and row["ratio"] > 0, row

    # Every delivery saw every event, every latency run every timed append.
    cases = doc["cases"]
    for rounds in (system["rounds"] for system in cases["2"]["systems"].values()):
        assert all(r["events"] == doc["settings"]["events"] for r in rounds)
    for rounds in (system["rounds"] for system in cases["3"]["systems"].values()):
        assert all(r["events"] == doc["settings"]["latency_appends"] for r in rounds)
    assert "| (3) |" in done.stdout
