"""/api/v1/quick-replies: canned answers agents expand with `/shortcut`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from shared.protocol.catalog import QuickReplyCreate, QuickReplyOut, QuickReplyUpdate
from zapd.api.deps import ActorDep, Auth, KernelDep
from zapd.services.catalog import quick_replies

router = APIRouter(prefix="/api/v1/quick-replies", tags=["quick-replies"])


@router.get("", response_model=list[QuickReplyOut])
async def list_quick_replies(
    principal: Auth,
    kernel: KernelDep,
    q: Annotated[str | None, Query(max_length=65, description="shortcut prefix")] = None,
    department_id: Annotated[
        uuid.UUID | None, Query(description="only those usable in this department")
    ] = None,
    company_id: Annotated[uuid.UUID | None, Query(description="global admins only")] = None,
) -> list[QuickReplyOut]:
    """List the quick replies the caller may use (agents: company-wide + their departments)."""
    async with kernel.read() as db:
        rows = await quick_replies.list_(
            db, principal, q=q, department_id=department_id, company_id=company_id
        )
        return [QuickReplyOut.model_validate(r) for r in rows]


@router.post("", response_model=QuickReplyOut, status_code=201)
async def create_quick_reply(
    body: QuickReplyCreate, actor: ActorDep, kernel: KernelDep
) -> QuickReplyOut:
    """Create a quick reply (ADMIN)."""
    async with kernel.tx() as db:
        return QuickReplyOut.model_validate(await quick_replies.create(db, actor, body))


@router.get("/{reply_id}", response_model=QuickReplyOut)
async def get_quick_reply(reply_id: uuid.UUID, principal: Auth, kernel: KernelDep) -> QuickReplyOut:
    """Show one quick reply the caller may use."""
    async with kernel.read() as db:
        return QuickReplyOut.model_validate(await quick_replies.get(db, principal, reply_id))


@router.patch("/{reply_id}", response_model=QuickReplyOut)
async def update_quick_reply(
    reply_id: uuid.UUID, body: QuickReplyUpdate, actor: ActorDep, kernel: KernelDep
) -> QuickReplyOut:
    """Change a quick reply (ADMIN); only the fields given change."""
    async with kernel.tx() as db:
        return QuickReplyOut.model_validate(await quick_replies.update(db, actor, reply_id, body))


@router.delete("/{reply_id}", status_code=204)
async def delete_quick_reply(reply_id: uuid.UUID, actor: ActorDep, kernel: KernelDep) -> None:
    """Remove a quick reply (ADMIN)."""
    async with kernel.tx() as db:
        await quick_replies.delete(db, actor, reply_id)
