"""Comparing payload values as they read back: shared by the codec tests."""

from __future__ import annotations

import math
from typing import Any


def normalized(value: Any) -> Any:
    """What a value reads back as: tuples become lists."""
    if isinstance(value, list | tuple):
        return [normalized(v) for v in value]
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items()}
    return value


def same(a: Any, b: Any) -> bool:
    """Equality that tells bool from int and -0.0 from 0.0, and sees NaN as equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)
