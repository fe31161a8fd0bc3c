"""/api/v1/audit: who changed what (company admins and global admins)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from shared.protocol.audit import AuditOut
from shared.protocol.common import Page
from zapd.api.deps import Auth, KernelDep, PageDep
from zapd.services.compliance import audit_log as audit_query

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("", response_model=Page[AuditOut])
async def list_audit(
    principal: Auth,
    kernel: KernelDep,
    page: PageDep,
    company_id: Annotated[uuid.UUID | None, Query(description="global admins only")] = None,
    user_id: Annotated[uuid.UUID | None, Query()] = None,
    action: Annotated[
        str | None, Query(max_length=64, description="exact, or a prefix as 'ticket.*'")
    ] = None,
    entity_type: Annotated[str | None, Query(max_length=64)] = None,
    entity_id: Annotated[uuid.UUID | None, Query()] = None,
    since: Annotated[AwareDatetime | None, Query(description="inclusive, with a zone")] = None,
    until: Annotated[AwareDatetime | None, Query(description="exclusive, with a zone")] = None,
) -> Page[AuditOut]:
    """Page through the audit log, newest first by default (ADMIN)."""
    f = audit_query.AuditFilter(
        company_id=company_id,
        user_id=user_id,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        since=since,
        until=until,
    )
    async with kernel.read() as db:
        rows, cursor = await audit_query.list_(db, principal, f, page)
        return Page[AuditOut](items=[AuditOut.model_validate(r) for r in rows], next_cursor=cursor)
