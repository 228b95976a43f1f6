"""Time as the product reads it: a time without an offset means UTC (the API, files and the store agree)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta


def as_utc(value: datetime) -> datetime:
    """The same instant in UTC; a naive value means UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """A window's start: a duration before ``now`` ('30d', '24h', '90m') or an ISO date/time (UTC when it has no
    offset). ValueError says what is accepted."""
    match = re.fullmatch(r"(\d{1,6})([dhm])", text.strip())
    if match:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[match[2]]
        return (now or datetime.now(UTC)) - timedelta(**{unit: int(match[1])})
    try:
        return as_utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise ValueError(f"'{text[:64]}' is not a duration like 30d, 24h or 90m, nor an ISO date such as "
                         "2026-11-01") from None
