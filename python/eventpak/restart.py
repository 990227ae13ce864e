"""Restart policies of supervised workers: how often a failing handler may be restarted,
and how long the worker waits before each restart."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from .errors import InvalidConfig, RestartBudgetExhausted

__all__ = ["RestartPolicy"]

DEFAULT_BACKOFF_MS = (50, 5_000)


_U64_MAX = 2**64 - 1


def check_count(name: str, value: object, minimum: int) -> None:
    """Raises ``ep.InvalidConfig`` unless ``value`` is an int (not a bool) of at least
    ``minimum`` that fits 64 bits, as every count the engine takes must."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidConfig(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise InvalidConfig(f"{name} must be at least {minimum}, got {value}")
    if value > _U64_MAX:
        raise InvalidConfig(f"{name} must be at most 2**64 - 1, got {value}")


@dataclass(frozen=True)
class RestartPolicy:
    """How often a handler that raises may be restarted (its batch re-delivered from the last
    committed position), and the backoff before each restart.

    ``max_restarts=None`` means no limit. With ``within_ms``, the limit counts restarts per
    window of that many milliseconds (the window starts again once it has elapsed); without,
    over the worker's life. Before each restart the worker waits ``backoff_ms[0]`` ms,
    doubling up to ``backoff_ms[1]``; a batch that succeeds resets it. ``stop()`` ends the
    wait at once.
    """

    max_restarts: int | None
    within_ms: int | None = None
    backoff_ms: tuple[int, int] = DEFAULT_BACKOFF_MS

    def __post_init__(self) -> None:
        if self.max_restarts is not None:
            check_count("max_restarts", self.max_restarts, 0)
        if self.within_ms is not None:
            check_count("within_ms", self.within_ms, 1)
        if isinstance(self.backoff_ms, list):
            # A pair read from JSON or YAML configuration arrives as a list; kept as the tuple
            # it stands for, so policies compare and hash alike however they were written.
            object.__setattr__(self, "backoff_ms", tuple(self.backoff_ms))
        if not isinstance(self.backoff_ms, tuple) or len(self.backoff_ms) != 2:
            raise InvalidConfig(f"backoff_ms must be a (first, most) pair of ints, not {self.backoff_ms!r}")
        first, most = self.backoff_ms
        check_count("backoff_ms[0]", first, 0)
        check_count("backoff_ms[1]", most, first)

    @classmethod
    def once(cls, *, backoff_ms: tuple[int, int] = DEFAULT_BACKOFF_MS) -> RestartPolicy:
        """One restart in the worker's life."""
        return cls(1, None, backoff_ms)

    @classmethod
    def never(cls, *, backoff_ms: tuple[int, int] = DEFAULT_BACKOFF_MS) -> RestartPolicy:
        """No restart: the first handler exception stops the worker."""
        return cls(0, None, backoff_ms)

    @classmethod
    def bounded(
        cls, max_restarts: int, within_ms: int, *, backoff_ms: tuple[int, int] = DEFAULT_BACKOFF_MS
    ) -> RestartPolicy:
        """At most ``max_restarts`` restarts per window of ``within_ms`` milliseconds (the
        default policy is ``bounded(5, 60_000)``)."""
        check_count("max_restarts", max_restarts, 0)
        check_count("within_ms", within_ms, 1)
        return cls(max_restarts, within_ms, backoff_ms)

    @classmethod
    def unlimited(cls, *, backoff_ms: tuple[int, int] = DEFAULT_BACKOFF_MS) -> RestartPolicy:
        """Restart after every failure, for ever (with backoff)."""
        return cls(None, None, backoff_ms)


class RestartBudget:
    """A worker's use of its policy: whether one more restart is allowed, and how long to
    wait before it."""

    def __init__(self, policy: RestartPolicy, clock: Callable[[], float]) -> None:
        self._policy = policy
        self._clock = clock
        self._window_start = clock()
        self._used = 0
        self._next_backoff_ms = policy.backoff_ms[0]

    def allow(self) -> bool:
        """Spends one restart if the policy has one left."""
        limit = self._policy.max_restarts
        if self._policy.within_ms is not None:
            now = self._clock()
            if (now - self._window_start) * 1000 >= self._policy.within_ms:
                self._window_start, self._used = now, 0
        if limit is not None and self._used >= limit:
            return False
        self._used += 1
        return True

    def charge(self, worker: str, error: BaseException) -> None:
        """Spends one restart on ``error``; raises ``ep.RestartBudgetExhausted`` (from it)
        when the policy has none left, which stops worker ``worker``."""
        if not self.allow():
            raise RestartBudgetExhausted(
                f"worker {worker}: handler raised {error!r} and {self._policy} allows no more restarts"
            ) from error

    def backoff_s(self) -> float:
        """The wait before this restart, in seconds; the next one waits twice as long. At
        most ``threading.TIMEOUT_MAX`` (about 292 years): a policy may name any u64 of
        milliseconds, and a longer wait would make the wait itself raise."""
        wait = self._next_backoff_ms
        self._next_backoff_ms = min(max(wait * 2, 1), self._policy.backoff_ms[1])
        return min(wait / 1000, threading.TIMEOUT_MAX)

    def succeeded(self) -> None:
        """A batch went through: the next failure starts the backoff over."""
        self._next_backoff_ms = self._policy.backoff_ms[0]
