"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from sqlalchemy import JSON, DateTime, SmallInteger
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from uuid_utils.compat import uuid7


def new_id() -> uuid.UUID:
    """Return a new time-ordered UUIDv7 (keeps primary-key indexes append-mostly)."""
    return uuid7()


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend.

    SQLite has no time zones and hands back naive values; PostgreSQL's timestamptz
    returns aware ones. Storing only UTC and re-attaching it on the way out makes both
    compare and serialise the same way. Naive inputs are refused: they are bugs.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class IntEnumType(TypeDecorator[IntEnum]):
    """Store an `IntEnum` as its integer value and load it back as the enum member."""

    impl = SmallInteger
    cache_ok = True

    def __init__(self, enum_class: type[IntEnum]) -> None:
        super().__init__()
        self.enum_class = enum_class

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return int(self.enum_class(value))

    def process_result_value(self, value: int | None, dialect: Dialect) -> IntEnum | None:
        if value is None:
            return None
        return self.enum_class(value)

    def __repr__(self) -> str:
        return f"IntEnumType({self.enum_class.__name__})"


# JSONB on PostgreSQL (indexable, compact), plain JSON text elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")
