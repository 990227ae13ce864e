"""``inspect`` and ``tail``: the events of a region, listed or followed."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from .. import Event, InvalidArgument, InvalidRegion, InvalidTag, Region, Store
from ._base import EVENT_COLUMNS_HELP, LARGEST, UsageError, count, event_cells, event_record, open_for_reading
from ._output import Column, plain_line, print_json, print_table

__all__ = ["build_region", "register"]

PAGE = 1000  # events per query while listing
EVENT_COLUMNS = [
    Column("seq", numeric=True),
    Column("time (UTC)"),
    Column("entity"),
    Column("scope"),
    Column("kind"),
    Column("clock", numeric=True),
    Column("payload", wide=True),
]
PLAIN_HELP = (
    f"On a terminal, a table; elsewhere, one line per event, its fields separated by tabs: "
    f"{EVENT_COLUMNS_HELP}. --json prints one JSON object per event instead, keyed by "
    "ep.Event attribute names (global_sequence, event_id, entity, scope, kind, "
    "entity_sequence, timestamp_us, timestamp, causation_id, correlation_id, payload_version, "
    "stored_payload_version, prev_hash, hash, tags, payload); bytes in a payload are given as "
    '{"$bytes": "<base64>"}.'
)


def _clock_range(text: str) -> tuple[int, int]:
    """``START:END`` (inclusive; either side may be left out) or a single clock ``N``."""
    start_text, colon, end_text = text.partition(":")
    try:
        start = int(start_text) if start_text else 0
        end = (int(end_text) if end_text else LARGEST) if colon else start
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:END, START:, :END or N, got {text!r}") from None
    if start < 0 or end < 0:
        raise argparse.ArgumentTypeError(f"clocks are whole numbers of at least 0, got {text!r}")
    return start, end


def add_region_options(parser: argparse.ArgumentParser) -> None:
    """The options that choose a region (``ep.Region``); none given: every event."""
    group = parser.add_argument_group("region (default: every event)")
    group.add_argument(
        "--entity",
        metavar="NAME",
        help="events of entity NAME and of the entities in its namespace (NAME:...)",
    )
    group.add_argument("--exact", action="store_true", help="with --entity: of entity NAME only")
    group.add_argument("--scope", metavar="SCOPE", help="events of this scope only")
    kinds = group.add_mutually_exclusive_group()
    kinds.add_argument(
        "--kind",
        action="append",
        metavar="KIND",
        help="events of this kind (repeat for several kinds)",
    )
    kinds.add_argument("--kind-prefix", metavar="PREFIX", help="events whose kind starts with PREFIX")
    group.add_argument(
        "--tag",
        action="append",
        metavar="TAG",
        help="events carrying TAG (repeat: events carrying every tag given)",
    )
    group.add_argument(
        "--clock",
        type=_clock_range,
        metavar="START:END",
        help=(
            "events whose entity clock (entity_sequence) is within START..END, both included; "
            "either may be left out (5:, :9); N alone means N:N"
        ),
    )


def build_region(args: argparse.Namespace) -> Region:
    """The region the options name; a filter value the store refuses is a usage error."""
    if args.exact and args.entity is None:
        raise UsageError("--exact needs --entity")
    try:
        if args.entity is not None:
            region = Region.entity(args.entity, exact=args.exact)
            if args.scope is not None:
                region = region.with_scope(args.scope)
        elif args.scope is not None:
            region = Region.scope(args.scope)
        else:
            region = Region.all()
        if args.kind:
            region = region.with_kinds(args.kind)
        if args.kind_prefix is not None:
            region = region.with_kind_prefix(args.kind_prefix)
        if args.clock is not None:
            region = region.with_clock_range(*args.clock)
        if args.tag:
            region = region.with_tags(args.tag)
    except (InvalidRegion, InvalidArgument, InvalidTag) as exc:
        raise UsageError(str(exc)) from None
    return region


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``inspect`` and ``tail`` to the command line."""
    inspect = sub.add_parser(
        "inspect",
        help="list the events of a region",
        description=(
            "Opens DIR read-only (as a shared reader) and lists the visible events of a region "
            "in commit order, up to the newest one when the command started. " + PLAIN_HELP
        ),
    )
    inspect.add_argument("data_dir", metavar="DIR", help="an eventpak data dir")
    add_region_options(inspect)
    inspect.add_argument(
        "--after", type=count(0, LARGEST), metavar="SEQ", help="only events after global sequence SEQ"
    )
    inspect.add_argument("--limit", type=count(1), metavar="N", help="at most N events")
    inspect.add_argument("--json", action="store_true", help="one JSON object per event")
    inspect.set_defaults(run=_inspect, parser=inspect)

    tail = sub.add_parser(
        "tail",
        help="print the newest events of a region, or follow them (-f)",
        description=(
            "Opens DIR read-only (as a shared reader) and prints the last N events of a region. "
            "With -f it then follows: it prints each new event of the region as soon as it is "
            "committed, by this or any process sharing DIR, until Ctrl-C (exit status 130) or "
            "SIGTERM (exit status 143). One line per event, fields separated by tabs: "
            f"{EVENT_COLUMNS_HELP}; --json prints one JSON object per event instead, as "
            "inspect --json does."
        ),
    )
    tail.add_argument("data_dir", metavar="DIR", help="an eventpak data dir")
    add_region_options(tail)
    tail.add_argument("-f", "--follow", action="store_true", help="then follow new events")
    tail.add_argument(
        "-n",
        "--lines",
        type=count(0),
        default=10,
        metavar="N",
        help="how many of the newest events to print first (default: 10; 0 with -f: only new ones)",
    )
    tail.add_argument("--json", action="store_true", help="one JSON object per event")
    tail.set_defaults(run=_tail, parser=tail)


def _listed(store: Store, region: Region, after: int | None, limit: int | None) -> Iterator[Event]:
    """The region's events after ``after``, page by page, up to the head seen at the start."""
    head = store.head()
    if head is None:
        return
    while limit is None or limit > 0:
        page = store.query(region, after=after, limit=PAGE if limit is None else min(PAGE, limit))
        for event in page:
            if event.global_sequence > head:
                return
            yield event
        if len(page) < (PAGE if limit is None else min(PAGE, limit)):
            return
        after = page[-1].global_sequence
        if limit is not None:
            limit -= len(page)


def _inspect(args: argparse.Namespace) -> int:
    region = build_region(args)
    with open_for_reading(args.data_dir) as store:
        events = _listed(store, region, args.after, args.limit)
        if args.json:
            for event in events:
                print_json(sys.stdout, event_record(event))
        else:
            shown = print_table(sys.stdout, EVENT_COLUMNS, (event_cells(e) for e in events))
            if shown == 0 and sys.stdout.isatty():
                print("no events")
    return 0


def _last(store: Store, region: Region, n: int) -> list[Event]:
    """The region's newest ``n`` events: queried backwards from the head in growing windows,
    so that a large log is not read whole for a few events."""
    head = store.head()
    if head is None or n == 0:
        return []
    window = max(4 * n, 256)
    while True:
        after = head - window
        events = store.query(region, after=after if after >= 0 else None)
        if len(events) >= n or after < 0:
            return events[-n:]
        window *= 4


def _tail(args: argparse.Namespace) -> int:
    region = build_region(args)
    out = sys.stdout

    def show(event: Event) -> None:
        if args.json:
            print_json(out, event_record(event))
        else:
            out.write(plain_line(event_cells(event)) + "\n")

    with open_for_reading(args.data_dir) as store:
        mark = store.head()
        last = _last(store, region, args.lines)
        for event in last:
            show(event)
        out.flush()
        if not args.follow:
            return 0
        # Strictly after what was printed (or the head seen before the listing): nothing twice,
        # nothing committed since missed.
        after = last[-1].global_sequence if last else mark
        cursor = store.cursor(region, after=after)
        while True:
            # Blocks until a commit of any process wakes it; the timeout only bounds one wait.
            batch = cursor.pull_batch(256, 60.0)
            for event in batch:
                show(event)
            if batch:
                out.flush()
