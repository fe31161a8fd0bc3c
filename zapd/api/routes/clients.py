"""/api/v1/clients: the customers, their search, blocking and tags."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from shared.protocol.clients import ClientCreate, ClientOut, ClientTagsSet, ClientUpdate
from shared.protocol.common import Page
from zapd.api.deps import ActorDep, Auth, KernelDep, PageDep
from zapd.db.models import Client
from zapd.services.people import clients

router = APIRouter(prefix="/api/v1/clients", tags=["clients"])


async def _outs(db: AsyncSession, rows: Sequence[Client]) -> list[ClientOut]:
    tag_ids = await clients.tag_map(db, [r.id for r in rows])
    return [ClientOut.model_validate(r).model_copy(update={"tag_ids": tag_ids[r.id]}) for r in rows]


@router.get("", response_model=Page[ClientOut])
async def list_clients(
    principal: Auth,
    kernel: KernelDep,
    page: PageDep,
    q: Annotated[
        str | None, Query(max_length=200, description="name, profile name or phone digits")
    ] = None,
    blocked: bool | None = None,
    tag_id: uuid.UUID | None = None,
    company_id: Annotated[uuid.UUID | None, Query(description="global admins only")] = None,
) -> Page[ClientOut]:
    """List clients with search and filters, one page at a time (every role)."""
    async with kernel.read() as db:
        rows, cursor = await clients.list_(
            db, principal, page, q=q, blocked=blocked, tag_id=tag_id, company_id=company_id
        )
        return Page[ClientOut](items=await _outs(db, rows), next_cursor=cursor)


@router.post("", response_model=ClientOut, status_code=201)
async def create_client(body: ClientCreate, actor: ActorDep, kernel: KernelDep) -> ClientOut:
    """Add a client by hand (every role); 409 if the phone is already known."""
    async with kernel.tx() as db:
        row = await clients.create(db, actor, body)
        return ClientOut.model_validate(row)


@router.get("/{client_id}", response_model=ClientOut)
async def get_client(client_id: uuid.UUID, principal: Auth, kernel: KernelDep) -> ClientOut:
    """Show one client with its tag ids."""
    async with kernel.read() as db:
        row = await clients.get(db, principal, client_id)
        return (await _outs(db, [row]))[0]


@router.patch("/{client_id}", response_model=ClientOut)
async def update_client(
    client_id: uuid.UUID, body: ClientUpdate, actor: ActorDep, kernel: KernelDep
) -> ClientOut:
    """Change a client (every role; `blocked` needs SUPERVISOR and up)."""
    async with kernel.tx() as db:
        row = await clients.update(db, actor, client_id, body)
        return (await _outs(db, [row]))[0]


@router.put("/{client_id}/tags", response_model=ClientOut)
async def set_client_tags(
    client_id: uuid.UUID, body: ClientTagsSet, actor: ActorDep, kernel: KernelDep
) -> ClientOut:
    """Replace a client's tags (every role)."""
    async with kernel.tx() as db:
        row, tag_ids = await clients.set_tags(db, actor, client_id, body)
        return ClientOut.model_validate(row).model_copy(update={"tag_ids": tag_ids})
