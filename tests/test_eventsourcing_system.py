"""The ``eventsourcing`` library's process applications and projection runners on
``eventpak.eventsourcing``: tracking records committed with a follower's new events, a runner
restarted over the same data dir that processes nothing twice, and a projection runner fed by a
subscription and waited for through its tracking recorder."""

from __future__ import annotations

from functools import singledispatchmethod
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import pytest

pytest.importorskip("eventsourcing")

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate, DomainEventProtocol, event
from eventsourcing.projection import EventSourcedProjection, EventSourcedProjectionRunner
from eventsourcing.system import ProcessApplication, SingleThreadedRunner, System


class Account(Aggregate):
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.balance = 0

    @event("Deposited")
    def deposit(self, amount: int) -> None:
        self.balance += amount


class Accounts(Application[UUID]):
    def open(self, owner: str) -> UUID:
        account = Account(owner=owner)
        self.save(account)
        return account.id

    def deposit(self, account_id: UUID, amount: int) -> None:
        account: Account = self.repository.get(account_id)
        account.deposit(amount)
        self.save(account)


class Tally(Aggregate):
    """How many deposits the follower saw, and their sum."""

    @staticmethod
    def create_id(name: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/tallies/{name}")

    def __init__(self, name: str) -> None:
        self.name = name
        self.deposits = 0
        self.total = 0

    @event("Counted")
    def count(self, amount: int) -> None:
        self.deposits += 1
        self.total += amount


def _count(app: Application[UUID], domain_event: Any, processing_event: ProcessingEvent[UUID]) -> None:
    try:
        tally: Tally = app.repository.get(Tally.create_id("all"))
    except AggregateNotFoundError:
        tally = Tally(name="all")
    tally.count(domain_event.amount)
    processing_event.collect_events(tally)


class Statistics(ProcessApplication[UUID]):
    @singledispatchmethod
    def policy(
        self, domain_event: DomainEventProtocol[UUID], processing_event: ProcessingEvent[UUID]
    ) -> None:
        if isinstance(domain_event, Account.Deposited):
            _count(self, domain_event, processing_event)


class StatisticsProjection(EventSourcedProjection[UUID]):
    topics = (f"{__name__}:Account.Deposited",)

    @singledispatchmethod
    def policy(
        self, domain_event: DomainEventProtocol[UUID], processing_event: ProcessingEvent[UUID]
    ) -> None:
        _count(self, domain_event, processing_event)


def _env(tmp_path: Path) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "eventpak.eventsourcing", "EVENTPAK_DATA_DIR": str(tmp_path / "data")}


def test_a_process_application_tracks_what_it_processed_across_restarts(tmp_path: Path) -> None:
    system = System(pipes=[[Accounts, Statistics]])
    runner: SingleThreadedRunner[UUID] = SingleThreadedRunner(system, env=_env(tmp_path))
    runner.start()
    accounts, statistics = runner.get(Accounts), runner.get(Statistics)
    alice = accounts.open("alice")
    for amount in (10, 20, 30):
        accounts.deposit(alice, amount)
    tally: Tally = statistics.repository.get(Tally.create_id("all"))
    assert (tally.deposits, tally.total) == (3, 60)
    last = accounts.recorder.max_notification_id()
    assert statistics.recorder.max_tracking_id("Accounts") == last
    runner.stop()

    runner = SingleThreadedRunner(system, env=_env(tmp_path))
    runner.start()  # pulls from its tracking record: nothing again
    accounts, statistics = runner.get(Accounts), runner.get(Statistics)
    tally = statistics.repository.get(Tally.create_id("all"))
    assert (tally.deposits, tally.total) == (3, 60)
    accounts.deposit(alice, 5)
    tally = statistics.repository.get(Tally.create_id("all"))
    assert (tally.deposits, tally.total) == (4, 65)
    assert statistics.recorder.max_tracking_id("Accounts") == accounts.recorder.max_notification_id()
    runner.stop()


def test_a_projection_runner_follows_a_subscription(tmp_path: Path) -> None:
    env = _env(tmp_path)
    with EventSourcedProjectionRunner(
        application_class=Accounts, projection_class=StatisticsProjection, env=env
    ) as runner:
        bob = runner.app.open("bob")
        for amount in (1, 2, 3, 4):
            runner.app.deposit(bob, amount)
        runner.wait(runner.app.recorder.max_notification_id(), timeout=30)
        tally: Tally = runner.projection.repository.get(Tally.create_id("all"))
        assert (tally.deposits, tally.total) == (4, 10)
