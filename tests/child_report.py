"""How the child writer programs of the kill tests report to their parent: one JSON object per
line on stdout, each written with a single ``os.write`` of less than PIPE_BUF bytes, so lines
from several threads never interleave and a line is either whole or absent when a kill lands."""

from __future__ import annotations

import json
import os
from typing import Any

PIPE_BUF = 4096


def emit(obj: dict[str, Any]) -> None:
    """Writes ``obj`` as one line, atomically."""
    data = (json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
    if len(data) >= PIPE_BUF:  # a longer write could be torn by the kill
        raise RuntimeError(f"report line of {len(data)} bytes")
    os.write(1, data)
