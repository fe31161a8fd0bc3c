"""Reading the audit log: company admins see their company's, global admins everyone's."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import Role
from shared.protocol.audit import ACTION_FILTER
from zapd.db.models import AuditLog
from zapd.errors import ValidationFailed
from zapd.kernel.pagination import PageParams, paginate
from zapd.kernel.principal import Principal


@dataclass(frozen=True)
class AuditFilter:
    """What `GET /audit` narrows the log to; `since` is inclusive, `until` exclusive."""

    company_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    action: str | None = None  # exact, or a prefix written "ticket.*"
    entity_type: str | None = None
    entity_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_(
    db: AsyncSession, p: Principal, f: AuditFilter, page: PageParams
) -> tuple[list[AuditLog], str | None]:
    """Page through the audit log (ADMIN of the company; global admins: any or all)."""
    p.require(Role.ADMIN)
    for when in (f.since, f.until):
        if when is not None and when.tzinfo is None:
            raise ValidationFailed("since/until need a time zone (e.g. 2025-01-31T12:00:00Z)")
    if f.since is not None and f.until is not None and f.since >= f.until:
        raise ValidationFailed("since must come before until")
    stmt = select(AuditLog)
    company = p.company_filter(f.company_id)
    if company is not None:
        stmt = stmt.where(AuditLog.company_id == company)
    if f.user_id is not None:
        stmt = stmt.where(AuditLog.user_id == f.user_id)
    if f.action:
        if not ACTION_FILTER.match(f.action):
            raise ValidationFailed("action: like 'ticket.transfer', or 'ticket.*' for a prefix")
        if f.action.endswith(".*"):
            # ACTION_FILTER leaves no LIKE wildcard but "_" to escape.
            prefix = f.action[:-1].replace("_", "\\_")
            stmt = stmt.where(AuditLog.action.like(f"{prefix}%", escape="\\"))
        else:
            stmt = stmt.where(AuditLog.action == f.action)
    if f.entity_type:
        stmt = stmt.where(AuditLog.entity_type == f.entity_type)
    if f.entity_id is not None:
        stmt = stmt.where(AuditLog.entity_id == f.entity_id)
    if f.since is not None:
        stmt = stmt.where(AuditLog.created_at >= f.since)
    if f.until is not None:
        stmt = stmt.where(AuditLog.created_at < f.until)
    return await paginate(db, stmt, AuditLog.id, page)
