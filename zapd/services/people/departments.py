"""Departments: CRUD with tenancy, roles, audit and realtime events."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import Role
from shared.protocol.departments import DepartmentCreate, DepartmentUpdate
from shared.protocol.events import DEPARTMENT_UPDATE
from shared.text import slugify
from zapd.db.models import Company, Department
from zapd.errors import Conflict, NotFound, ValidationFailed
from zapd.kernel import audit, changes
from zapd.kernel.hot import HotReads
from zapd.kernel.pagination import Listing, PageParams
from zapd.kernel.principal import Actor, Principal
from zapd.kernel.scoping import get_owned, referenced


async def get(db: AsyncSession, p: Principal, department_id: uuid.UUID) -> Department:
    """Return a department of the caller's company, or 404."""
    return await get_owned(db, p, Department, department_id, "department")


_TABLE = Department.__table__
_LISTING = Listing(select(_TABLE), _TABLE.c.id, _TABLE.c.company_id)


async def list_(
    hot: HotReads,
    p: Principal,
    page: PageParams,
    company_id: uuid.UUID | None = None,
) -> tuple[list[Any], str | None]:
    """Page through departments like every listing (by id); every role may read them.

    A page is in id order (creation order with `order=asc`); clients that show the menu
    sort the whole list by `menu_order`. One Core statement returning rows (a column
    per `Department` attribute), run as a hot read.
    """
    return await _LISTING.page(hot, page, p.company_filter(company_id))


async def _check_refs(
    db: AsyncSession, company_id: uuid.UUID, fields: dict[str, Any], self_id: uuid.UUID | None
) -> None:
    fallback = fields.get("fallback_department_id")
    if fallback is not None:
        if fallback == self_id:
            raise ValidationFailed("a department cannot fall back to itself")
        await referenced(
            db, Department, fallback, company_id, field="fallback_department_id", what="department"
        )


async def _check_unique(
    db: AsyncSession,
    company_id: uuid.UUID,
    name: str | None,
    slug: str | None,
    self_id: uuid.UUID | None,
) -> None:
    for col, value in ((Department.name, name), (Department.slug, slug)):
        if value is None:
            continue
        stmt = select(Department.id).where(Department.company_id == company_id, col == value)
        if self_id is not None:
            stmt = stmt.where(Department.id != self_id)
        if await db.scalar(stmt) is not None:
            raise Conflict(f"a department with {col.key} {value!r} already exists")


async def create(db: AsyncSession, actor: Actor, body: DepartmentCreate) -> Department:
    """Create a department (ADMIN)."""
    p = actor.principal
    p.require(Role.ADMIN)
    company_id = p.company_for_write(body.company_id)
    if await db.get(Company, company_id) is None:
        raise NotFound("company not found")
    fields = body.model_dump(exclude_unset=True, exclude={"company_id"})
    fields = {k: v for k, v in fields.items() if v is not None}
    fields["slug"] = body.slug or slugify(body.name)
    if not fields["slug"]:
        raise ValidationFailed("name must contain letters or digits")
    if "menu_order" not in fields:
        top = await db.scalar(
            select(func.max(Department.menu_order)).where(Department.company_id == company_id)
        )
        fields["menu_order"] = (top or 0) + 1
    await _check_unique(db, company_id, body.name, fields["slug"], None)
    await _check_refs(db, company_id, fields, None)
    row = Department(company_id=company_id, **fields)
    db.add(row)
    await db.flush()
    await changes.record(db, actor, "create", "department", row, event=DEPARTMENT_UPDATE)
    return row


async def update(
    db: AsyncSession, actor: Actor, department_id: uuid.UUID, body: DepartmentUpdate
) -> Department:
    """Change a department (ADMIN); only the fields given change."""
    p = actor.principal
    # Ownership first: a foreign id is 404 whatever the role.
    row = await get(db, p, department_id)
    p.require(Role.ADMIN)
    fields = changes.patch_fields(
        body,
        not_null=(
            "name",
            "slug",
            "menu_order",
            "keywords",
            "business_hours",
            "auto_assign",
            "active",
        ),
    )
    await _check_unique(db, row.company_id, fields.get("name"), fields.get("slug"), row.id)
    await _check_refs(db, row.company_id, fields, row.id)
    before = audit.snapshot(row)
    for key, value in fields.items():
        setattr(row, key, value)
    await db.flush()
    await changes.record(
        db, actor, "update", "department", row, before=before, event=DEPARTMENT_UPDATE
    )
    return row


async def delete(db: AsyncSession, actor: Actor, department_id: uuid.UUID) -> None:
    """Remove a department (ADMIN); its tickets keep their history with no department."""
    p = actor.principal
    # Ownership first: a foreign id is 404 whatever the role.
    row = await get(db, p, department_id)
    p.require(Role.ADMIN)
    await changes.record(db, actor, "delete", "department", row, event=DEPARTMENT_UPDATE)
