"""The end of a run as the operator reads it: one JSON line, or a summary that fits the screen,
with every failure as one line on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

from producer.observe.tables import Row, show
from producer.pull.summary import ALREADY_COMPLETE, PullSummary
from producer.run import RunResult

NUMERIC = frozenset({"objects", "total", "dead", "pages", "retries", "duration"})


def json_summary(result: RunResult) -> dict[str, Any]:
    """The one JSON summary line: a pull's fields, or totals plus `pulls` for many partners."""
    if len(result.summaries) == 1:
        return result.summaries[0].as_dict()
    totals: dict[str, Any] = {
        "pull_id": result.summaries[0].pull_id if result.summaries else None,
        "module": None,
        "objects_emitted": sum(s.objects_emitted for s in result.summaries),
        "pages": sum(s.pages for s in result.summaries),
        "dead_lettered": sum(s.dead_lettered for s in result.summaries),
        "retries": sum(s.retries for s in result.summaries),
        "total_reported": sum(s.total_reported or 0 for s in result.summaries),
        "duration_s": max((s.duration_s for s in result.summaries), default=0.0),
        "complete": all(s.complete for s in result.summaries),
        "exit_code": result.exit_code,
        "pulls": [s.as_dict() for s in result.summaries],
    }
    return totals


def print_result(result: RunResult, output: str) -> None:
    """The summary on stdout (a JSON line or a table), each failure as one line on stderr."""
    if output == "json":
        print(json.dumps(json_summary(result), separators=(",", ":")), flush=True)
    else:
        print_text(result.summaries, Console())
    for s in result.summaries:
        if s.error:
            message = " ".join(s.error.split())  # one line per failure, always
            print(
                f"ocpi-puller: {s.partner}/{s.module}: {s.error_kind}: {message}", file=sys.stderr
            )


def summary_row(s: PullSummary) -> Row:
    """One pull's line of the summary table."""
    return {
        "partner": s.partner,
        "module": s.module or "?",
        "complete": "yes" if s.complete else "NO",
        "objects": f"{s.objects_emitted:,}",
        "total": "?" if s.total_reported is None else f"{s.total_reported:,}",
        "dead": f"{s.dead_lettered:,}",
        "pages": f"{s.pages:,}",
        "retries": f"{s.retries:,}",
        "duration": f"{s.duration_s:.1f} s",
    }


def print_text(summaries: list[PullSummary], console: Console) -> None:
    """The summary for people: the table (or its lines), then what each pull must say."""
    show(console, "ocpi-puller summary", [summary_row(s) for s in summaries], right=NUMERIC)
    lines: list[str] = []
    for s in summaries:
        who = "" if len(summaries) == 1 else f"{s.partner}/{s.module}: "
        if ALREADY_COMPLETE in s.warnings:
            lines.append(f"{who}already complete: nothing to do (pull id {s.pull_id})")
        else:
            pinned = "" if s.date_to is None else f" (pinned date_to {s.date_to})"
            lines.append(f"{who}pull id: {s.pull_id}{pinned}")
        lines += [f"{who}warning: {w}" for w in s.warnings if w != ALREADY_COMPLETE]
        if s.error:
            lines.append(f"{who}error: {s.error_kind}: {' '.join(s.error.split())}")
    console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)
