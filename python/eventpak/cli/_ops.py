"""``checkpoints`` and ``dead-letters``: how far behind the workers are, and what they parked."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import CheckpointInfo, Cursor, DeadLetter, InvalidCheckpointId
from ..operations import checkpoint_ids, survey_checkpoints
from ._base import Refused, UsageError, event_record, format_time_us, open_for_reading
from ._output import Column, print_json, print_table

__all__ = ["register"]

CHECKPOINT_COLUMNS = [
    Column("checkpoint"),
    Column("region", wide=True),
    Column("position", numeric=True),
    Column("saved (UTC)"),
    Column("lag events", numeric=True),
    Column("lag seconds", numeric=True),
]
DEAD_LETTER_COLUMNS = [
    Column("checkpoint"),
    Column("seq", numeric=True),
    Column("entity"),
    Column("kind"),
    Column("attempts", numeric=True),
    Column("error"),
    Column("message", wide=True),
    Column("parked (UTC)"),
]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``checkpoints`` and ``dead-letters`` to the command line."""
    checkpoints = sub.add_parser(
        "checkpoints",
        help="list the durable checkpoints and how far behind their regions they are",
        description=(
            "Opens DIR read-only (as a shared reader) and lists every durable cursor "
            "checkpoint (store.checkpoints()), of running and stopped workers of any process: "
            "its region, its position (the last committed global sequence; - before the first "
            "commit), when it was saved, and its lag: the events of its region after the "
            "position and the age in seconds of the oldest of them (- when its region cannot "
            "be read by this version). On a terminal, a table; elsewhere one line per "
            "checkpoint, fields separated by tabs: checkpoint id, region identity, position, "
            "saved time (UTC), lag events, lag seconds. --json prints one JSON object per "
            "checkpoint, keyed by ep.CheckpointInfo attribute names (checkpoint_id, "
            "region_identity, position, saved_at_us, lag_events, lag_seconds). A checkpoint "
            "file that cannot be trusted is named on stderr after the others, and the exit "
            "status is then 1."
        ),
    )
    checkpoints.add_argument("data_dir", metavar="DIR", help="an eventpak data dir")
    checkpoints.add_argument("--json", action="store_true", help="one JSON object per checkpoint")
    checkpoints.set_defaults(run=_checkpoints, parser=checkpoints)

    dead = sub.add_parser(
        "dead-letters",
        help="list the events that workers parked as dead letters",
        description=(
            "Opens DIR read-only (as a shared reader) and lists the dead letters "
            "(store.dead_letters()) of CHECKPOINT_ID, or of every checkpoint without it, oldest "
            "first: the parked event, how many deliveries failed, and the last failure. On a "
            "terminal, a table; elsewhere one line per dead letter, fields separated by tabs: "
            "checkpoint id, the event's global sequence, entity, kind, attempts, error type, "
            "message, parked time (UTC). --json prints one JSON object per dead letter, keyed "
            "by ep.DeadLetter attribute names (event, as inspect --json prints it; error_type, "
            "message, traceback, attempts, parked_at_us) and checkpoint_id. A CHECKPOINT_ID "
            "that names no checkpoint and has no dead letters is refused (exit status 1)."
        ),
    )
    dead.add_argument("data_dir", metavar="DIR", help="an eventpak data dir")
    dead.add_argument(
        "checkpoint_id",
        nargs="?",
        metavar="CHECKPOINT_ID",
        help="the checkpoint whose dead letters to list (default: every checkpoint's)",
    )
    dead.add_argument(
        "--json", action="store_true", help="one JSON object per dead letter, with its traceback"
    )
    dead.set_defaults(run=_dead_letters, parser=dead)


def _dash(value: object) -> str:
    return "-" if value is None else str(value)


def _checkpoint_cells(info: CheckpointInfo) -> list[str]:
    seconds = None if info.lag_seconds is None else f"{info.lag_seconds:.3f}"
    return [
        info.checkpoint_id,
        _dash(info.region_identity),
        _dash(info.position),
        format_time_us(info.saved_at_us),
        _dash(info.lag_events),
        _dash(seconds),
    ]


def _checkpoints(args: argparse.Namespace) -> int:
    with open_for_reading(args.data_dir) as store:
        infos, damaged = survey_checkpoints(store)
    if args.json:
        for info in infos:
            print_json(
                sys.stdout,
                {
                    "checkpoint_id": info.checkpoint_id,
                    "region_identity": info.region_identity,
                    "position": info.position,
                    "saved_at_us": info.saved_at_us,
                    "lag_events": info.lag_events,
                    "lag_seconds": info.lag_seconds,
                },
            )
    else:
        print_table(sys.stdout, CHECKPOINT_COLUMNS, [_checkpoint_cells(info) for info in infos])
        if not infos and not damaged and sys.stdout.isatty():
            print("no checkpoints")
    # Damaged checkpoints go to stderr, after every readable one, and fail the command.
    for error in damaged.values():
        print(f"eventpak: {error}", file=sys.stderr)
    return 1 if damaged else 0


def _dead_letter_record(checkpoint_id: str, letter: DeadLetter) -> dict[str, Any]:
    return {
        "checkpoint_id": checkpoint_id,
        "event": event_record(letter.event),
        "error_type": letter.error_type,
        "message": letter.message,
        "traceback": letter.traceback,
        "attempts": letter.attempts,
        "parked_at_us": letter.parked_at_us,
    }


def _dead_letter_cells(checkpoint_id: str, letter: DeadLetter) -> list[str]:
    return [
        checkpoint_id,
        str(letter.event.global_sequence),
        letter.event.entity,
        letter.event.kind,
        str(letter.attempts),
        letter.error_type,
        letter.message,
        format_time_us(letter.parked_at_us),
    ]


def _dead_letters(args: argparse.Namespace) -> int:
    if args.checkpoint_id is not None:
        try:
            Cursor.validate_checkpoint_id(args.checkpoint_id)
        except InvalidCheckpointId as exc:
            raise UsageError(str(exc)) from None
    with open_for_reading(args.data_dir) as store:
        known = checkpoint_ids(store)
        ids = known if args.checkpoint_id is None else [args.checkpoint_id]
        letters = [(cid, letter) for cid in ids for letter in store.dead_letters(cid)]
        if args.checkpoint_id is not None and args.checkpoint_id not in known and not letters:
            raise Refused(
                f"{args.data_dir} has no checkpoint {args.checkpoint_id!r} and no dead letters of it"
            )
        if args.json:
            for cid, letter in letters:
                print_json(sys.stdout, _dead_letter_record(cid, letter))
            return 0
        print_table(
            sys.stdout, DEAD_LETTER_COLUMNS, [_dead_letter_cells(cid, letter) for cid, letter in letters]
        )
    if not letters and sys.stdout.isatty():
        print("no dead letters")
    return 0
