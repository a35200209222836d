"""What the operator sees while pulls run: a live bar per pull on a terminal, log lines elsewhere.

On a terminal, a live bar per pull (objects, total, rate, ETA); otherwise logfmt lines at most every
few seconds per pull (the start, retries, warnings and the end are logged by the reporter).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

log = logging.getLogger("ocpi_puller")
LOG_EVERY_S = 5.0


class View(Protocol):
    """Where progress is shown to a human."""

    def add(self, label: str, total: int | None, pull_id: str = "") -> int: ...
    def update(self, handle: int, done: int, total: int | None, rate: float) -> None: ...
    def close(self) -> None: ...


class ConsoleHandler(logging.Handler):
    """A log handler that prints through a rich console (above a live bar)."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self._console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._console.print(self.format(record), markup=False, highlight=False)
        except Exception:  # a log line must never break the pull
            self.handleError(record)


def route_logs_to(handler: logging.Handler) -> list[logging.Handler]:
    """Replace the root logger's stream handlers by `handler`; returns what was replaced."""
    root = logging.getLogger()
    moved: list[logging.Handler] = [
        h for h in root.handlers if isinstance(h, logging.StreamHandler)
    ]
    if moved:
        handler.setFormatter(moved[0].formatter)
    for old in moved:
        root.removeHandler(old)
    root.addHandler(handler)
    return moved


def restore_logs(handler: logging.Handler, moved: list[logging.Handler]) -> None:
    """Undo `route_logs_to`."""
    root = logging.getLogger()
    root.removeHandler(handler)
    for old in moved:
        root.addHandler(old)


class BarView:
    """rich progress bars on stderr (one per pull)."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>9} obj/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._progress.start()
        self._tasks: dict[int, TaskID] = {}
        # Log lines go through the bar's console while it is live (rich keeps the bar below
        # them), instead of gluing onto its frames on stderr.
        self._handler = ConsoleHandler(self._progress.console)
        self._moved = route_logs_to(self._handler)

    def add(self, label: str, total: int | None, pull_id: str = "") -> int:
        task = self._progress.add_task(label, total=total, rate="-")
        handle = len(self._tasks)
        self._tasks[handle] = task
        return handle

    def update(self, handle: int, done: int, total: int | None, rate: float) -> None:
        self._progress.update(self._tasks[handle], completed=done, total=total, rate=f"{rate:,.0f}")

    def close(self) -> None:
        self._progress.stop()
        restore_logs(self._handler, self._moved)


class LogView:
    """logfmt progress lines, throttled per pull."""

    def __init__(self) -> None:
        self._names: list[str] = []
        self._last: list[float] = []

    def add(self, label: str, total: int | None, pull_id: str = "") -> int:
        # A pull is named one way in every log line: `pull=<id>`, then where it pulls from.
        partner, _, module = label.partition("/")
        self._names.append(f"pull={pull_id} partner={partner} module={module}")
        self._last.append(0.0)
        return len(self._names) - 1

    def update(self, handle: int, done: int, total: int | None, rate: float) -> None:
        now = time.monotonic()
        if now - self._last[handle] < LOG_EVERY_S and (total is None or done < total):
            return
        self._last[handle] = now
        log.info(
            "progress %s objects=%d total=%s rate=%.0f/s",
            self._names[handle],
            done,
            "?" if total is None else total,
            rate,
        )

    def close(self) -> None:
        return None


def make_view(enabled: bool) -> View:
    """A live bar on a terminal, log lines elsewhere."""
    if enabled and sys.stderr.isatty():
        return BarView()
    return LogView()
