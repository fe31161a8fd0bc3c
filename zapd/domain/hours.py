"""Business hours: is a department open now, and when does it open next.

Invariants:
- Hours are read in the department's time zone; a range is ``(start, end)`` in HH:MM with
  ``end`` exclusive, and ``"24:00"`` is the end of the day.
- A range whose end is not after its start crosses midnight: ``("18:00", "08:00")`` listed
  on Monday is open from Monday 18:00 to Tuesday 08:00 (a night shift). Its morning part
  belongs to the day it was listed on, so it applies even when the next day is not
  listed (Friday night into a closed Saturday).
- An empty mapping means always open; a weekday missing from a non-empty mapping has no
  range starting that day.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# {"mon": [("08:00", "12:00"), ("13:00", "18:00")], "fri": [("22:00", "06:00")], ...}.
Hours = Mapping[str, Sequence[Sequence[str]]]


def _parse(hhmm: str) -> time:
    if hhmm == "24:00":
        return time.max
    hh, mm = hhmm.split(":")
    return time(int(hh), int(mm))


def crosses_midnight(start: str, end: str) -> bool:
    """Tell whether a range runs past midnight into the next day."""
    return _parse(end) <= _parse(start)


def is_open(hours: Hours, tz: str, now: datetime) -> bool:
    """Tell whether `now` (aware) falls inside the opening ranges, read in zone `tz`."""
    if not hours:
        return True
    local = now.astimezone(ZoneInfo(tz))
    t = local.time().replace(tzinfo=None)
    today = WEEKDAYS[local.weekday()]
    yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
    for start, end in hours.get(today, ()):
        if crosses_midnight(start, end):
            if t >= _parse(start):
                return True
        elif _parse(start) <= t < _parse(end):
            return True
    # The morning part of last night's shift.
    return any(
        crosses_midnight(start, end) and t < _parse(end) for start, end in hours.get(yesterday, ())
    )


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
