"""The raw peer: length-prefixed msgpack records appended with ``os.write``, then ``os.fdatasync``."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path

from benches._workload import POOL_MASK
from benches.compare.harness import PAYLOADS, packb

U32 = struct.Struct("<I")  # raw file records: length prefix + msgpack payload


def open_log(d: Path) -> int:
    """An ``O_APPEND`` file descriptor on ``d/raw.log`` (close it with ``os.close``)."""
    return os.open(d / "raw.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


def durable_step(fd: int) -> Callable[[int], None]:
    """One raw durable record: length-prefixed msgpack, ``write``, then ``fdatasync``."""

    def step(n: int) -> None:
        body = packb(PAYLOADS[n & POOL_MASK])
        os.write(fd, U32.pack(len(body)) + body)
        os.fdatasync(fd)

    return step
