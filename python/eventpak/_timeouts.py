"""Timeouts in seconds, as the blocking calls of workers and stores take them."""

from __future__ import annotations

import math
import threading

from .errors import InvalidArgument

__all__ = ["wait_seconds"]


def wait_seconds(timeout: object, name: str = "timeout") -> float | None:
    """``timeout`` as ``Thread.join`` can take it: ``None`` (no limit) stays ``None``, a
    number of seconds at least 0 stays itself, and one too long to wait for (``inf``,
    ``1e300``) means no limit, where ``Thread.join`` would raise ``OverflowError``. A negative
    or NaN timeout raises ``ep.InvalidArgument``; a non-number ``TypeError``."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"{name} must be a number of seconds or None, not {type(timeout).__name__}")
    if math.isnan(timeout) or timeout < 0:
        raise InvalidArgument(name, f"must be a number of seconds >= 0 or None, got {timeout}")
    return None if timeout >= threading.TIMEOUT_MAX else float(timeout)
