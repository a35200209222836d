"""How `ocpi-puller status` shows the pulls: one row per pull and shard, whatever the width.

Text: a table cut to the width (80 columns and up): numbers and states are never cut; long
texts (the problem, then the pull id, then partner/module) are cut with `…` and shown whole
under the table, or kept whole with `--wide`. Where the exact counts still do not fit, counts
are rounded to three digits (`1.23M`). `objects` is objects so far / the reported total;
`seen` how long ago the pull's last event came; `shard` appears when a pull is sharded.
`--output json`: one JSON object per pull and shard, one a line; `--output tsv`: a header, then
one line per pull and shard.

`--follow` redraws the table on a terminal; anywhere else (a pipe, a file, a log) and for JSON
and TSV it prints the current rows once, then one line per pull whose row changed, at most one
per pull per refresh. The row logic is pure; `show_status` is the shell.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TextIO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from producer.kafka.connection import KafkaConnection
from producer.observe.status import ProgressFollower, PullStatus

Output = Literal["text", "json", "tsv"]
ELLIPSIS = "…"
MIN_WIDTH = 80


@dataclass(frozen=True, slots=True)
class Column:
    """A table column: its header, alignment, and (for long texts) how narrow it may be cut:
    `cut_to` first, `cut_far` when even that is too wide."""

    name: str
    right: bool = False
    cut_to: int | None = None  # None: never cut
    cut_far: int | None = None
    cut_middle: bool = False  # keep the end too (a pull id's unique suffix)


COLUMNS = (
    Column("pull", cut_to=12, cut_far=8, cut_middle=True),
    Column("partner/module", cut_to=10, cut_far=6),
    Column("shard"),
    Column("state"),
    Column("objects", right=True),
    Column("rate/s", right=True),
    Column("ETA", right=True),
    Column("windows", right=True),
    Column("seen", right=True),
    Column("problem", cut_to=8, cut_far=1),
)
# Which long texts give way first when the table is too wide.
CUT_ORDER = ("problem", "pull", "partner/module")


def human_s(seconds: float | None) -> str:
    """A duration as people read it: 45s, 12m, 3.5h; `-` for none."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def newest_first(statuses: Iterable[PullStatus]) -> list[PullStatus]:
    """Pulls in the order the table shows them: the latest heard from first, a pull's shards
    in order."""
    by_shard = sorted(statuses, key=lambda s: tuple(int(n) for n in s.shard.split("/")))
    return sorted(by_shard, key=lambda s: (s.last_event_at or "", s.pull_id), reverse=True)


def one_line(text: str) -> str:
    """A text as one line: a cell is never two."""
    return " ".join(text.split())


def exact_count(n: float) -> str:
    """A count with thousands separators: 1,234,567 (an int exactly, a rate rounded)."""
    return f"{n:,}" if isinstance(n, int) else f"{n:,.0f}"


def rounded_count(n: float) -> str:
    """A count in at most five characters, to three significant digits: 999, 1.23k, 12.3M."""
    for unit in ("", "k", "M", "G", "T"):
        if n < 9.995:
            return f"{n:.2f}{unit}" if unit else f"{n:.0f}"
        if n < 99.95:
            return f"{n:.1f}{unit}" if unit else f"{n:.0f}"
        if n < 999.5:
            return f"{n:.0f}{unit}"
        n /= 1000
    return f"{n:.0f}P"


def row_of(
    s: PullStatus, now: datetime, count: Callable[[float], str] = exact_count
) -> dict[str, str]:
    """One pull and shard as the table's cells, every value whole (and on one line); `count`
    writes the counts."""
    state = s.state_at(now)
    running = state == "running"
    return {
        "pull": one_line(s.pull_id),
        "partner/module": one_line(f"{s.partner}/{s.module}"),
        "shard": s.shard,
        "state": state,
        "objects": f"{count(s.objects_emitted)}/"
        + ("?" if s.total_reported is None else count(s.total_reported)),
        "rate/s": count(s.rate_per_s) if running and s.rate_per_s is not None else "-",
        "ETA": human_s(s.eta_s) if running else "-",
        "windows": f"{s.windows_done}/{'?' if s.windows_total is None else s.windows_total}",
        "seen": human_s(s.age_s(now)),
        "problem": one_line(s.last_problem or ""),
    }


def cut(text: str, width: int, *, middle: bool = False) -> str:
    """`text` in at most `width` characters, `…` where it was cut."""
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    if middle:
        tail = (width - 1) // 2
        return text[: width - 1 - tail] + ELLIPSIS + (text[-tail:] if tail else "")
    return text[: width - 1] + ELLIPSIS


def fit_widths(
    rows: Sequence[dict[str, str]], columns: Sequence[Column], width: int
) -> tuple[dict[str, int], int, int]:
    """Column widths (and the gap between columns) for `rows` within `width`: the problem is
    narrowed to its `cut_to`, then the gap shrinks to one space, then the long texts go down in
    `CUT_ORDER` to their `cut_to`, then to their `cut_far`. Never narrower: numbers and states
    are never cut. Also the columns the table is still too wide by (0 when it fits)."""
    widths = {c.name: max(len(c.name), *(len(r[c.name]) for r in rows)) for c in columns}
    gap = 2

    def excess() -> int:
        return sum(widths.values()) + gap * (len(columns) - 1) - width

    by_name = {c.name: c for c in columns}

    def narrow(name: str, floor: int | None) -> None:
        widths[name] -= max(0, min(excess(), widths[name] - (floor or widths[name])))

    narrow("problem", by_name["problem"].cut_to)
    if excess() > 0:
        gap = 1
    for name in CUT_ORDER:
        narrow(name, by_name[name].cut_to)
    for name in CUT_ORDER:
        narrow(name, by_name[name].cut_far)
    return widths, gap, max(0, excess())


def render_rows(
    statuses: Iterable[PullStatus], now: datetime, width: int, *, wide: bool = False
) -> tuple[list[str], list[str]]:
    """The table's lines (a header, then one line per pull and shard), and below it, for each
    row with a cut value, the row's texts whole: `<pull id> <partner>/<module>[ shard i/n]`,
    then `: <problem>` when the problem was cut."""
    ordered = newest_first(statuses)
    rows = [row_of(s, now) for s in ordered]
    if not rows:
        return [], []
    sharded = any(s.shard != "1/1" for s in ordered)
    columns = [c for c in COLUMNS if sharded or c.name != "shard"]
    width = 10**9 if wide else max(MIN_WIDTH, width)
    widths, gap, over = fit_widths(rows, columns, width)
    if over:  # exact counts of ten million and more, many shards, a long state
        rows = [row_of(s, now, rounded_count) for s in ordered]
        widths, gap, _ = fit_widths(rows, columns, width)
    header = {c.name: cut(c.name, widths[c.name]) for c in columns}
    lines = [_line(header, columns, widths, gap)]
    notes: list[str] = []
    for status, row in zip(ordered, rows, strict=True):
        shown = {c.name: cut(row[c.name], widths[c.name], middle=c.cut_middle) for c in columns}
        lines.append(_line(shown, columns, widths, gap))
        if shown != {c.name: row[c.name] for c in columns}:
            shard = "" if status.shard == "1/1" else f" shard {status.shard}"
            note = f"{row['pull']} {row['partner/module']}{shard}"
            if shown["problem"] != row["problem"]:
                note += f": {row['problem']}"
            notes.append(note)
    return lines, notes


def _line(
    cells: dict[str, str], columns: Sequence[Column], widths: dict[str, int], gap: int
) -> str:
    parts = [
        cells[c.name].rjust(widths[c.name]) if c.right else cells[c.name].ljust(widths[c.name])
        for c in columns
    ]
    return (" " * gap).join(parts).rstrip()


def nothing_since(since: datetime, partner: str | None, module: str | None) -> str:
    """What an empty result says."""
    scope = "".join(
        f" of {what} {name}" for what, name in (("partner", partner), ("module", module)) if name
    )
    return f"no pulls{scope} since {since:%Y-%m-%d %H:%M:%S}Z"


def record_of(s: PullStatus, now: datetime) -> dict[str, Any]:
    """One pull and shard for scripts: every field, its state now, its age."""
    fields = asdict(s)
    fields.pop("retries_before_start", None)  # bookkeeping of the fold, not the pull's
    fields.pop("windows_ended", None)  # (as a count: windows_done)
    fields["windows_done"] = s.windows_done
    age = s.age_s(now)
    return {
        "at": now.isoformat(),
        **fields,
        "state": s.state_at(now),
        "age_s": None if age is None else round(age, 1),
    }


TSV_FIELDS = (
    "pull_id", "partner", "module", "shard", "state", "objects_emitted", "dead_lettered",
    "total_reported", "rate_per_s", "eta_s", "windows_done", "windows_total", "retries",
    "age_s", "last_event", "last_event_at", "started_at", "duration_s", "last_problem",
)  # fmt: skip


def tsv_line(values: Iterable[Any]) -> str:
    """Tab-separated values: none is empty; tabs and line breaks inside become spaces."""
    return "\t".join(
        "" if v is None else " ".join(str(v).replace("\t", " ").splitlines()) for v in values
    )


def script_line(s: PullStatus, now: datetime, output: Output) -> str:
    """One pull and shard as a JSON line or a TSV line."""
    record = record_of(s, now)
    if output == "json":
        return json.dumps(record, separators=(",", ":"))
    return tsv_line(record[name] for name in TSV_FIELDS)


def change_line(s: PullStatus, now: datetime) -> str:
    """One pull and shard as one logfmt line with every value whole (`--follow` in a pipe)."""
    row = row_of(s, now)
    problem = json.dumps(row["problem"]) if row["problem"] else '""'
    return (
        f"{now:%Y-%m-%dT%H:%M:%SZ} pull={s.pull_id} partner={s.partner} module={s.module} "
        f"shard={s.shard} state={row['state']} objects={s.objects_emitted} "
        f"total={'' if s.total_reported is None else s.total_reported} rate={row['rate/s']} "
        f"eta={row['ETA']} windows={row['windows']} retries={s.retries} problem={problem}"
    )


def signature(s: PullStatus, now: datetime) -> tuple[Any, ...]:
    """What makes a row change (its age aside)."""
    fields = asdict(s)
    fields["windows_ended"] = len(s.windows_ended)  # (hashable)
    return (*(v for k, v in fields.items() if k != "last_event_at"), s.state_at(now))


class StatusPrinter:
    """Prints the statuses once, or follows them, in the form asked for."""

    def __init__(
        self, output: Output, *, wide: bool, since: datetime, scope: tuple[str | None, ...]
    ) -> None:
        self.output = output
        self.wide = wide
        self.since = since
        self.scope = scope
        self.console = Console()
        self._shown: dict[tuple[str, str, str, str], tuple[Any, ...]] = {}

    def whole(self, statuses: Sequence[PullStatus], now: datetime) -> list[str]:
        """Every pull and shard now: the table (or the script lines)."""
        if self.output != "text":
            header = [tsv_line(TSV_FIELDS)] if self.output == "tsv" else []
            return header + [script_line(s, now, self.output) for s in newest_first(statuses)]
        lines, notes = render_rows(statuses, now, self.console.width, wide=self.wide)
        if not lines:
            return [nothing_since(self.since, *self.scope)]
        title = f"ocpi-puller pulls ({now:%Y-%m-%d %H:%M:%S}Z)"
        return [title, *lines, *notes]

    def changes(self, statuses: Sequence[PullStatus], now: datetime) -> list[str]:
        """One line per pull and shard whose row changed since the last call."""
        lines = []
        for s in newest_first(statuses)[::-1]:  # oldest first: lines follow time
            key = (s.pull_id, s.partner, s.module, s.shard)
            mark = signature(s, now)
            if self._shown.get(key) == mark:
                continue
            self._shown[key] = mark
            lines.append(
                change_line(s, now) if self.output == "text" else script_line(s, now, self.output)
            )
        return lines


def _print(lines: Iterable[str], out: TextIO) -> None:
    for line in lines:
        print(line, file=out)
    out.flush()


async def show_status(
    connection: KafkaConnection | str,
    topic_prefix: str,
    *,
    since: timedelta,
    partner: str | None,
    module: str | None,
    follow: bool,
    output: Output,
    wide: bool = False,
    refresh_s: float = 1.0,
) -> int:
    """Print the statuses (once, or with `follow` until cancelled); returns how many."""
    started = datetime.now(UTC)
    printer = StatusPrinter(output, wide=wide, since=started - since, scope=(partner, module))
    async with ProgressFollower(
        connection, f"{topic_prefix}.progress", started - since
    ) as follower:
        await follower.catch_up()

        def current() -> list[PullStatus]:
            return [
                s
                for s in follower.statuses.values()
                if (partner is None or s.partner == partner)
                and (module is None or s.module == module)
            ]

        now = datetime.now(UTC)
        if not follow:
            _print(printer.whole(current(), now), sys.stdout)
            return len(current())
        if output == "text" and printer.console.is_terminal:
            await _redraw(printer, follower, current, refresh_s)
        _print(printer.whole(current(), now), sys.stdout)
        printer.changes(current(), now)  # what was just printed is no change
        while True:
            deadline = time.monotonic() + refresh_s
            while time.monotonic() < deadline:
                await follower.poll(timeout_ms=200)
            _print(printer.changes(current(), datetime.now(UTC)), sys.stdout)


async def _redraw(
    printer: StatusPrinter,
    follower: ProgressFollower,
    current: Any,
    refresh_s: float,
) -> None:
    """The table on a terminal, redrawn until cancelled (Ctrl-C, SIGTERM)."""

    def screen() -> Text:
        lines = printer.whole(current(), datetime.now(UTC))
        return Text("\n".join(lines))  # the table fits; a note may wrap, whole

    with Live(screen(), console=printer.console, refresh_per_second=4) as live:
        while True:
            await follower.poll(timeout_ms=int(refresh_s * 1000))
            live.update(screen())
            await asyncio.sleep(0)
