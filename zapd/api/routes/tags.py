"""/api/v1/tags: labels put on tickets and clients."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from shared.protocol.catalog import TagCreate, TagOut, TagUpdate
from zapd.api.deps import ActorDep, Auth, KernelDep
from zapd.services.catalog import tags

router = APIRouter(prefix="/api/v1/tags", tags=["tags"])


@router.get("", response_model=list[TagOut])
async def list_tags(
    principal: Auth,
    kernel: KernelDep,
    company_id: Annotated[uuid.UUID | None, Query(description="global admins only")] = None,
) -> list[TagOut]:
    """List tags by name (every role)."""
    rows = await tags.list_(kernel.hot, principal, company_id)
    return [TagOut.model_validate(r) for r in rows]


@router.post("", response_model=TagOut, status_code=201)
async def create_tag(body: TagCreate, actor: ActorDep, kernel: KernelDep) -> TagOut:
    """Create a tag (SUPERVISOR and up)."""
    async with kernel.tx() as db:
        return TagOut.model_validate(await tags.create(db, actor, body))


@router.get("/{tag_id}", response_model=TagOut)
async def get_tag(tag_id: uuid.UUID, principal: Auth, kernel: KernelDep) -> TagOut:
    """Show one tag."""
    async with kernel.read() as db:
        return TagOut.model_validate(await tags.get(db, principal, tag_id))


@router.patch("/{tag_id}", response_model=TagOut)
async def update_tag(
    tag_id: uuid.UUID, body: TagUpdate, actor: ActorDep, kernel: KernelDep
) -> TagOut:
    """Rename or recolor a tag (SUPERVISOR and up)."""
    async with kernel.tx() as db:
        return TagOut.model_validate(await tags.update(db, actor, tag_id, body))


@router.delete("/{tag_id}", status_code=204)
async def delete_tag(tag_id: uuid.UUID, actor: ActorDep, kernel: KernelDep) -> None:
    """Remove a tag from everything it labels (SUPERVISOR and up)."""
    async with kernel.tx() as db:
        await tags.delete(db, actor, tag_id)
