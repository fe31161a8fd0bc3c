"""/api/v1/companies: tenants (global admins), and a company's own settings (its ADMIN)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from shared.protocol.common import Page
from shared.protocol.companies import CompanyCreate, CompanyOut, CompanyUpdate
from zapd.api.deps import ActorDep, Auth, DaemonDep, KernelDep, PageDep
from zapd.services.people import companies

router = APIRouter(prefix="/api/v1/companies", tags=["companies"])


@router.get("", response_model=Page[CompanyOut])
async def list_companies(
    principal: Auth,
    kernel: KernelDep,
    page: PageDep,
    active: bool | None = None,
    q: Annotated[str | None, Query(max_length=200, description="name or CNPJ contains")] = None,
) -> Page[CompanyOut]:
    """List companies: all for global admins, one's own for company users."""
    async with kernel.read() as db:
        rows, cursor = await companies.list_(db, principal, page, active=active, q=q)
        return Page[CompanyOut](
            items=[CompanyOut.model_validate(r) for r in rows], next_cursor=cursor
        )


@router.post("", response_model=CompanyOut, status_code=201)
async def create_company(body: CompanyCreate, actor: ActorDep, kernel: KernelDep) -> CompanyOut:
    """Create a company (global admins)."""
    async with kernel.tx() as db:
        return CompanyOut.model_validate(await companies.create(db, actor, body))


@router.get("/{company_id}", response_model=CompanyOut)
async def get_company(company_id: uuid.UUID, principal: Auth, kernel: KernelDep) -> CompanyOut:
    """Show a company (one's own, or any for global admins)."""
    async with kernel.read() as db:
        return CompanyOut.model_validate(await companies.get(db, principal, company_id))


@router.patch("/{company_id}", response_model=CompanyOut)
async def update_company(
    company_id: uuid.UUID, body: CompanyUpdate, actor: ActorDep, kernel: KernelDep
) -> CompanyOut:
    """Change a company: global admins anything; a company ADMIN name, zone, locale, settings."""
    async with kernel.tx() as db:
        return CompanyOut.model_validate(await companies.update(db, actor, company_id, body))


@router.delete("/{company_id}", status_code=204)
async def delete_company(
    company_id: uuid.UUID,
    actor: ActorDep,
    daemon: DaemonDep,
    force: Annotated[bool, Query(description="also delete its tickets and messages")] = False,
) -> None:
    """Delete a company and everything it owns, its sessions stopped first (global admins)."""
    await daemon.delete_company(actor, company_id, force=force)
