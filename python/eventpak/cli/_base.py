"""What the commands share: refusing what is not a data dir, opening one to read, and output.

Output goes to a terminal as tables and progress bars (drawn by ``rich`` when it is installed:
``pip install eventpak[cli]``), and anywhere else (a pipe, a file) as plain lines: one record per
line, fields separated by tabs, no header and no escape sequences. ``--json`` prints one JSON
object per line wherever the output goes.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import math
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .. import Event, Store

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "Column",
    "Refused",
    "UsageError",
    "check_data_dir",
    "count",
    "event_cells",
    "event_record",
    "open_for_reading",
    "print_json",
    "print_table",
    "progress_bar",
    "terminal_console",
    "to_json",
]


class Refused(Exception):
    """A command cannot do what was asked (exit status 1); printed as ``eventpak: <message>``."""


class UsageError(Exception):
    """The command line asks for something impossible (exit status 2, with the usage line)."""


def is_data_dir(path: Path) -> bool:
    """Whether ``path`` looks like an eventpak data dir (it has a ``segments/`` folder)."""
    return (path / "segments").is_dir()


def check_data_dir(data_dir: str) -> None:
    """Refuses a path that is not a data dir, before opening it touches anything."""
    path = Path(data_dir)
    if not path.exists():
        raise Refused(f"{data_dir}: no such directory")
    if not path.is_dir():
        raise Refused(f"{data_dir} is not a directory")
    if not is_data_dir(path):
        raise Refused(f"{data_dir} is not an eventpak data dir (it has no segments/ folder)")


def open_for_reading(data_dir: str) -> Store:
    """Opens an existing data dir read-only and shared: beside processes that share it (they keep
    writing, and one that starts later is not locked out) and beside nobody. A store held by an
    exclusive opener refuses with ``StoreLocked``."""
    check_data_dir(data_dir)
    return Store.open(data_dir, read_only=True, shared=True)


def count(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "count"  # argparse names the type in some messages
    return parse


# --- values as JSON and as table cells ---------------------------------------------------------


def to_json(value: Any) -> Any:
    """A payload (or any value the store holds) as plain JSON data: bytes become
    ``{"$bytes": "<base64>"}``, a ``datetime`` its ISO 8601 text, a UUID its text, a tuple a
    list, a float that JSON cannot carry (nan, inf) its ``repr``; dict keys become strings."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    return repr(value)


def _optional_id(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def event_record(event: Event) -> dict[str, Any]:
    """An event as a JSON object keyed by ``ep.Event`` attribute names: ids as text, hashes as
    hex, ``timestamp`` in ISO 8601, ``payload`` through :func:`to_json`."""
    return {
        "global_sequence": event.global_sequence,
        "event_id": str(event.event_id),
        "entity": event.entity,
        "scope": event.scope,
        "kind": event.kind,
        "entity_sequence": event.entity_sequence,
        "timestamp_us": event.timestamp_us,
        "timestamp": event.timestamp.isoformat(),
        "causation_id": _optional_id(event.causation_id),
        "correlation_id": str(event.correlation_id),
        "payload_version": event.payload_version,
        "stored_payload_version": event.stored_payload_version,
        "prev_hash": event.prev_hash.hex(),
        "hash": event.hash.hex(),
        "payload": to_json(event.payload),
    }


EVENT_COLUMNS_HELP = (
    "sequence, time (UTC, to the millisecond), entity, scope, kind, entity clock, payload (JSON)"
)


EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def format_time_us(timestamp_us: int) -> str:
    """Microseconds since the epoch as ``YYYY-MM-DD HH:MM:SS.fff`` (UTC, to the millisecond)."""
    moment = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(
        microseconds=timestamp_us
    )
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def payload_text(value: Any) -> str:
    """A payload as one line of JSON."""
    return json.dumps(to_json(value), ensure_ascii=False)


def event_cells(event: Event) -> list[str]:
    """An event as the cells of a table row or plain line (``EVENT_COLUMNS_HELP``)."""
    return [
        str(event.global_sequence),
        format_time_us(event.timestamp_us),
        event.entity,
        event.scope,
        event.kind,
        str(event.entity_sequence),
        payload_text(event.payload),
    ]


# --- output --------------------------------------------------------------------------------------


def terminal_console(stream: TextIO) -> Console | None:
    """A rich console drawing on ``stream`` when it is a terminal and rich is installed; else
    ``None``: the caller prints plain lines."""
    try:
        if not stream.isatty():
            return None
    except (AttributeError, ValueError):  # a replaced or closed stream
        return None
    try:
        from rich.console import Console
    except ImportError:
        return None
    return Console(file=stream, highlight=False)


@dataclass(frozen=True)
class Column:
    """A table column: right-aligned when ``numeric``; cut with an ellipsis (not wrapped) on a
    narrow terminal when ``wide``."""

    header: str
    numeric: bool = False
    wide: bool = False


_ESCAPES = str.maketrans({"\t": "\\t", "\n": "\\n", "\r": "\\r"})


def plain_line(cells: Iterable[str]) -> str:
    """Cells joined by tabs; a tab, newline or carriage return inside a cell (a dead letter's
    message may hold one) is written ``\\t``, ``\\n``, ``\\r``, so that one record is one line.
    A payload's JSON never holds one (JSON escapes them itself)."""
    return "\t".join(cell.translate(_ESCAPES) for cell in cells)


def print_table(
    out: TextIO,
    columns: Sequence[Column],
    rows: Iterable[Sequence[str]],
    *,
    title: str | None = None,
    page: int = 1000,
) -> int:
    """Prints ``rows``: a table on a terminal (one table per ``page`` rows, so that a long
    listing starts at once), plain lines elsewhere. Returns the number of rows."""
    console = terminal_console(out)
    printed = 0
    if console is None:
        for row in rows:
            out.write(plain_line(row) + "\n")
            printed += 1
        return printed
    from rich.table import Table
    from rich.text import Text

    def show(batch: list[Sequence[str]], first: bool) -> None:
        # Narrow columns keep their full width (the widest cell of the batch); the wide ones
        # share what is left and cut their cells with an ellipsis.
        widest = [max([len(c.header), *(len(row[i]) for row in batch)]) for i, c in enumerate(columns)]
        narrow = sum(w for w, c in zip(widest, columns, strict=True) if not c.wide)
        wide = sum(1 for c in columns if c.wide)
        room = (console.width - narrow - 3 * len(columns) - 1) // max(wide, 1)  # borders, padding
        table = Table(title=title if first else None)
        for width, column in zip(widest, columns, strict=True):
            table.add_column(
                column.header,
                justify="right" if column.numeric else "left",
                overflow="ellipsis" if column.wide else "fold",
                no_wrap=True,
                min_width=width if not column.wide else None,
                max_width=max(room, 8) if column.wide else None,
            )
        for row in batch:
            table.add_row(*(Text(cell) for cell in row))  # Text: no cell is read as markup
        console.print(table)

    batch: list[Sequence[str]] = []
    for row in rows:
        batch.append(row)
        printed += 1
        if len(batch) == page:
            show(batch, printed == page)
            batch = []
    if batch or printed == 0:
        show(batch, printed <= page)
    return printed


def print_json(out: TextIO, record: Any) -> None:
    """One JSON value on one line."""
    out.write(json.dumps(record, ensure_ascii=False) + "\n")


class _PlainBar:
    """``[#####.....]  42%  1.2 of 2.9 MB``, redrawn in place: the bar of a terminal without
    rich."""

    WIDTH = 30

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        if total <= 0:
            return
        filled = self.WIDTH * done // total
        bar = "#" * filled + "." * (self.WIDTH - filled)
        line = f"\r[{bar}] {100 * done // total:>3}%  {done / 1e6:,.1f} of {total / 1e6:,.1f} MB"
        self.out.write(line)
        self.out.flush()
        self.drawn = True

    def finish(self) -> None:
        if self.drawn:
            self.out.write("\n")


@contextmanager
def progress_bar(out: TextIO, description: str) -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done_bytes, total_bytes)`` callback drawing a bar on ``out`` when it is a
    terminal (rich's, or a plain one without rich), and doing nothing elsewhere. On a normal
    exit the bar is left at its final state."""
    try:
        tty = out.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty:
        yield lambda done, total: None
        return
    console = terminal_console(out)
    if console is None:
        plain = _PlainBar(out)
        try:
            yield plain
        finally:
            plain.finish()
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TaskProgressColumn, TimeRemainingColumn

    with Progress(
        "{task.description}",
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(description, total=None)
        last = [0, 0]

        def update(done: int, total: int) -> None:
            last[:] = [done, total]
            progress.update(task, completed=done, total=max(total, 1))

        yield update
        # Finished: the whole of what was checked (an empty log reports no bytes at all).
        total = max(last[1], 1)
        progress.update(task, completed=total, total=total)
