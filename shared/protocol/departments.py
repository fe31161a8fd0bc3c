"""Departments (queues): the greeting menu's choices."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from pydantic import Field, field_validator

from shared.enums import AutoAssignMode
from shared.protocol.common import OutModel, WireModel

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")

# {"mon": [["08:00", "12:00"], ["13:00", "18:00"]], ...}; a missing day is closed;
# an empty mapping means always open.
BusinessHours = dict[str, list[tuple[str, str]]]


def check_business_hours(value: BusinessHours) -> BusinessHours:
    """Validate weekday keys and HH:MM ranges.

    A range that ends before it starts crosses midnight (a night shift, "18:00"-"08:00"
    opens at 18:00 and closes at 08:00 the next day); a range cannot start at 24:00 nor
    end when it starts.
    """
    for day, ranges in value.items():
        if day not in WEEKDAYS:
            raise ValueError(f"unknown weekday {day!r}: use {', '.join(WEEKDAYS)}")
        for start, end in ranges:
            if not _HHMM.match(start) or not _HHMM.match(end):
                raise ValueError(f"{day}: times must be HH:MM, got {start!r}-{end!r}")
            if start == "24:00":
                raise ValueError(f"{day}: {start}-{end} starts at the end of the day (use 00:00)")
            if start == end:
                raise ValueError(f"{day}: {start}-{end} closes when it opens")
    return value


def check_timezone(value: str | None) -> str | None:
    """Validate an IANA time-zone name."""
    if value is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


class _DepartmentFields(WireModel):
    menu_order: int | None = Field(default=None, ge=0, le=999)
    keywords: list[str] | None = Field(default=None, max_length=50)
    greeting: str | None = Field(default=None, max_length=4000)
    out_of_hours_message: str | None = Field(default=None, max_length=4000)
    response_timeout_seconds: int | None = Field(default=None, ge=30, le=7 * 86400)
    fallback_department_id: uuid.UUID | None = None
    business_hours: BusinessHours | None = None
    timezone: str | None = Field(default=None, max_length=64)
    auto_assign: AutoAssignMode | None = None
    active: bool | None = None

    _hours = field_validator("business_hours")(
        lambda v: None if v is None else check_business_hours(v)
    )
    _tz = field_validator("timezone")(check_timezone)

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        out = [k.strip() for k in v if k.strip()]
        if any(len(k) > 60 for k in out):
            raise ValueError("keywords have at most 60 characters")
        return out


def check_slug(value: str | None) -> str | None:
    """Validate a slug: lower-case letters, digits and single dashes."""
    if value is not None and not _SLUG.match(value):
        raise ValueError("slug: lower-case letters, digits and single dashes")
    return value


class DepartmentCreate(_DepartmentFields):
    """Body of `POST /departments`."""

    name: str = Field(min_length=1, max_length=120)
    slug: str | None = Field(default=None, min_length=1, max_length=120)
    company_id: uuid.UUID | None = None  # global admins name the company

    _slug = field_validator("slug")(check_slug)


class DepartmentUpdate(_DepartmentFields):
    """Body of `PATCH /departments/{id}`: only the fields given change."""

    name: str | None = Field(default=None, min_length=1, max_length=120)
    slug: str | None = Field(default=None, min_length=1, max_length=120)

    _slug = field_validator("slug")(check_slug)


class DepartmentOut(OutModel):
    """A department as the API shows it."""

    id: uuid.UUID
    company_id: uuid.UUID
    name: str
    slug: str
    menu_order: int
    keywords: list[str]
    greeting: str | None
    out_of_hours_message: str | None
    response_timeout_seconds: int | None
    fallback_department_id: uuid.UUID | None
    business_hours: BusinessHours
    timezone: str | None
    auto_assign: AutoAssignMode
    active: bool
    created_at: datetime
    updated_at: datetime
