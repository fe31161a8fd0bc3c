"""zapd client endpoints: users of a company and their departments.

Part of `ZapClient` (shared.client); the wire models are imported when a method first
runs (shared.client.lazy).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from shared.client.core import API, ClientCore, Order
from shared.client.lazy import protocol
from shared.enums import Role

if TYPE_CHECKING:
    from shared.protocol import common, users
else:
    users = protocol("users")


class UserEndpoints(ClientCore):
    """Users of a company and their departments."""

    # ----------------------------------------------------------------- users

    async def list_users(
        self,
        *,
        role: Role | None = None,
        department_id: uuid.UUID | None = None,
        active: bool | None = None,
        q: str | None = None,
        company_id: uuid.UUID | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        order: Order | None = None,
    ) -> common.Page[users.UserOut]:
        """List one page of users; filter by role, department, state or name/e-mail text."""
        return await self._get_page(
            users.UserOut,
            f"{API}/users",
            role=role,
            department_id=department_id,
            active=active,
            q=q,
            company_id=company_id,
            cursor=cursor,
            limit=limit,
            order=order,
        )

    async def get_user(self, user_id: uuid.UUID) -> users.UserOut:
        """Show one user."""
        return await self._get(users.UserOut, f"{API}/users/{user_id}")

    async def create_user(self, body: users.UserCreate) -> users.UserOut:
        """Create a user (ADMIN, or a global admin naming company_id)."""
        return await self._send(users.UserOut, "POST", f"{API}/users", body)

    async def update_user(self, user_id: uuid.UUID, body: users.UserUpdate) -> users.UserOut:
        """Change a user (ADMIN); only the fields set on `body` change."""
        return await self._send(users.UserOut, "PATCH", f"{API}/users/{user_id}", body)

    async def disable_user(self, user_id: uuid.UUID) -> users.UserOut:
        """Disable a user (ADMIN): their tokens and live connections die at once."""
        return await self._send(users.UserOut, "POST", f"{API}/users/{user_id}/disable")

    async def enable_user(self, user_id: uuid.UUID) -> users.UserOut:
        """Enable a disabled user again (ADMIN)."""
        return await self._send(users.UserOut, "POST", f"{API}/users/{user_id}/enable")

    async def reset_password(
        self, user_id: uuid.UUID, password: str | None = None
    ) -> users.PasswordResetOut:
        """Set a user's password, or have one generated and returned once (ADMIN)."""
        body = users.PasswordResetIn(password=password) if password is not None else None
        return await self._send(
            users.PasswordResetOut, "POST", f"{API}/users/{user_id}/reset-password", body
        )

    async def set_user_departments(
        self, user_id: uuid.UUID, department_ids: list[uuid.UUID]
    ) -> users.UserOut:
        """Replace the departments a user works (ADMIN)."""
        body = users.UserDepartmentsSet(department_ids=department_ids)
        return await self._send(users.UserOut, "PUT", f"{API}/users/{user_id}/departments", body)
