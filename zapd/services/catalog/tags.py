"""Tags: free labels on tickets and clients; CRUD with tenancy, roles, audit and events."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import Role
from shared.protocol.catalog import TAG_UPDATE, TagCreate, TagUpdate
from zapd.db.models import Company, Tag
from zapd.errors import Conflict, NotFound
from zapd.kernel import audit, changes
from zapd.kernel.hot import HotReads, HotShapes
from zapd.kernel.principal import Actor, Principal
from zapd.kernel.scoping import get_owned, referenced_ids
from zapd.kernel.uniqueness import ensure_free, flush_unique


async def get(db: AsyncSession, p: Principal, tag_id: uuid.UUID) -> Tag:
    """Return a tag of the caller's company, or 404."""
    return await get_owned(db, p, Tag, tag_id, "tag")


_TABLE = Tag.__table__


def _listing(scoped: bool) -> Select[Any]:
    stmt = select(_TABLE).order_by(_TABLE.c.name, _TABLE.c.id)
    return stmt.where(_TABLE.c.company_id == bindparam("company")) if scoped else stmt


_LISTINGS = HotShapes(_listing)


async def list_(hot: HotReads, p: Principal, company_id: uuid.UUID | None = None) -> list[Any]:
    """List tags by name (every role may read them): one Core statement, a hot read."""
    company = p.company_filter(company_id)
    return await hot.rows(_LISTINGS(company is not None), {"company": company})


async def of_company(
    db: AsyncSession, company_id: uuid.UUID, tag_ids: Iterable[uuid.UUID]
) -> list[uuid.UUID]:
    """Return `tag_ids` deduplicated, in order; 404 if one is not a tag of `company_id`."""
    return await referenced_ids(db, Tag, tag_ids, company_id, field="tag_ids", what="tag")


def _taken(name: str) -> Conflict:
    return Conflict(f"a tag named {name!r} already exists")


async def _check_unique(
    db: AsyncSession, company_id: uuid.UUID, name: str, self_id: uuid.UUID | None
) -> None:
    await ensure_free(
        db,
        Tag.id,
        Tag.company_id == company_id,
        func.lower(Tag.name) == name.lower(),
        self_id=self_id,
        conflict=_taken(name),
    )


async def create(db: AsyncSession, actor: Actor, body: TagCreate) -> Tag:
    """Create a tag (SUPERVISOR and up)."""
    p = actor.principal
    p.require(Role.SUPERVISOR)
    company_id = p.company_for_write(body.company_id)
    if await db.get(Company, company_id) is None:
        raise NotFound("company not found")
    await _check_unique(db, company_id, body.name, None)
    row = Tag(company_id=company_id, name=body.name, color=body.color)
    db.add(row)
    await flush_unique(db, _taken(body.name))
    await changes.record(db, actor, "create", "tag", row, event=TAG_UPDATE)
    return row


async def update(db: AsyncSession, actor: Actor, tag_id: uuid.UUID, body: TagUpdate) -> Tag:
    """Rename or recolor a tag (SUPERVISOR and up); `color: null` removes the color."""
    p = actor.principal
    # Ownership first: a foreign id is 404 whatever the role.
    row = await get(db, p, tag_id)
    p.require(Role.SUPERVISOR)
    fields = changes.patch_fields(body, not_null=("name",))
    if "name" in fields:
        await _check_unique(db, row.company_id, fields["name"], row.id)
    before = audit.snapshot(row)
    for key, value in fields.items():
        setattr(row, key, value)
    await flush_unique(db, _taken(row.name))
    await changes.record(db, actor, "update", "tag", row, before=before, event=TAG_UPDATE)
    return row


async def delete(db: AsyncSession, actor: Actor, tag_id: uuid.UUID) -> None:
    """Remove a tag (SUPERVISOR and up); it comes off every ticket and client."""
    p = actor.principal
    # Ownership first: a foreign id is 404 whatever the role.
    row = await get(db, p, tag_id)
    p.require(Role.SUPERVISOR)
    await changes.record(db, actor, "delete", "tag", row, event=TAG_UPDATE)
