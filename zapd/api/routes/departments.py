"""/api/v1/departments: the queues customers are routed to."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from shared.protocol.departments import DepartmentCreate, DepartmentOut, DepartmentUpdate
from zapd.api.deps import ActorDep, Auth, Res
from zapd.services import departments

router = APIRouter(prefix="/api/v1/departments", tags=["departments"])


@router.get("", response_model=list[DepartmentOut])
async def list_departments(
    principal: Auth,
    res: Res,
    company_id: Annotated[uuid.UUID | None, Query(description="global admins only")] = None,
) -> list[DepartmentOut]:
    """List departments in menu order."""
    async with res.read() as db:
        rows = await departments.list_(db, principal, company_id)
        return [DepartmentOut.model_validate(r) for r in rows]


@router.post("", response_model=DepartmentOut, status_code=201)
async def create_department(body: DepartmentCreate, actor: ActorDep, res: Res) -> DepartmentOut:
    """Create a department (ADMIN)."""
    async with res.tx() as db:
        return DepartmentOut.model_validate(await departments.create(db, actor, body))


@router.get("/{department_id}", response_model=DepartmentOut)
async def get_department(department_id: uuid.UUID, principal: Auth, res: Res) -> DepartmentOut:
    """Show one department."""
    async with res.read() as db:
        return DepartmentOut.model_validate(await departments.get(db, principal, department_id))


@router.patch("/{department_id}", response_model=DepartmentOut)
async def update_department(
    department_id: uuid.UUID, body: DepartmentUpdate, actor: ActorDep, res: Res
) -> DepartmentOut:
    """Change a department (ADMIN); only the fields given change."""
    async with res.tx() as db:
        return DepartmentOut.model_validate(
            await departments.update(db, actor, department_id, body)
        )


@router.delete("/{department_id}", status_code=204)
async def delete_department(department_id: uuid.UUID, actor: ActorDep, res: Res) -> None:
    """Remove a department (ADMIN)."""
    async with res.tx() as db:
        await departments.delete(db, actor, department_id)
