"""Tenant scoping shared by every service: ownership-checked lookups and list filters."""

from __future__ import annotations

import uuid
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from zapd.db.models import Company
from zapd.errors import NotFound
from zapd.kernel.principal import Principal


class _Owned(Protocol):
    company_id: Any


R = TypeVar("R", bound=_Owned)


async def get_owned(
    db: AsyncSession, p: Principal, model: type[R], row_id: uuid.UUID, label: str
) -> R:
    """Return the row if the caller's company owns it; 404 otherwise (never 403)."""
    row = await db.get(model, row_id)
    if row is None or not p.owns(row.company_id):
        raise NotFound(f"{label} not found")
    return row


def company_scoped(
    stmt: Select[Any], column: Any, p: Principal, requested: uuid.UUID | None = None
) -> Select[Any]:
    """Limit a listing to the caller's company (or the one a global admin names)."""
    company = p.company_filter(requested)
    return stmt if company is None else stmt.where(column == company)


async def take_company_counter(
    db: AsyncSession, company_id: uuid.UUID, counter: InstrumentedAttribute[int]
) -> int | None:
    """Add one to a per-company counter column and return it (None: no such company).

    The UPDATE holds the company row's lock until commit (PostgreSQL; SQLite's BEGIN
    IMMEDIATE serialises every writer), so numbers are taken in commit order, each once.
    """
    value = await db.scalar(
        update(Company)
        .where(Company.id == company_id)
        .values({counter: counter + 1})
        .returning(counter)
        .execution_options(synchronize_session=False)
    )
    return None if value is None else int(value)


async def next_ticket_number(db: AsyncSession, company_id: uuid.UUID) -> int:
    """Take the company's next human-friendly ticket number (#1, #2...) in this transaction."""
    number = await take_company_counter(db, company_id, Company.last_ticket_number)
    if number is None:
        raise NotFound("company not found")
    return number
