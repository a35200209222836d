"""Building list requests: the page URL of a window at an offset, and OCPI DateTimes. Pure.

The one place that builds a window's page URL, so planning probes, pages and repaired links ask
the same question. (Objects' `last_updated` is read by the page reader, `ocpi.paging.reader`.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from yarl import URL

# Sessions require date_from (OCPI 2.1.1 and 2.2.1); "everything" then starts at the epoch.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_SECOND = timedelta(seconds=1)


def format_ocpi_datetime(value: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ`: UTC, whole seconds, no `+` for a partner to mangle in a query
    string, no offset for one that ignores zones."""
    utc = value.astimezone(UTC)
    # (strftime's %Y drops leading zeros before year 1000 on glibc: 999-06-01 is not RFC 3339)
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S}Z"


def pin_now(partner_behind_s: float = 0.0) -> datetime:
    """The pull's snapshot instant: now, truncated to whole seconds; as the partner's clock
    reads it when that is behind ours (by at least `partner_behind_s`), so that every change the
    partner makes after the pin carries a later last_updated."""
    return (datetime.now(UTC) - timedelta(seconds=max(0.0, partner_behind_s))).replace(
        microsecond=0
    )


def to_epoch(value: datetime | None) -> int | None:
    """Whole epoch seconds."""
    return None if value is None else int(value.timestamp())


def from_epoch(value: int | None) -> datetime | None:
    """A UTC datetime from epoch seconds."""
    return None if value is None else datetime.fromtimestamp(value, UTC)


def asked_date_from(date_from: datetime | None, ocpi_version: str) -> datetime | None:
    """The `date_from` a window asks for: its own, a second early in OCPI 2.1.1 (which does not
    say whether `date_from` is inclusive: duplicates at the boundary are harmless, a lost
    boundary object is not)."""
    if date_from is not None and ocpi_version.startswith("2.1"):
        return date_from - ONE_SECOND
    return date_from


def page_url(
    endpoint: URL,
    *,
    module: str,
    ocpi_version: str,
    date_from: datetime | None,
    date_to: datetime | None,
    offset: int,
    limit: int,
    overlap_211: bool = True,
) -> URL:
    """A window's list URL at `offset`: the endpoint's own query, then offset/limit/filters.

    OCPI 2.1.1 does not say whether `date_from` is inclusive, so a 2.1.1 window starts one second
    early (duplicates at the boundary are harmless; a lost boundary object is not).
    """
    query: list[tuple[str, str]] = [
        (k, v)
        for k, v in endpoint.query.items()
        if k not in ("offset", "limit", "date_from", "date_to")
    ]
    query += [("offset", str(offset)), ("limit", str(limit))]
    start = asked_date_from(date_from, ocpi_version) if overlap_211 else date_from
    if start is None and module == "sessions":
        start = EPOCH
    if start is not None:
        query.append(("date_from", format_ocpi_datetime(start)))
    if date_to is not None:
        query.append(("date_to", format_ocpi_datetime(date_to)))
    return endpoint.with_query(query)
