"""Quick replies: canned answers, company-wide or per department."""

from __future__ import annotations

import uuid

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import Role
from shared.protocol.catalog import QUICK_REPLY_UPDATE, QuickReplyCreate, QuickReplyUpdate
from zapd.db.models import Company, Department, QuickReply
from zapd.errors import Conflict, NotFound
from zapd.kernel import audit, changes
from zapd.kernel.principal import Actor, Principal
from zapd.kernel.scoping import referenced
from zapd.kernel.uniqueness import ensure_free, flush_unique


def _visible(p: Principal, row: QuickReply) -> bool:
    if not p.owns(row.company_id):
        return False
    if p.sees_all_departments() or row.department_id is None:
        return True
    return row.department_id in p.department_ids


async def get(db: AsyncSession, p: Principal, reply_id: uuid.UUID) -> QuickReply:
    """Return a quick reply the caller may use, or 404."""
    row = await db.get(QuickReply, reply_id)
    if row is None or not _visible(p, row):
        raise NotFound("quick reply not found")
    return row


async def list_(
    db: AsyncSession,
    p: Principal,
    *,
    q: str | None = None,
    department_id: uuid.UUID | None = None,
    company_id: uuid.UUID | None = None,
) -> list[QuickReply]:
    """List the quick replies the caller may use, by shortcut.

    Agents see company-wide ones plus those of their departments. `q` keeps shortcuts
    starting with it (a leading "/" ignored); `department_id` keeps those usable in that
    department (company-wide ones plus its own).
    """
    stmt = select(QuickReply).order_by(QuickReply.shortcut, QuickReply.id)
    company = p.company_filter(company_id)
    if company is not None:
        stmt = stmt.where(QuickReply.company_id == company)
    if not p.sees_all_departments():
        stmt = stmt.where(
            or_(
                QuickReply.department_id.is_(None),
                QuickReply.department_id.in_(list(p.department_ids)),
            )
        )
    if department_id is not None:
        dep = await db.get(Department, department_id)
        if dep is None or not p.owns(dep.company_id):
            raise NotFound("department not found")
        stmt = stmt.where(
            QuickReply.company_id == dep.company_id,
            or_(QuickReply.department_id.is_(None), QuickReply.department_id == department_id),
        )
    if q:
        prefix = q.removeprefix("/").lower()
        if prefix:
            stmt = stmt.where(QuickReply.shortcut.startswith(prefix, autoescape=True))
    return list((await db.scalars(stmt)).all())


async def _check_department(
    db: AsyncSession, company_id: uuid.UUID, department_id: uuid.UUID | None
) -> None:
    if department_id is None:
        return
    await referenced(
        db, Department, department_id, company_id, field="department_id", what="department"
    )


def _taken(shortcut: str) -> Conflict:
    return Conflict(f"the shortcut /{shortcut} is already in use there")


async def _check_unique(
    db: AsyncSession,
    company_id: uuid.UUID,
    department_id: uuid.UUID | None,
    shortcut: str,
    self_id: uuid.UUID | None,
) -> None:
    dep_match = (
        QuickReply.department_id.is_(None)
        if department_id is None
        else QuickReply.department_id == department_id
    )
    await ensure_free(
        db,
        QuickReply.id,
        QuickReply.company_id == company_id,
        QuickReply.shortcut == shortcut,
        dep_match,
        self_id=self_id,
        conflict=_taken(shortcut),
    )


def _event_data(row: QuickReply, action: str) -> dict[str, object]:
    return {"id": row.id, "department_id": row.department_id, "action": action}


async def create(db: AsyncSession, actor: Actor, body: QuickReplyCreate) -> QuickReply:
    """Create a quick reply (ADMIN)."""
    p = actor.principal
    p.require(Role.ADMIN)
    company_id = p.company_for_write(body.company_id)
    if await db.get(Company, company_id) is None:
        raise NotFound("company not found")
    await _check_department(db, company_id, body.department_id)
    await _check_unique(db, company_id, body.department_id, body.shortcut, None)
    row = QuickReply(
        company_id=company_id,
        department_id=body.department_id,
        shortcut=body.shortcut,
        body=body.body,
        created_by_id=p.user_id,
    )
    db.add(row)
    await flush_unique(db, _taken(body.shortcut))
    await changes.record(
        db,
        actor,
        "create",
        "quick_reply",
        row,
        event=QUICK_REPLY_UPDATE,
        data=_event_data(row, "create"),
        department_id=row.department_id,
    )
    return row


async def update(
    db: AsyncSession, actor: Actor, reply_id: uuid.UUID, body: QuickReplyUpdate
) -> QuickReply:
    """Change a quick reply (ADMIN); `department_id: null` makes it company-wide."""
    p = actor.principal
    # Ownership first: a foreign id is 404 whatever the role.
    row = await get(db, p, reply_id)
    p.require(Role.ADMIN)
    fields = changes.patch_fields(body, not_null=("shortcut", "body"))
    department_id = fields.get("department_id", row.department_id)
    shortcut = fields.get("shortcut", row.shortcut)
    if "department_id" in fields:
        await _check_department(db, row.company_id, department_id)
    if "department_id" in fields or "shortcut" in fields:
        await _check_unique(db, row.company_id, department_id, shortcut, row.id)
    before = audit.snapshot(row)
    old_department = row.department_id
    for key, value in fields.items():
        setattr(row, key, value)
    await flush_unique(db, _taken(shortcut))
    # Moving between departments: both audiences learn of it (or everyone, if either is None).
    audience = row.department_id if row.department_id == old_department else None
    await changes.record(
        db,
        actor,
        "update",
        "quick_reply",
        row,
        before=before,
        event=QUICK_REPLY_UPDATE,
        data=_event_data(row, "update"),
        department_id=audience,
    )
    return row


async def delete(db: AsyncSession, actor: Actor, reply_id: uuid.UUID) -> None:
    """Remove a quick reply (ADMIN)."""
    p = actor.principal
    # Ownership first: a foreign id is 404 whatever the role.
    row = await get(db, p, reply_id)
    p.require(Role.ADMIN)
    await changes.record(
        db,
        actor,
        "delete",
        "quick_reply",
        row,
        event=QUICK_REPLY_UPDATE,
        data=_event_data(row, "delete"),
        department_id=row.department_id,
    )
