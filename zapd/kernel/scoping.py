"""Tenant scoping shared by every service: ownership-checked lookups and list filters.

Also the operator's lookup of a company by id or CNPJ (`resolve_company`, offline tools)
and the per-company counters (ticket numbers, event seq).
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from shared.cnpj import InvalidCNPJ, normalize_cnpj
from shared.errors import ErrorCode
from zapd.db.models import Company
from zapd.errors import BadRequest, NotFound
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


def _as_uuid(ref: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(ref)
    except ValueError:
        return None


async def resolve_company(db: AsyncSession | AsyncConnection, ref: str) -> Company:
    """Return the company named by its id or CNPJ (404 if none; 400 if neither shape)."""
    ref = ref.strip()
    cid = _as_uuid(ref)
    if cid is not None:
        stmt = select(Company).where(Company.id == cid)
    else:
        try:
            cnpj = normalize_cnpj(ref)
        except InvalidCNPJ as exc:
            raise BadRequest(
                f"--company {ref!r} is neither a company id nor a CNPJ ({exc})",
                code=ErrorCode.USAGE,
            ) from None
        stmt = select(Company).where(Company.cnpj == cnpj)
    row = (await db.execute(stmt)).scalars().first()
    if row is None:
        raise NotFound(f"company {ref} not found")
    return row
