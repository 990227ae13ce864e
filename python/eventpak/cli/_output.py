"""How the commands print: tables and progress bars on a terminal (drawn by ``rich`` when it is
installed: ``pip install eventpak[cli]``), plain lines anywhere else (a pipe, a file): one record
per line, fields separated by tabs, no header and no escape sequences; JSON one value per line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Column", "plain_line", "print_json", "print_table", "progress_bar", "size", "terminal_console"]


def size(n: int) -> str:
    """``n`` bytes for a person: ``512 bytes``, ``23.4 kB``, ``1.2 MB``, ``3.0 GB``."""
    if n < 1000:
        return f"{n:,} byte" + ("" if n == 1 else "s")
    for unit, scale in (("kB", 1e3), ("MB", 1e6)):
        if n < scale * 1000:
            return f"{n / scale:,.1f} {unit}"
    return f"{n / 1e9:,.1f} GB"


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


# Every C0 control character and DEL: a dead letter's message may quote a payload holding
# escape sequences, which would drive the reader's terminal (or a pager) if printed raw.
_ESCAPES = str.maketrans(
    {chr(c): f"\\x{c:02x}" for c in [*range(0x20), 0x7F]} | {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
)


def plain_line(cells: Iterable[str]) -> str:
    """Cells joined by tabs; a tab, newline or carriage return inside a cell (a dead letter's
    message may hold one) is written ``\\t``, ``\\n``, ``\\r``, so that one record is one line,
    and any other control character as ``\\xNN``, so that none reaches the terminal. A
    payload's JSON never holds one (JSON escapes them itself)."""
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
    """One JSON value on one line, in ASCII (other characters as ``\\u`` escapes): valid JSON
    whatever the output's encoding."""
    out.write(json.dumps(record) + "\n")


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
