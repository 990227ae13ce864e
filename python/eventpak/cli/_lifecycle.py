"""``eventpak compact`` and ``eventpak rotate-key``: the two commands that change a store in
place. Both need the data dir to themselves (an exclusive open: a store that any other process
holds is refused with ``StoreLocked``), and take an encrypted store's key from the environment."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from .. import StorageFailed, Store, StoreLocked
from ..retention import Retention
from ._base import (
    KEY_VARIABLE,
    LARGEST,
    Refused,
    UsageError,
    check_data_dir,
    count,
    encryption_key,
    kind,
    open_refusal,
    open_with_key,
)
from ._output import print_json, progress_bar, size
from ._signals import signals_held

NEW_KEY_VARIABLE = "EVENTPAK_NEW_ENCRYPTION_KEY"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    compact = sub.add_parser(
        "compact",
        help="remove old or operational events from the sealed segments (retention)",
        description=(
            "Opens DIR exclusively (no other process may have it open) and removes the events the "
            "rules select from its sealed segments: events older than --max-age seconds whose "
            "kind is one of --kind (any kind when none is given), except each entity's newest "
            "--keep-last among them. Kept events keep their sequences, ids and hashes. At least "
            "one rule is required. An encrypted store needs its key in "
            f"{KEY_VARIABLE} (64 hex digits)."
        ),
    )
    compact.add_argument("data_dir", metavar="DIR", help="an eventpak data dir")
    compact.add_argument(
        "--kind",
        action="append",
        dest="kinds",
        type=kind,
        metavar="KIND",
        help="a kind to remove (repeat for several)",
    )
    compact.add_argument(
        "--max-age", type=_seconds, metavar="SECONDS", help="remove only events older than this"
    )
    compact.add_argument(
        "--keep-last",
        type=count(0, LARGEST),
        default=0,
        metavar="N",
        help="keep each entity's newest N selected events",
    )
    compact.add_argument(
        "--json", action="store_true", help="print the report as one JSON object: removed, kept, bytes_freed"
    )
    compact.set_defaults(run=_compact, parser=compact)

    rotate = sub.add_parser(
        "rotate-key",
        help="replace the store key of an encrypted data dir",
        description=(
            "Opens DIR exclusively (no other process may have it open) with the key in "
            f"{KEY_VARIABLE} and wraps every data key again by the key in {NEW_KEY_VARIABLE} "
            "(both 64 hex digits, from the environment so that neither shows in ps). No payload "
            "is rewritten. From then on only the new key opens DIR; a crash during the rotation "
            "leaves DIR opening with exactly one of the two, so keep both until it succeeds."
        ),
    )
    rotate.add_argument("data_dir", metavar="DIR", help="an encrypted eventpak data dir")
    rotate.add_argument("--json", action="store_true", help="print one JSON object: data_keys")
    rotate.set_defaults(run=_rotate_key, parser=rotate)


def _seconds(text: str) -> float:
    """An argparse type: a number of seconds, at least 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0 or value == float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a finite number of at least 0, got {text!r}")
    return value


def _open_exclusive(data_dir: str, command: str) -> Store:
    check_data_dir(data_dir)
    try:
        return open_with_key(data_dir)
    except StorageFailed as exc:
        raise open_refusal(exc, data_dir, f"{command} changes the store in place") from exc
    except StoreLocked as exc:
        # The error's own advice (share the dir with shared=True) does not apply here: these
        # commands change the files other processes read, so they need the dir to themselves.
        if exc.pid is not None:
            holder = f"process {exc.pid}"
        elif exc.mode == "shared":
            holder = "processes sharing it"
        else:
            holder = "another process"
        raise Refused(
            f"{command} needs {data_dir} to itself, but it is open in {holder}: stop the service "
            "(every process that opens it), then run it again"
        ) from exc


def _compact(args: argparse.Namespace) -> int:
    if args.kinds is None and args.max_age is None and args.keep_last == 0:
        raise UsageError(
            "give at least one rule (--kind, --max-age or --keep-last): with none, every event "
            "of the sealed segments would be removed"
        )
    retention = Retention(max_age_s=args.max_age, kinds=args.kinds, keep_last_per_entity=args.keep_last)
    # Held to the end: once committed, closing the store and the report are part of the job.
    with signals_held("the compaction") as held:
        with _open_exclusive(args.data_dir, "compact") as store, progress_bar(sys.stderr, "compact") as bar:
            report = store.compact(retention, progress=held.progress(bar))
        if args.json:
            print_json(sys.stdout, dataclasses.asdict(report))
            return 0
        print(
            f"removed {report.removed:,} events, kept {report.kept:,} in the sealed segments, "
            f"{size(report.bytes_freed)} freed"
        )
    return 0


def _rotate_key(args: argparse.Namespace) -> int:
    new_key = encryption_key(NEW_KEY_VARIABLE)
    if new_key is None:
        raise Refused(f"{NEW_KEY_VARIABLE} must hold the new store key as 64 hex digits")
    if encryption_key() is None:
        raise Refused(f"{KEY_VARIABLE} must hold the current store key as 64 hex digits")
    # The rotation takes milliseconds and is atomic: a signal during it waits for it, so that
    # the operator always learns which key opens the store now.
    with signals_held("the key rotation") as held:
        with _open_exclusive(args.data_dir, "rotate-key") as store:
            held.start()
            wrapped = store.rotate_encryption_key(new_key)
        if args.json:
            print_json(sys.stdout, {"data_keys": wrapped})
            return 0
        print(f"{wrapped:,} data keys wrapped by the new key: open {args.data_dir} with it from now on")
    return 0
