"""Tenant scoping shared by every service: ownership-checked lookups and list filters."""

from __future__ import annotations

import uuid
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, update
from sqlalchemy.ext.asyncio import AsyncSession

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


async def next_ticket_number(db: AsyncSession, company_id: uuid.UUID) -> int:
    """Take the company's next human-friendly ticket number (#1, #2...) in this transaction."""
    number = await db.scalar(
        update(Company)
        .where(Company.id == company_id)
        .values(last_ticket_number=Company.last_ticket_number + 1)
        .returning(Company.last_ticket_number)
        .execution_options(synchronize_session=False)
    )
    if number is None:
        raise NotFound("company not found")
    return int(number)
