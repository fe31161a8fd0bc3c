"""/api/v1/outbox: what is waiting to go out, what died, and the admin's retry and drop."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from shared.enums import OutboxState
from shared.protocol.common import Page
from shared.protocol.messages import OutboxOut
from zapd.api.deps import ActorDep, Auth, KernelDep, PageDep
from zapd.services.delivery import outbox

router = APIRouter(prefix="/api/v1/outbox", tags=["outbox"])


@router.get("", response_model=Page[OutboxOut])
async def list_outbox(
    principal: Auth,
    kernel: KernelDep,
    page: PageDep,
    state: Annotated[OutboxState | None, Query()] = None,
    session_id: Annotated[uuid.UUID | None, Query()] = None,
    company_id: Annotated[uuid.UUID | None, Query(description="global admins only")] = None,
) -> Page[OutboxOut]:
    """List outbox entries, newest first by default (ADMIN)."""
    async with kernel.read() as db:
        rows, cursor = await outbox.list_(
            db, principal, page, state=state, session_id=session_id, company_id=company_id
        )
        return Page[OutboxOut](
            items=[OutboxOut.model_validate(r) for r in rows], next_cursor=cursor
        )


@router.get("/{outbox_id}", response_model=OutboxOut)
async def get_outbox(outbox_id: uuid.UUID, principal: Auth, kernel: KernelDep) -> OutboxOut:
    """Show one outbox entry (ADMIN)."""
    async with kernel.read() as db:
        return OutboxOut.model_validate(await outbox.get(db, principal, outbox_id))


@router.post("/{outbox_id}/retry", response_model=OutboxOut)
async def retry_outbox(outbox_id: uuid.UUID, actor: ActorDep, kernel: KernelDep) -> OutboxOut:
    """Send a DEAD or waiting entry again now, attempts reset (ADMIN)."""
    async with kernel.tx() as db:
        return OutboxOut.model_validate(await outbox.retry(db, actor, outbox_id))


@router.post("/{outbox_id}/drop", response_model=OutboxOut)
async def drop_outbox(outbox_id: uuid.UUID, actor: ActorDep, kernel: KernelDep) -> OutboxOut:
    """Give up on a PENDING or DEAD entry; its message becomes FAILED (ADMIN)."""
    async with kernel.tx() as db:
        return OutboxOut.model_validate(await outbox.drop(db, actor, outbox_id))
