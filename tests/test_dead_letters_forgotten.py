"""Dead letters whose record was forgotten (``forget_entity("eventpak.dead_letter:<id>")``,
the way to erase a handler's error text, docs/lifecycle.md): no longer listed by
``store.dead_letters()`` nor counted by ``store.metrics()``, and ``eventpak dead-letters``
lists the others."""

from __future__ import annotations

import os
from pathlib import Path

import eventpak as ep
from cli_helpers import json_lines, run_cli
from eventpak.dead_letters import dead_letter_entity, park


def _fail(message: str) -> ValueError:
    try:
        raise ValueError(message)
    except ValueError as exc:
        return exc


def _parked_forgotten_then_parked(data_dir: Path, key: bytes) -> ep.Event:
    """Checkpoint ``mailer`` with two dead letters whose record is then forgotten and one
    parked after the forget. Returns the event of the last one."""
    with ep.Store.open(data_dir, encryption_key=key) as store:
        ada, bob, cid = (
            store.get(store.append((f"user:{n}", "s"), "signed_up", {"email": f"{n}@example.com"}).event_id)
            for n in (1, 2, 3)
        )
        assert park(store, "mailer", ada, _fail("cannot mail 1@example.com"), 1)
        assert park(store, "mailer", bob, _fail("cannot mail 2@example.com"), 1)
        assert park(store, "other", bob, _fail("kept"), 1)
        store.cursor(ep.Region.all()).commit("mailer")
        assert store.metrics()["checkpoints"]["mailer"]["dead_letters"] == 2
        store.forget_entity(dead_letter_entity("mailer"))
        assert store.dead_letters("mailer") == []
        assert store.metrics()["checkpoints"]["mailer"]["dead_letters"] == 0
        assert park(store, "mailer", cid, _fail("cannot mail 3@example.com"), 2)  # a new data key
        return cid


def test_a_forgotten_dead_letter_is_neither_listed_nor_counted(tmp_path: Path) -> None:
    data_dir, key = tmp_path / "d", ep.generate_encryption_key()
    cid = _parked_forgotten_then_parked(data_dir, key)
    for read_only in (False, True):
        with ep.Store.open(data_dir, encryption_key=key, read_only=read_only) as store:
            records = store.query(ep.Region.all().with_kind("eventpak.dead_letter"))
            assert len(records) == 4  # the forgotten records stay in the log, unreadable
            [letter] = store.dead_letters("mailer")
            assert letter.event.event_id == cid.event_id and letter.message == "cannot mail 3@example.com"
            assert letter.attempts == 2
            assert store.metrics()["checkpoints"]["mailer"]["dead_letters"] == 1
            assert [d.message for d in store.dead_letters("other")] == ["kept"]


def test_the_command_lists_the_dead_letters_that_were_not_forgotten(tmp_path: Path) -> None:
    data_dir, key = tmp_path / "d", ep.generate_encryption_key()
    cid = _parked_forgotten_then_parked(data_dir, key)
    env = {**os.environ, "EVENTPAK_ENCRYPTION_KEY": key.hex()}
    for args in (("dead-letters", str(data_dir)), ("dead-letters", str(data_dir), "mailer")):
        done = run_cli(*args, "--json", env=env)
        assert done.returncode == 0, done.stderr
        listed = [(r["checkpoint_id"], r["event"]["event_id"], r["message"]) for r in json_lines(done.stdout)]
        mailer = [entry for entry in listed if entry[0] == "mailer"]
        assert mailer == [("mailer", str(cid.event_id), "cannot mail 3@example.com")]
