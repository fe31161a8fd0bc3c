"""Business hours: is a department open now, and when does it open next."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# {"mon": [("08:00", "12:00"), ("13:00", "18:00")], ...}. An empty mapping means
# always open; a weekday missing from a non-empty mapping is closed all day.
Hours = Mapping[str, Sequence[Sequence[str]]]


def _parse(hhmm: str) -> time:
    if hhmm == "24:00":
        return time.max
    hh, mm = hhmm.split(":")
    return time(int(hh), int(mm))


def is_open(hours: Hours, tz: str, now: datetime) -> bool:
    """Tell whether `now` (aware) falls inside the opening ranges, read in zone `tz`."""
    if not hours:
        return True
    local = now.astimezone(ZoneInfo(tz))
    ranges = hours.get(WEEKDAYS[local.weekday()], ())
    t = local.time().replace(tzinfo=None)
    return any(_parse(start) <= t < _parse(end) for start, end in ranges)


def next_opening(hours: Hours, tz: str, now: datetime) -> datetime | None:
    """Return when the department next opens after `now` (None: always open or never)."""
    if not hours:
        return None
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    for offset in range(8):
        day = (local + timedelta(days=offset)).date()
        for start, _end in sorted(hours.get(WEEKDAYS[day.weekday()], ()), key=lambda r: r[0]):
            opening = datetime.combine(day, _parse(start), tzinfo=zone)
            if opening > local:
                return opening
    return None
