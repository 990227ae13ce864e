"""What a supervised worker is given: its config, the handler's signature, the actions a
handler answers with, and the witness durable handlers receive. Shared by the thread
workers of :mod:`eventpak.worker` and any other driver of the same semantics."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ._native import Cursor, CursorGapConfig, Event, Region
from .errors import InvalidConfig
from .restart import RestartPolicy, check_count

if TYPE_CHECKING:
    from .store import Store

__all__ = ["AtLeastOnce", "CursorWorkerAction", "CursorWorkerConfig", "Handler", "check_worker_args"]


class CursorWorkerAction(enum.Enum):
    """What a handler tells its worker after a batch."""

    CONTINUE = "continue"
    """Commit the batch (persist the position when durable) and go on."""
    STOP = "stop"
    """Commit the batch, then stop."""
    STOP_WITH_ROLLBACK = "stop_with_rollback"
    """Rewind to the last committed position, persist nothing, stop."""


@dataclass(frozen=True)
class AtLeastOnce:
    """Handed to the handlers of durable workers: delivery is at-least-once across
    restarts, resuming after the last checkpoint of ``checkpoint_id``."""

    checkpoint_id: str


def _default_restart() -> RestartPolicy:
    return RestartPolicy.bounded(5, 60_000)


@dataclass(frozen=True)
class CursorWorkerConfig:
    """Options of :meth:`Store.cursor_worker`.

    ``restart`` defaults to ``RestartPolicy.bounded(5, 60_000)`` with backoff. An idle
    worker waits in one native call until a commit or ``stop()`` wakes it; ``idle_sleep``
    (seconds) is validated and kept for compatibility, waking does not depend on it.
    """

    batch_size: int = 64
    idle_sleep: float = 0.01
    restart: RestartPolicy = field(default_factory=_default_restart)
    checkpoint_id: str | None = None
    gap_observation: CursorGapConfig = field(default_factory=CursorGapConfig.disabled)
    standby: bool = False
    """With a ``checkpoint_id``: when another worker (in this or another process sharing the
    data dir) already runs that checkpoint, wait and take over from its last checkpoint
    within a second of it stopping or its process dying, instead of raising
    ``ep.CheckpointInUse``. ``handle.is_active`` says which one runs."""
    dead_letter_after: int | None = None
    """With an int ``n`` (needs a ``checkpoint_id``): a batch that fails ``n`` times is
    delivered again in smaller parts until the failing events are found; each is parked as
    an ``eventpak.dead_letter`` event (``store.dead_letters(checkpoint_id)``) and the worker
    goes on past it. Those failures neither count against ``restart`` nor wait its backoff.
    ``None``: a failing batch stops or restarts the worker as ``restart`` says."""

    def __post_init__(self) -> None:
        check_count("batch_size", self.batch_size, 1)
        idle = self.idle_sleep
        if isinstance(idle, bool) or not isinstance(idle, (int, float)) or not 0 < idle < 3600:
            raise InvalidConfig(f"idle_sleep must be seconds in (0, 3600), got {idle!r}")
        if not isinstance(self.restart, RestartPolicy):
            raise InvalidConfig(f"restart must be an ep.RestartPolicy, not {type(self.restart).__name__}")
        if self.checkpoint_id is not None:
            Cursor.validate_checkpoint_id(self.checkpoint_id)
        if not isinstance(self.gap_observation, CursorGapConfig):
            got = type(self.gap_observation).__name__
            raise InvalidConfig(f"gap_observation must be an ep.CursorGapConfig, not {got}")
        if not isinstance(self.standby, bool):
            raise InvalidConfig(f"standby must be a bool, not {type(self.standby).__name__}")
        if self.standby and self.checkpoint_id is None:
            # Standby is for the lease of a durable checkpoint: without one there is nothing
            # to wait for, and the flag would be silently ignored.
            raise InvalidConfig("standby needs a checkpoint_id: a standby waits for its checkpoint's lease")
        if self.dead_letter_after is not None:
            check_count("dead_letter_after", self.dead_letter_after, 1)
            if self.checkpoint_id is None:
                raise InvalidConfig(
                    "dead_letter_after needs a checkpoint_id: dead letters are kept per checkpoint, "
                    "and a worker only moves past a parked event by committing a durable position"
                )


def check_worker_args(region: object, handler: object, config: object) -> CursorWorkerConfig:
    """The worker's config (the default one for ``None``), once its arguments are checked:
    before a worker starts, since it would only meet a bad one at its first poll."""
    if not isinstance(region, Region):
        raise TypeError(f"region must be an ep.Region, not {type(region).__name__}")
    if not callable(handler):
        raise TypeError(f"handler must be callable, not {type(handler).__name__}")
    if config is None:
        return CursorWorkerConfig()
    if not isinstance(config, CursorWorkerConfig):
        raise TypeError(f"config must be an ep.CursorWorkerConfig, not {type(config).__name__}")
    return config


class Handler(Protocol):
    """The callable a worker drives: ``handler(batch, store, witness)``, positionally."""

    def __call__(
        self, batch: list[Event], store: Store, witness: AtLeastOnce | None, /
    ) -> CursorWorkerAction | None: ...


def checked_action(outcome: object) -> CursorWorkerAction:
    """What a handler's return value tells its worker: ``None`` is ``CONTINUE``; anything but
    a ``CursorWorkerAction`` raises ``TypeError`` (a failure of the handler)."""
    if outcome is None:
        return CursorWorkerAction.CONTINUE
    if not isinstance(outcome, CursorWorkerAction):
        raise TypeError(f"handler returned {outcome!r}, not a CursorWorkerAction")
    return outcome
