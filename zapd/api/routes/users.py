"""/api/v1/users: a company's people, their roles, departments and credentials."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from shared.enums import Role
from shared.protocol.common import Page
from shared.protocol.users import (
    PasswordResetIn,
    PasswordResetOut,
    UserCreate,
    UserDepartmentsSet,
    UserOut,
    UserUpdate,
)
from zapd.api.deps import ActorDep, Auth, KernelDep, PageDep
from zapd.services.people import users

router = APIRouter(prefix="/api/v1/users", tags=["users"])


@router.get("", response_model=Page[UserOut])
async def list_users(
    principal: Auth,
    kernel: KernelDep,
    page: PageDep,
    role: Role | None = None,
    department_id: uuid.UUID | None = None,
    active: bool | None = None,
    q: Annotated[str | None, Query(max_length=200, description="name or e-mail contains")] = None,
    company_id: Annotated[uuid.UUID | None, Query(description="global admins only")] = None,
) -> Page[UserOut]:
    """List the company's users (every role)."""
    async with kernel.read() as db:
        rows, cursor = await users.list_(
            db,
            principal,
            page,
            company_id=company_id,
            role=role,
            department_id=department_id,
            active=active,
            q=q,
        )
        return Page[UserOut](items=await users.present(db, rows), next_cursor=cursor)


@router.post("", response_model=UserOut, status_code=201)
async def create_user(body: UserCreate, actor: ActorDep, kernel: KernelDep) -> UserOut:
    """Create a user (ADMIN, or a global admin naming company_id)."""
    async with kernel.tx() as db:
        row = await users.create(db, kernel.passwords, actor, body)
        return (await users.present(db, [row]))[0]


@router.get("/{user_id}", response_model=UserOut)
async def get_user(user_id: uuid.UUID, principal: Auth, kernel: KernelDep) -> UserOut:
    """Show one user."""
    async with kernel.read() as db:
        return (await users.present(db, [await users.get(db, principal, user_id)]))[0]


@router.patch("/{user_id}", response_model=UserOut)
async def update_user(
    user_id: uuid.UUID, body: UserUpdate, actor: ActorDep, kernel: KernelDep
) -> UserOut:
    """Change a user's name, role, state, ticket limit or departments (ADMIN)."""
    async with kernel.tx() as db:
        row = await users.update(db, actor, user_id, body)
        return (await users.present(db, [row]))[0]


@router.post("/{user_id}/disable", response_model=UserOut)
async def disable_user(user_id: uuid.UUID, actor: ActorDep, kernel: KernelDep) -> UserOut:
    """Disable a user (ADMIN): their tokens and live connections die at once."""
    async with kernel.tx() as db:
        row = await users.set_active(db, actor, user_id, False)
        return (await users.present(db, [row]))[0]


@router.post("/{user_id}/enable", response_model=UserOut)
async def enable_user(user_id: uuid.UUID, actor: ActorDep, kernel: KernelDep) -> UserOut:
    """Enable a disabled user again (ADMIN)."""
    async with kernel.tx() as db:
        row = await users.set_active(db, actor, user_id, True)
        return (await users.present(db, [row]))[0]


@router.post("/{user_id}/reset-password", response_model=PasswordResetOut)
async def reset_password(
    user_id: uuid.UUID, actor: ActorDep, kernel: KernelDep, body: PasswordResetIn | None = None
) -> PasswordResetOut:
    """Set a user's password, or generate one shown in this answer only (ADMIN)."""
    async with kernel.tx() as db:
        row, generated = await users.reset_password(
            db, kernel.passwords, actor, user_id, body.password if body else None
        )
        return PasswordResetOut(id=row.id, password=generated, generated=generated is not None)


@router.put("/{user_id}/departments", response_model=UserOut)
async def set_departments(
    user_id: uuid.UUID, body: UserDepartmentsSet, actor: ActorDep, kernel: KernelDep
) -> UserOut:
    """Replace the departments a user works (ADMIN)."""
    async with kernel.tx() as db:
        row = await users.set_departments(db, actor, user_id, body)
        return (await users.present(db, [row]))[0]
