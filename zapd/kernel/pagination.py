"""Cursor pagination over time-ordered (UUIDv7) ids: stable under concurrent inserts."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Integer, Select, bindparam
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import ErrorCode
from zapd.errors import ValidationFailed
from zapd.kernel.hot import HotQuery, HotReads

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


class Listing:
    """A Core listing paged by id, its statements built once per shape, run as hot reads.

    A shape is: limited to one company or not, after a cursor or not, ascending or
    descending; eight statements at most, each built on first use and compiled once
    per dialect (`HotQuery`). A request binds `company`, `after` and `limit` and builds
    nothing. Rows, not ORM objects, in one statement, on `Kernel.hot` (no session,
    transaction or identity map).
    """

    def __init__(self, stmt: Select[Any], id_column: Any, company_column: Any) -> None:
        self._base = stmt
        self._id = id_column
        self._company = company_column
        self._shapes: dict[tuple[bool, bool, str], HotQuery] = {}

    def statement(self, scoped: bool, after: bool, order: str) -> HotQuery:
        """The statement of one shape (parameters `company`, `after`, `limit`)."""
        key = (scoped, after, order)
        query = self._shapes.get(key)
        if query is None:
            stmt = self._base
            if scoped:
                stmt = stmt.where(self._company == bindparam("company"))
            if after:
                edge: Any = bindparam("after")
                stmt = stmt.where(self._id > edge if order == "asc" else self._id < edge)
            ordered = self._id.asc() if order == "asc" else self._id.desc()
            stmt = stmt.order_by(ordered).limit(bindparam("limit", type_=Integer))
            query = self._shapes[key] = HotQuery(stmt)
        return query

    async def page(
        self, hot: HotReads, page: PageParams, company: uuid.UUID | None
    ) -> tuple[list[Any], str | None]:
        """One page of rows (of one company unless `company` is None), and the next cursor."""
        params: dict[str, Any] = {"limit": page.limit + 1}
        if company is not None:
            params["company"] = company
        if page.cursor:
            params["after"] = decode_cursor(page.cursor)
        query = self.statement(company is not None, "after" in params, page.order)
        return _cut(await hot.rows(query, params), page)
