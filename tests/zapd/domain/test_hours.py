"""Business hours in the department's time zone."""

from __future__ import annotations

from datetime import UTC, datetime

from zapd.domain.hours import is_open, next_opening

WEEK = {"mon": [("08:00", "12:00"), ("13:00", "18:00")], "sat": [("09:00", "13:00")]}
TZ = "America/Sao_Paulo"  # UTC-3, no DST since 2019


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_empty_means_always_open() -> None:
    assert is_open({}, TZ, utc(2026, 11, 22, 3, 0))
    assert next_opening({}, TZ, utc(2026, 11, 22, 3, 0)) is None


def test_ranges_are_read_in_local_time() -> None:
    # Monday 2026-11-16: 11:59 local = 14:59 UTC (open); 12:30 local closed (lunch).
    assert is_open(WEEK, TZ, utc(2026, 11, 16, 14, 59))
    assert not is_open(WEEK, TZ, utc(2026, 11, 16, 15, 30))
    assert is_open(WEEK, TZ, utc(2026, 11, 16, 16, 0))
    assert not is_open(WEEK, TZ, utc(2026, 11, 16, 21, 0))  # 18:00 local: closed (end excl.)
    assert not is_open(WEEK, TZ, utc(2026, 11, 17, 14, 0))  # Tuesday: not listed


def test_next_opening() -> None:
    # Monday 19:00 local → Saturday 09:00 local.
    nxt = next_opening(WEEK, TZ, utc(2026, 11, 16, 22, 0))
    assert nxt is not None and nxt.isoformat() == "2026-11-21T09:00:00-03:00"
    # Monday 12:30 local → the afternoon range the same day.
    nxt = next_opening(WEEK, TZ, utc(2026, 11, 16, 15, 30))
    assert nxt is not None and nxt.isoformat() == "2026-11-16T13:00:00-03:00"


def test_whole_day_until_midnight() -> None:
    hours = {"sun": [("00:00", "24:00")]}
    assert is_open(hours, TZ, utc(2026, 11, 23, 2, 59))  # Sunday 23:59 local
    assert not is_open(hours, TZ, utc(2026, 11, 23, 3, 0))  # Monday 00:00 local


NIGHT = {"mon": [("08:00", "12:00"), ("18:00", "08:00")], "fri": [("22:00", "06:00")]}


def test_overnight_range_crosses_midnight() -> None:
    # Monday 2026-11-16 (local = UTC-3). Open 08:00-12:00 and 18:00 to Tuesday 08:00.
    assert not is_open(NIGHT, TZ, utc(2026, 11, 16, 20, 59))  # Mon 17:59
    assert is_open(NIGHT, TZ, utc(2026, 11, 16, 21, 0))  # Mon 18:00
    assert is_open(NIGHT, TZ, utc(2026, 11, 17, 2, 30))  # Mon 23:30
    assert is_open(NIGHT, TZ, utc(2026, 11, 17, 3, 0))  # Tue 00:00
    assert is_open(NIGHT, TZ, utc(2026, 11, 17, 10, 59))  # Tue 07:59
    assert not is_open(NIGHT, TZ, utc(2026, 11, 17, 11, 0))  # Tue 08:00 (end excluded)
    # Tuesday has no range of its own: its morning belongs to Monday's night shift only.
    assert not is_open(NIGHT, TZ, utc(2026, 11, 17, 21, 0))  # Tue 18:00
    # Friday night runs into Saturday morning although Saturday is not listed.
    assert is_open(NIGHT, TZ, utc(2026, 11, 21, 8, 59))  # Sat 05:59
    assert not is_open(NIGHT, TZ, utc(2026, 11, 21, 9, 0))  # Sat 06:00
    # Monday morning is not opened by Sunday (no Sunday shift).
    assert not is_open(NIGHT, TZ, utc(2026, 11, 16, 9, 0))  # Mon 06:00


def test_next_opening_with_overnight_ranges() -> None:
    # Tuesday 09:00 local (closed) -> Friday 22:00.
    nxt = next_opening(NIGHT, TZ, utc(2026, 11, 17, 12, 0))
    assert nxt is not None and nxt.isoformat() == "2026-11-20T22:00:00-03:00"
    # Monday 13:00 local -> Monday 18:00.
    nxt = next_opening(NIGHT, TZ, utc(2026, 11, 16, 16, 0))
    assert nxt is not None and nxt.isoformat() == "2026-11-16T18:00:00-03:00"
