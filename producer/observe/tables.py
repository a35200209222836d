"""Tables that never cut a number or a name: a table when it fits the terminal, else (narrower
than the table, or not a terminal at all: a pipe, a file, a log) one `key: value` line per field.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

Row = dict[str, str]


def table_width(rows: Sequence[Row]) -> int:
    """Characters a plain table of these rows needs (cells, padding and borders)."""
    if not rows:
        return 0
    columns = list(rows[0])
    widths = [max(len(c), *(len(r[c]) for r in rows)) for c in columns]
    return sum(widths) + 3 * len(columns) + 1


def show(
    console: Console, title: str, rows: Sequence[Row], *, right: frozenset[str] = frozenset()
) -> None:
    """Print `rows` (all with the same keys) as a table if it fits, else as `key: value` lines."""
    if console.is_terminal and table_width(rows) <= console.width:
        table = Table(title=title)
        for column in rows[0] if rows else ():
            table.add_column(column, justify="right" if column in right else "left", no_wrap=True)
        for row in rows:
            table.add_row(*row.values())
        console.print(table)
        return
    lines = [title]
    for index, row in enumerate(rows):
        if index:
            lines.append("")
        lines += [f"{key}: {value}" for key, value in row.items()]
    console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)
