"""eventpak.nats: scale-out over NATS JetStream (optional extra ``eventpak[nats]``).

:class:`Publisher` sends every event of a region to a JetStream stream, durably (a supervised
worker whose checkpoint only ever covers what JetStream acknowledged). :class:`Replica`
follows such a stream into a local read-only store that holds the origin's events verbatim
(same ids, global sequences, hashes and payload bytes), acknowledging only what it applied
durably."""

from __future__ import annotations

from ._publisher import Publisher
from ._replica import Replica

__all__ = ["Publisher", "Replica"]
