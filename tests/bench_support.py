"""Running a bench's quick mode from a test: in a subprocess, its temporary stores in the test's
tmp dir, its JSON read back. The tests check what the bench reports, never a figure of it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def run_quick_bench(module: str, tmp_path: Path, timeout: float) -> tuple[dict[str, Any], str]:
    """Runs ``python -m <module> --quick`` (``timeout`` is a safety net against a hang) and
    returns its JSON document and its stdout; fails on a non-zero exit or a traceback."""
    out = tmp_path / f"{module.rsplit('.', 1)[-1]}-quick.json"
    done = subprocess.run(
        [sys.executable, "-m", module, "--quick", "--dir", str(tmp_path), "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(out.read_text()), done.stdout
