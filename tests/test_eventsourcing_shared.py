"""``eventpak.eventsourcing`` with ``EVENTPAK_SHARED=1``: several processes on one data dir, each
with its own application, one sequence of notification ids, one winner per aggregate version,
and a subscription in one process woken by another's commits."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import pytest

pytest.importorskip("eventsourcing")

from conftest import wait_until
from eventpak.eventsourcing import EventpakFactory
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.utils import Environment

WRITER = textwrap.dedent(
    """
    import sys, uuid
    from eventsourcing.persistence import IntegrityError, StoredEvent
    from eventsourcing.utils import Environment
    from eventpak.eventsourcing import EventpakFactory

    data_dir, contested, count = sys.argv[1], uuid.UUID(sys.argv[2]), int(sys.argv[3])
    factory = EventpakFactory(Environment(env={"EVENTPAK_DATA_DIR": data_dir, "EVENTPAK_SHARED": "1"}))
    recorder = factory.application_recorder()
    mine = uuid.uuid4()
    won = 0
    for version in range(1, count + 1):
        recorder.insert_events([StoredEvent(mine, version, "child", b"x")])
        try:  # the parent writes the same versions of `contested`
            recorder.insert_events([StoredEvent(contested, version, "child", b"c")])
            won += 1
        except IntegrityError:
            pass
    factory.close()
    print(won)
    """
)


def test_processes_share_one_application_sequence(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    count = 200
    factory = EventpakFactory(Environment(env={"EVENTPAK_DATA_DIR": data_dir, "EVENTPAK_SHARED": "1"}))
    try:
        recorder = factory.application_recorder()
        contested = uuid.uuid4()
        received: list[int] = []
        subscription = recorder.subscribe(gt=None, topics=["child"])

        def consume() -> None:
            with subscription:
                for notification in subscription:
                    received.append(notification.id)
                    if len(received) == count:
                        return

        consumer = threading.Thread(target=consume)
        consumer.start()
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, data_dir, str(contested), str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until(lambda: bool(received), timeout=60, what="the child's first event")  # then race it
        won = 0
        for version in range(1, count + 1):
            try:
                recorder.insert_events([StoredEvent(contested, version, "parent", b"p")])
                won += 1
            except IntegrityError:
                pass
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        consumer.join(timeout=30)
        assert not consumer.is_alive(), f"the subscription saw {len(received)} of the child's {count} events"

        # Each version of the contested aggregate was written once, by one of the two processes.
        assert won + int(out) == count
        versions = [s.originator_version for s in recorder.select_events(contested)]
        assert versions == list(range(1, count + 1))
        # One sequence of notification ids across both processes, without gaps.
        notifications = recorder.select_notifications(None, 10 * count)
        assert [n.id for n in notifications] == list(range(1, 2 * count + 1))
        assert received == sorted(received) and len(received) == count
    finally:
        factory.close()
