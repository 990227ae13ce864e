"""The eventsourcing peer of (j): an ``Aggregate`` created with the first deposit, one decorated
method per kind, stored by an ``Application`` in a SQLite file and read back with
``repository.get``. ``AVAILABLE`` is false when the library is not installed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from benches._workload import POOL_MASK
from benches.compare.harness import DEPOSIT, PAYLOADS

try:
    from eventsourcing.application import Application as EsApplication
    from eventsourcing.domain import Aggregate as EsAggregate
    from eventsourcing.domain import event as es_event
except ImportError:  # pragma: no cover - eventsourcing is in requirements-dev.txt
    EsApplication = None

AVAILABLE = EsApplication is not None

if EsApplication is not None:

    class EsAccount(EsAggregate):
        """The eventsourcing peer of (j): created with the first deposit, then one method per kind."""

        def __init__(self, amount: int, currency: str, ref: str, note: str) -> None:
            self.balance = amount

        @es_event("Deposited")
        def deposit(self, amount: int, currency: str, ref: str, note: str) -> None:
            self.balance += amount

        @es_event("Noted")
        def add_note(self, amount: int, currency: str, ref: str, note: str) -> None:
            pass

    class EsBank(EsApplication):
        pass


def es_env(path: Path) -> dict[str, str]:
    """eventsourcing's configuration (its environment variables, given to the Application): SQLite
    in a file, no snapshots, no aggregate cache, so every repository.get replays every event."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(path),
        "IS_SNAPSHOTTING_ENABLED": "n",
        "AGGREGATE_CACHE_MAXSIZE": "",
    }


def open_app(path: Path) -> Any:
    """The application over the SQLite file at ``path`` (close it with ``app.close()``)."""
    return EsBank(env=es_env(path))


def load_entity(path: Path, n: int, kind_of: Callable[[int], str]) -> Any:
    """Stores an n-event aggregate (event 0 is its ``Created`` event, then one method call per event,
    saved every 1000) in the SQLite file at ``path``; returns its id."""
    app = open_app(path)
    account = EsAccount(**PAYLOADS[0])  # event 0 (a deposit) is the aggregate's Created event
    for i in range(1, n):
        payload = PAYLOADS[i & POOL_MASK]
        if kind_of(i) == DEPOSIT:
            account.deposit(**payload)
        else:
            account.add_note(**payload)
        if i % 1000 == 999:
            app.save(account)
    app.save(account)
    app.close()
    if account.version != n:
        raise RuntimeError(f"the eventsourcing aggregate has version {account.version}, expected {n}")
    return account.id


def read_balance(app: Any, aggregate_id: Any) -> Callable[[], int]:
    """(j): ``repository.get`` replays every event of the aggregate; its balance is the fold."""
    return lambda: app.repository.get(aggregate_id).balance
