"""Unique names within a company: the pre-check and the race it can lose, one Conflict.

Invariant: a create or rename that would repeat a name the database holds unique
(a category, tag or session name, a quick-reply shortcut) answers 409 with the same
message whether the pre-check found the other row or a concurrent writer committed it
first. The unique index is the arbiter; the pre-check only spares a failed statement.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from zapd.errors import Conflict


async def ensure_free(
    db: AsyncSession,
    id_column: InstrumentedAttribute[uuid.UUID],
    *where: ColumnElement[bool],
    self_id: uuid.UUID | None,
    conflict: Conflict,
) -> None:
    """Raise `conflict` if a row other than `self_id` matches `where`."""
    stmt = select(id_column).where(*where)
    if self_id is not None:
        stmt = stmt.where(id_column != self_id)
    if await db.scalar(stmt) is not None:
        raise conflict


async def flush_unique(db: AsyncSession, conflict: Conflict) -> None:
    """Flush; a unique violation (a concurrent writer won past the pre-check) is `conflict`."""
    try:
        await db.flush()
    except IntegrityError:
        raise conflict from None
