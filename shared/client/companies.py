"""zapd client endpoints: companies (tenants).

Part of `ZapClient` (shared.client); the wire models are imported when a method first
runs (shared.client.lazy).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from shared.client.core import API, ClientCore, Order
from shared.client.lazy import protocol

if TYPE_CHECKING:
    from shared.protocol import common, companies
else:
    companies = protocol("companies")


class CompanyEndpoints(ClientCore):
    """Companies (tenants)."""

    # ----------------------------------------------------------------- companies

    async def list_companies(
        self,
        *,
        active: bool | None = None,
        q: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        order: Order | None = None,
    ) -> common.Page[companies.CompanyOut]:
        """List one page of companies (all for global admins, one's own otherwise)."""
        return await self._get_page(
            companies.CompanyOut,
            f"{API}/companies",
            active=active,
            q=q,
            cursor=cursor,
            limit=limit,
            order=order,
        )

    async def get_company(self, company_id: uuid.UUID) -> companies.CompanyOut:
        """Show a company."""
        return await self._get(companies.CompanyOut, f"{API}/companies/{company_id}")

    async def create_company(self, body: companies.CompanyCreate) -> companies.CompanyOut:
        """Create a company (global admins)."""
        return await self._send(companies.CompanyOut, "POST", f"{API}/companies", body)

    async def update_company(
        self, company_id: uuid.UUID, body: companies.CompanyUpdate
    ) -> companies.CompanyOut:
        """Change a company; only the fields set on `body` change."""
        return await self._send(
            companies.CompanyOut, "PATCH", f"{API}/companies/{company_id}", body
        )

    async def delete_company(self, company_id: uuid.UUID, *, force: bool = False) -> None:
        """Delete a company and what it owns (global admins); `force` also drops history."""
        await self.request(
            "DELETE", f"{API}/companies/{company_id}", params={"force": force or None}
        )
