"""Finding the events a handler fails on, for workers with ``dead_letter_after=n``.

:class:`Isolation` decides, for one batch a worker pulled, what to deliver next, what to
park, how far the position may be committed and which failures count against the restart
budget. It does no I/O and knows no event loop: a thread worker and an asyncio worker
drive it the same way::

    isolation = Isolation(batch, n)
    while (delivery := isolation.delivery) is not None:
        try:
            handler(delivery)
        except Exception as error:
            step = isolation.failed(error)
        else:
            step = isolation.succeeded()
        # then, in this order: park step.park (durably), commit through step.commit,
        # and count each of step.charged as one restart against the budget

The rule: the whole batch is delivered again at once (no backoff) until it has failed ``n``
times; then it is split in halves, delivered in order. A part of several events that fails
once is split again; a single event that fails ``n`` times is parked. A part that goes
through is committed. A failure is forgiven (it never counts against the budget) when the
delivery that failed held an event that ends up parked; a failure whose delivery turns out to
hold no parked event (the handler failed, then went through on the same events) is charged,
once everything it held is handled: one restart each.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from ._native import Event

__all__ = ["Isolation", "Parking", "Step"]


@dataclass(frozen=True)
class Parking:
    """An event to park as a dead letter: it failed alone ``dead_letter_after`` times.
    ``attempts`` counts every failed delivery that held it; ``error`` is the last failure."""

    event: Event
    error: BaseException
    attempts: int


@dataclass(frozen=True)
class Step:
    """What a worker does after one delivery, in this order: park ``park`` and make it
    durable; commit its position through ``commit`` (``None``: leave it); count each error in
    ``charged`` as one restart against its budget (and stop when the budget has no room).
    ``forgiven`` counts the failures settled as belonging to a parked event."""

    park: Parking | None = None
    commit: Event | None = None
    charged: tuple[BaseException, ...] = ()
    forgiven: int = 0


_RETRY = Step()


@dataclass
class _Part:
    """A slice ``[start, end)`` of the batch still to deliver; ``depth`` 0 is the batch."""

    start: int
    end: int
    depth: int
    failures: int = 0


class Isolation:
    """One pulled batch, delivered until each of its events is handled or parked."""

    def __init__(self, batch: Sequence[Event], dead_letter_after: int) -> None:
        if not batch:
            raise ValueError("an isolation needs a batch of at least one event")
        if isinstance(dead_letter_after, bool) or not isinstance(dead_letter_after, int):
            raise TypeError(f"dead_letter_after must be an int, not {type(dead_letter_after).__name__}")
        if dead_letter_after < 1:
            raise ValueError(f"dead_letter_after must be at least 1, got {dead_letter_after}")
        self._batch = list(batch)
        self._limit = dead_letter_after
        self._parts: deque[_Part] = deque([_Part(0, len(self._batch), 0)])
        self._attempts = [0] * len(self._batch)
        self._parked: set[int] = set()
        # Failures not settled yet: the slice the failed delivery held, and its error.
        self._unsettled: list[tuple[int, int, BaseException]] = []

    @property
    def delivery(self) -> list[Event] | None:
        """The events to hand to the handler next; ``None`` once every event is handled or
        parked."""
        if not self._parts:
            return None
        part = self._parts[0]
        return self._batch[part.start : part.end]

    @property
    def done(self) -> bool:
        """True once every event of the batch is handled or parked."""
        return not self._parts

    @property
    def parked(self) -> list[Event]:
        """The events parked so far, in order."""
        return [self._batch[i] for i in sorted(self._parked)]

    def succeeded(self) -> Step:
        """The current delivery went through: it is committed."""
        part = self._current()
        self._parts.popleft()
        return self._settle(part.end, None)

    def failed(self, error: BaseException) -> Step:
        """The current delivery raised ``error``: deliver it again, split it, or park it."""
        part = self._current()
        part.failures += 1
        self._unsettled.append((part.start, part.end, error))
        for i in range(part.start, part.end):
            self._attempts[i] += 1
        size = part.end - part.start
        if size == 1:
            if part.failures < self._limit:
                return _RETRY
            self._parts.popleft()
            self._parked.add(part.start)
            return self._settle(part.end, Parking(self._batch[part.start], error, self._attempts[part.start]))
        # The batch as pulled gets its n deliveries; a smaller part is split at its first failure.
        if part.failures < (self._limit if part.depth == 0 else 1):
            return _RETRY
        self._parts.popleft()
        middle = part.start + size // 2
        self._parts.extendleft(
            [_Part(middle, part.end, part.depth + 1), _Part(part.start, middle, part.depth + 1)]
        )
        return _RETRY

    def _current(self) -> _Part:
        if not self._parts:
            raise RuntimeError("the batch is done: there is no delivery to report on")
        return self._parts[0]

    def _settle(self, resolved: int, parking: Parking | None) -> Step:
        """Events before ``resolved`` are handled or parked: settles the failures whose
        outcome is now known and says how far the position may move."""
        charged: list[BaseException] = []
        forgiven = 0
        unsettled = []
        for start, end, error in self._unsettled:
            if any(start <= i < end for i in self._parked):
                forgiven += 1
            elif end <= resolved:
                charged.append(error)
            else:
                unsettled.append((start, end, error))
        self._unsettled = unsettled
        return Step(parking, self._batch[resolved - 1], tuple(charged), forgiven)
