"""Ticket closing categories: CRUD with tenancy, roles, audit and realtime events."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import Role
from shared.protocol.catalog import CATEGORY_UPDATE, CategoryCreate, CategoryUpdate
from zapd.db.models import Category, Company
from zapd.errors import Conflict, NotFound
from zapd.kernel import audit, changes
from zapd.kernel.hot import HotReads, HotShapes
from zapd.kernel.principal import Actor, Principal
from zapd.kernel.scoping import get_owned
from zapd.kernel.uniqueness import ensure_free, flush_unique


async def get(db: AsyncSession, p: Principal, category_id: uuid.UUID) -> Category:
    """Return a category of the caller's company, or 404."""
    return await get_owned(db, p, Category, category_id, "category")


_TABLE = Category.__table__


def _listing(scoped: bool, by_active: bool) -> Select[Any]:
    stmt = select(_TABLE).order_by(_TABLE.c.name, _TABLE.c.id)
    if scoped:
        stmt = stmt.where(_TABLE.c.company_id == bindparam("company"))
    if by_active:
        stmt = stmt.where(_TABLE.c.active == bindparam("active"))
    return stmt


_LISTINGS = HotShapes(_listing)


async def list_(
    hot: HotReads,
    p: Principal,
    company_id: uuid.UUID | None = None,
    active: bool | None = None,
) -> list[Any]:
    """List categories by name (every role may read them): one Core statement, a hot read."""
    company = p.company_filter(company_id)
    query = _LISTINGS(company is not None, active is not None)
    return await hot.rows(query, {"company": company, "active": active})


def _taken(name: str) -> Conflict:
    return Conflict(f"a category named {name!r} already exists")


async def _check_unique(
    db: AsyncSession, company_id: uuid.UUID, name: str, self_id: uuid.UUID | None
) -> None:
    await ensure_free(
        db,
        Category.id,
        Category.company_id == company_id,
        func.lower(Category.name) == name.lower(),
        self_id=self_id,
        conflict=_taken(name),
    )


async def create(db: AsyncSession, actor: Actor, body: CategoryCreate) -> Category:
    """Create a category (ADMIN)."""
    p = actor.principal
    p.require(Role.ADMIN)
    company_id = p.company_for_write(body.company_id)
    if await db.get(Company, company_id) is None:
        raise NotFound("company not found")
    await _check_unique(db, company_id, body.name, None)
    row = Category(
        company_id=company_id, name=body.name, description=body.description, active=body.active
    )
    db.add(row)
    await flush_unique(db, _taken(body.name))
    await changes.record(db, actor, "create", "category", row, event=CATEGORY_UPDATE)
    return row


async def update(
    db: AsyncSession, actor: Actor, category_id: uuid.UUID, body: CategoryUpdate
) -> Category:
    """Change a category (ADMIN); only the fields given change."""
    p = actor.principal
    # Ownership first: a foreign id is 404 whatever the role.
    row = await get(db, p, category_id)
    p.require(Role.ADMIN)
    fields = changes.patch_fields(body, not_null=("name", "active"))
    if "name" in fields:
        await _check_unique(db, row.company_id, fields["name"], row.id)
    before = audit.snapshot(row)
    for key, value in fields.items():
        setattr(row, key, value)
    await flush_unique(db, _taken(row.name))
    await changes.record(db, actor, "update", "category", row, before=before, event=CATEGORY_UPDATE)
    return row


async def delete(db: AsyncSession, actor: Actor, category_id: uuid.UUID) -> None:
    """Remove a category (ADMIN); tickets closed with it keep no category."""
    p = actor.principal
    # Ownership first: a foreign id is 404 whatever the role.
    row = await get(db, p, category_id)
    p.require(Role.ADMIN)
    await changes.record(db, actor, "delete", "category", row, event=CATEGORY_UPDATE)
