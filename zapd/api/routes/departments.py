"""/api/v1/departments: the queues customers are routed to."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from shared.protocol.common import Page
from shared.protocol.departments import DepartmentCreate, DepartmentOut, DepartmentUpdate
from zapd.api.deps import ActorDep, Auth, KernelDep, PageDep
from zapd.services.people import departments

router = APIRouter(prefix="/api/v1/departments", tags=["departments"])


@router.get("", response_model=Page[DepartmentOut])
async def list_departments(
    principal: Auth,
    kernel: KernelDep,
    page: PageDep,
    company_id: Annotated[uuid.UUID | None, Query(description="global admins only")] = None,
) -> Page[DepartmentOut]:
    """List departments one page at a time (`cursor`, `limit`, `order`), like every list."""
    rows, cursor = await departments.list_(kernel.hot, principal, page, company_id)
    return Page[DepartmentOut](
        items=[DepartmentOut.model_validate(r) for r in rows], next_cursor=cursor
    )


@router.post("", response_model=DepartmentOut, status_code=201)
async def create_department(
    body: DepartmentCreate, actor: ActorDep, kernel: KernelDep
) -> DepartmentOut:
    """Create a department (ADMIN)."""
    async with kernel.tx() as db:
        return DepartmentOut.model_validate(await departments.create(db, actor, body))


@router.get("/{department_id}", response_model=DepartmentOut)
async def get_department(
    department_id: uuid.UUID, principal: Auth, kernel: KernelDep
) -> DepartmentOut:
    """Show one department."""
    async with kernel.read() as db:
        return DepartmentOut.model_validate(await departments.get(db, principal, department_id))


@router.patch("/{department_id}", response_model=DepartmentOut)
async def update_department(
    department_id: uuid.UUID, body: DepartmentUpdate, actor: ActorDep, kernel: KernelDep
) -> DepartmentOut:
    """Change a department (ADMIN); only the fields given change."""
    async with kernel.tx() as db:
        return DepartmentOut.model_validate(
            await departments.update(db, actor, department_id, body)
        )


@router.delete("/{department_id}", status_code=204)
async def delete_department(department_id: uuid.UUID, actor: ActorDep, kernel: KernelDep) -> None:
    """Remove a department (ADMIN)."""
    async with kernel.tx() as db:
        await departments.delete(db, actor, department_id)
