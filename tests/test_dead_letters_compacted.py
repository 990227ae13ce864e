"""Dead letters whose parked event a compaction removed (docs/lifecycle.md): the event is gone,
so its dead letter is no longer listed by ``store.dead_letters()`` nor counted by
``store.metrics()``, and ``eventpak dead-letters`` lists the others."""

from __future__ import annotations

from pathlib import Path

import eventpak as ep
import pytest
from cli_helpers import json_lines, run_cli
from eventpak.dead_letters import park

R = ep.Region


def _fail(message: str) -> ValueError:
    try:
        raise ValueError(message)
    except ValueError as exc:
        return exc


def _parked_then_compacted(data_dir: Path) -> tuple[ep.Event, ep.Event]:
    """Checkpoint ``w1`` with two dead letters: of a ``debug`` event that retention then
    removes, and of an ``order`` event it keeps. Returns (removed, kept)."""
    with ep.Store.open(data_dir, segment_max_bytes=4096) as store:
        doomed = store.get(store.append(("order:1", "shop"), "debug", {"bad": True}).event_id)
        kept = store.get(store.append(("order:2", "shop"), "order", {"n": 2}).event_id)
        assert park(store, "w1", doomed, _fail("cannot handle"), 1)
        assert park(store, "w1", kept, _fail("cannot handle either"), 2)
        store.cursor(R.entity("order")).commit("w1")
        for i in range(60):  # seals the segment holding both parked events
            store.append(("other", "shop"), "filler", {"i": i, "pad": "x" * 100})
        assert len(store.dead_letters("w1")) == 2
        assert store.metrics()["checkpoints"]["w1"]["dead_letters"] == 2
        assert store.compact(ep.Retention(kinds=["debug"])).removed == 1
        return doomed, kept


def test_a_dead_letter_of_a_removed_event_is_neither_listed_nor_counted(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    doomed, kept = _parked_then_compacted(data_dir)
    for read_only in (False, True):
        with ep.Store.open(data_dir, read_only=read_only) as store:
            records = store.query(R.all().with_kind("eventpak.dead_letter"))
            assert len(records) == 2  # both dead-letter records are still in the log
            with pytest.raises(ep.EventNotFound):
                store.get(doomed.event_id)
            [letter] = store.dead_letters("w1")
            assert letter.event.event_id == kept.event_id and letter.message == "cannot handle either"
            assert store.metrics()["checkpoints"]["w1"]["dead_letters"] == 1


def test_the_command_lists_the_dead_letters_whose_event_is_still_there(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    _doomed, kept = _parked_then_compacted(data_dir)
    for args in (("dead-letters", str(data_dir)), ("dead-letters", str(data_dir), "w1")):
        done = run_cli(*args, "--json")
        assert done.returncode == 0, done.stderr
        records = json_lines(done.stdout)
        assert [(r["checkpoint_id"], r["event"]["event_id"]) for r in records] == [("w1", str(kept.event_id))]
