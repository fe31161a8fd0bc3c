"""Cursor pagination over time-ordered (UUIDv7) ids: stable under concurrent inserts."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Row, Select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from shared.errors import ErrorCode
from zapd.errors import ValidationFailed

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


@dataclass(frozen=True)
class PageParams:
    """`?cursor=&limit=&order=` of a listing."""

    cursor: str | None = None
    limit: int = DEFAULT_LIMIT
    order: Literal["asc", "desc"] = "desc"


def encode_cursor(row_id: uuid.UUID) -> str:
    """Return the opaque cursor pointing after `row_id`."""
    return base64.urlsafe_b64encode(row_id.bytes).decode().rstrip("=")


def decode_cursor(cursor: str) -> uuid.UUID:
    """Read a cursor back; a malformed one is a 422."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return uuid.UUID(bytes=raw)
    except (ValueError, TypeError):
        raise ValidationFailed("malformed cursor", code=ErrorCode.BAD_CURSOR) from None


def _one_page(stmt: Select[Any], id_column: Any, page: PageParams) -> Select[Any]:
    """`stmt` limited to the page after the cursor, plus one row that tells if more follow."""
    if page.cursor:
        after = decode_cursor(page.cursor)
        stmt = stmt.where(id_column > after if page.order == "asc" else id_column < after)
    ordered = id_column.asc() if page.order == "asc" else id_column.desc()
    return stmt.order_by(ordered).limit(page.limit + 1)


def _cut(rows: list[Any], page: PageParams) -> tuple[list[Any], str | None]:
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return rows, (encode_cursor(rows[-1].id) if more and rows else None)


async def paginate(
    db: AsyncSession, stmt: Select[Any], id_column: Any, page: PageParams
) -> tuple[list[Any], str | None]:
    """Run `stmt` one page at a time, ordered by `id_column` (a UUIDv7 column)."""
    return _cut(list((await db.scalars(_one_page(stmt, id_column, page))).all()), page)


async def paginate_rows(
    db: AsyncConnection | AsyncSession, stmt: Select[Any], id_column: Any, page: PageParams
) -> tuple[list[Row[Any]], str | None]:
    """Like `paginate`, for a Core select whose rows have an `id`: rows, not ORM objects.

    One statement, so it may run on `Kernel.statement()`: the hot listings skip the ORM
    session, its transaction and its identity map.
    """
    return _cut(list((await db.execute(_one_page(stmt, id_column, page))).all()), page)
