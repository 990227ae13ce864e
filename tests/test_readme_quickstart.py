"""The README's Quickstart runs as written."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def _quickstart_code() -> str:
    text = README.read_text(encoding="utf-8")
    heading = re.search(r"^## Quickstart\s*$", text, re.MULTILINE)
    assert heading, "README.md has no '## Quickstart' heading"
    block = re.search(r"^```python\n(.*?)^```", text[heading.end() :], re.MULTILINE | re.DOTALL)
    assert block, "no ```python block after the Quickstart heading"
    return block.group(1)


def test_readme_quickstart_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # keep its data dir inside tmp_path
    code = _quickstart_code()
    assert "import eventpak as ep" in code
    namespace: dict[str, object] = {"__name__": "__readme__"}
    exec(compile(code, str(README), "exec"), namespace)
    store = namespace["store"]
    assert store.closed
    assert Path(store.path).parent == tmp_path
