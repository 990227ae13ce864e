"""Whether a value comes back from msgpack as it was: equal, and of the same types all the
way down. ``==`` alone is not enough to tell: an ``IntEnum`` equals its int, an
``OrderedDict`` a dict, a datetime in another zone its UTC twin, and each comes back as the
second."""

from __future__ import annotations

import datetime
from typing import Any

__all__ = ["comes_back_as_it_was"]

# Values of these types come back as themselves when they are equal.
_PLAIN = frozenset({str, int, float, bool, bytes, type(None)})


def comes_back_as_it_was(original: Any, decoded: Any) -> bool:
    """True when ``decoded`` (``original`` encoded and decoded) equals it with the same
    types throughout: only then may a cached copy stand in for the original."""
    kind = type(original)
    if kind is not type(decoded):
        return False
    if kind in _PLAIN:
        return bool(original == decoded) or original != original  # NaN stays NaN
    if kind is dict:
        return len(original) == len(decoded) and all(
            comes_back_as_it_was(key, back_key) and comes_back_as_it_was(value, back_value)
            for (key, value), (back_key, back_value) in zip(original.items(), decoded.items(), strict=True)
        )
    if kind is list:
        return len(original) == len(decoded) and all(
            comes_back_as_it_was(item, back) for item, back in zip(original, decoded, strict=True)
        )
    if kind is datetime.datetime:
        return bool(original == decoded) and original.tzinfo == decoded.tzinfo
    return False  # nothing else comes back from msgpack as what it was
