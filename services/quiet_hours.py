"""Quiet hours: no message the firm starts goes out at night in the client's time zone.

Sending is allowed from 8:00 to 20:00 local time unless the firm sets
`settings["quiet_hours"] = {"start": "HH:MM", "end": "HH:MM"}` (the hours when sending is allowed).
A message due at night waits until the morning; it is never dropped.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.models import FirmSettings

SEND_FROM, SEND_UNTIL = time(8, 0), time(20, 0)


def zone(name: str | None) -> ZoneInfo:
    """The client's time zone (the firm's default when unknown or malformed)."""
    try:
        return ZoneInfo(name or "America/Chicago")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("America/Chicago")


def window(firm: FirmSettings | None) -> tuple[time, time]:
    """(from, until): the local hours when sending is allowed."""
    custom = ((firm.settings or {}) if firm is not None else {}).get("quiet_hours") or {}
    try:
        return time.fromisoformat(custom.get("start", "08:00")), time.fromisoformat(custom.get("end", "20:00"))
    except (TypeError, ValueError):
        return SEND_FROM, SEND_UNTIL


def next_allowed(now: datetime, tz: ZoneInfo, allowed: tuple[time, time] = (SEND_FROM, SEND_UNTIL)) -> datetime | None:
    """None when `now` is within sending hours in `tz`, else the next opening there (as UTC)."""
    start, end = allowed
    local = now.astimezone(tz)
    if start <= local.time() < end:
        return None
    day = local.date() if local.time() < start else local.date() + timedelta(days=1)
    return datetime.combine(day, start, tz).astimezone(now.tzinfo)
