"""eventpak.nats: scale-out over NATS JetStream (optional extra ``eventpak[nats]``).

:class:`Publisher` sends every event of a region to a JetStream stream, durably (a supervised
worker whose checkpoint only ever covers what JetStream acknowledged)."""

from __future__ import annotations

from ._publisher import Publisher

__all__ = ["Publisher"]
