"""/api/v1/categories: ticket closing categories."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from shared.protocol.catalog import CategoryCreate, CategoryOut, CategoryUpdate
from zapd.api.deps import ActorDep, Auth, KernelDep
from zapd.services.catalog import categories

router = APIRouter(prefix="/api/v1/categories", tags=["categories"])


@router.get("", response_model=list[CategoryOut])
async def list_categories(
    principal: Auth,
    kernel: KernelDep,
    active: bool | None = None,
    company_id: Annotated[uuid.UUID | None, Query(description="global admins only")] = None,
) -> list[CategoryOut]:
    """List categories by name (every role)."""
    rows = await categories.list_(kernel.hot, principal, company_id, active)
    return [CategoryOut.model_validate(r) for r in rows]


@router.post("", response_model=CategoryOut, status_code=201)
async def create_category(body: CategoryCreate, actor: ActorDep, kernel: KernelDep) -> CategoryOut:
    """Create a category (ADMIN)."""
    async with kernel.tx() as db:
        return CategoryOut.model_validate(await categories.create(db, actor, body))


@router.get("/{category_id}", response_model=CategoryOut)
async def get_category(category_id: uuid.UUID, principal: Auth, kernel: KernelDep) -> CategoryOut:
    """Show one category."""
    async with kernel.read() as db:
        return CategoryOut.model_validate(await categories.get(db, principal, category_id))


@router.patch("/{category_id}", response_model=CategoryOut)
async def update_category(
    category_id: uuid.UUID, body: CategoryUpdate, actor: ActorDep, kernel: KernelDep
) -> CategoryOut:
    """Change a category (ADMIN); only the fields given change."""
    async with kernel.tx() as db:
        return CategoryOut.model_validate(await categories.update(db, actor, category_id, body))


@router.delete("/{category_id}", status_code=204)
async def delete_category(category_id: uuid.UUID, actor: ActorDep, kernel: KernelDep) -> None:
    """Remove a category (ADMIN)."""
    async with kernel.tx() as db:
        await categories.delete(db, actor, category_id)
