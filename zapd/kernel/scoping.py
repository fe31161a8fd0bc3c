"""Tenant scoping shared by every service: ownership-checked lookups and list filters.

Invariant: an id of another company answers 404 wherever it appears, in the path or in
a body. `referenced` and `referenced_ids` are the one check for ids inside bodies (a
department, tag, category, media, user or message named by a request): an id that names
nothing of the caller's company is "not found", exactly as a path id would be, so a
foreign id and a made-up one look the same. A row of the caller's own company that is
in the wrong state (inactive) is the caller's to see, and stays a 422 at its service.

Also the operator's lookup of a company by id or CNPJ (`resolve_company`, offline tools)
and the per-company counters (ticket numbers, event seq).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
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


def unknown_reference(field: str, what: str, ids: Iterable[object] = ()) -> NotFound:
    """The error for an id in a body naming nothing of the caller's company (404)."""
    listed = [str(i) for i in ids][:5]
    return NotFound(f"{field}: no such {what}" + (f": {', '.join(listed)}" if listed else ""))


async def referenced(
    db: AsyncSession,
    model: type[R],
    row_id: uuid.UUID,
    company_id: uuid.UUID | None,
    *,
    field: str,
    what: str,
) -> R:
    """Return the row a body names if `company_id` owns it; 404 otherwise."""
    row = await db.get(model, row_id)
    if row is None or row.company_id != company_id:
        raise unknown_reference(field, what)
    return row


async def referenced_ids(
    db: AsyncSession,
    model: Any,
    ids: Iterable[uuid.UUID],
    company_id: uuid.UUID | None,
    *,
    field: str,
    what: str,
) -> list[uuid.UUID]:
    """Return `ids` deduplicated in order if `company_id` owns every one; 404 otherwise."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    found = set(
        (
            await db.scalars(
                select(model.id).where(model.company_id == company_id, model.id.in_(wanted))
            )
        ).all()
    )
    missing = [i for i in wanted if i not in found]
    if missing:
        raise unknown_reference(field, what, missing)
    return wanted


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
