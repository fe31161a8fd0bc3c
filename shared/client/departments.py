"""zapd client endpoints: departments (the queues of the greeting menu).

Part of `ZapClient` (shared.client); the wire models are imported when a method first
runs (shared.client.lazy).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from shared.client.core import API, ClientCore, Order
from shared.client.lazy import protocol

if TYPE_CHECKING:
    from shared.protocol import common, departments
else:
    departments = protocol("departments")


class DepartmentEndpoints(ClientCore):
    """Departments (the queues of the greeting menu)."""

    # ----------------------------------------------------------------- departments

    async def page_departments(
        self,
        *,
        company_id: uuid.UUID | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        order: Order | None = None,
    ) -> common.Page[departments.DepartmentOut]:
        """List one page of departments (id order, like every listing)."""
        return await self._get_page(
            departments.DepartmentOut,
            f"{API}/departments",
            company_id=company_id,
            cursor=cursor,
            limit=limit,
            order=order,
        )

    async def list_departments(
        self, company_id: uuid.UUID | None = None
    ) -> list[departments.DepartmentOut]:
        """List every department in menu order, walking the pages (global admins may name
        the company)."""
        rows = [
            d async for d in self.iterate(self.page_departments, company_id=company_id, limit=200)
        ]
        return sorted(rows, key=lambda d: (d.menu_order, d.name))

    async def get_department(self, department_id: uuid.UUID) -> departments.DepartmentOut:
        """Show one department."""
        return await self._get(departments.DepartmentOut, f"{API}/departments/{department_id}")

    async def create_department(
        self, body: departments.DepartmentCreate
    ) -> departments.DepartmentOut:
        """Create a department (ADMIN)."""
        return await self._send(departments.DepartmentOut, "POST", f"{API}/departments", body)

    async def update_department(
        self, department_id: uuid.UUID, body: departments.DepartmentUpdate
    ) -> departments.DepartmentOut:
        """Change a department (ADMIN); only the fields set on `body` change."""
        return await self._send(
            departments.DepartmentOut, "PATCH", f"{API}/departments/{department_id}", body
        )

    async def delete_department(self, department_id: uuid.UUID) -> None:
        """Remove a department (ADMIN)."""
        await self.request("DELETE", f"{API}/departments/{department_id}")
