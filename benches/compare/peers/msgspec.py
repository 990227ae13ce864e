"""The msgspec reference (a benchmark-only peer): its msgpack codec alone, with no store, on the
same payloads, to show how close eventpak's whole write or read path comes to the codec alone.
``AVAILABLE`` is false when msgspec is not installed; its rows are then left out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benches.compare.harness import PAYLOADS

try:
    import msgspec
except ImportError:  # pragma: no cover - msgspec is in requirements-dev.txt
    msgspec = None

AVAILABLE = msgspec is not None


def version() -> str | None:
    return getattr(msgspec, "__version__", None)


def encode_step(idx: list[int]) -> Callable[[int], Any]:
    """(l): one ``Encoder().encode`` per payload of ``len(idx)`` pool payloads per call, in the
    same shape of loop as the batch it is compared with; returns the list of bytes."""
    encode = msgspec.msgpack.Encoder().encode

    def step(n: int) -> Any:
        return [encode(PAYLOADS[j]) for j in idx]

    return step


def decode_chunks(chunks: list[list[bytes]]) -> Callable[[], int]:
    """(e): ``Decoder().decode`` of every value of ``chunks``, nothing kept, in the same shape of
    loop as the cursor read it is compared with (one list per batch); returns the count."""
    decode = msgspec.msgpack.Decoder().decode

    def read() -> int:
        seen = 0
        for chunk in chunks:
            for data in chunk:
                decode(data)
            seen += len(chunk)
        return seen

    return read
