"""Companies (tenants): CRUD for global admins, self-service settings for company admins."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.cnpj import InvalidCNPJ, cnpj_search_key, normalize_cnpj
from shared.enums import Role
from shared.errors import CloseCode, ErrorCode
from shared.protocol.companies import (
    COMPANY_UPDATE,
    CompanyCreate,
    CompanySettings,
    CompanyUpdate,
)
from zapd.db.models import Company, Message, Ticket
from zapd.errors import Conflict, Forbidden, NotFound, ValidationFailed
from zapd.kernel import audit, events
from zapd.kernel.context import after_commit
from zapd.kernel.pagination import PageParams, paginate
from zapd.kernel.principal import Actor, Principal

if TYPE_CHECKING:
    from zapd.kernel.context import Kernel

# What a company admin may change about their own company.
ADMIN_FIELDS = frozenset({"name", "timezone", "locale", "settings"})


def settings_of(company: Company) -> CompanySettings:
    """Return a company's settings with defaults filled in."""
    return CompanySettings.from_stored(company.settings)


async def get(db: AsyncSession, p: Principal, company_id: uuid.UUID) -> Company:
    """Return a company the caller may see (their own, or any for global admins), or 404."""
    row = await db.get(Company, company_id)
    if row is None or not p.owns(row.id):
        raise NotFound("company not found")
    return row


async def list_(
    db: AsyncSession,
    p: Principal,
    page: PageParams,
    *,
    active: bool | None = None,
    q: str | None = None,
) -> tuple[list[Company], str | None]:
    """List companies: every one for global admins, only one's own for company users."""
    stmt: Select[Any] = select(Company)
    if not p.is_global_admin:
        stmt = stmt.where(Company.id == p.company_id)
    if active is not None:
        stmt = stmt.where(Company.active == active)
    if q:
        needle = q.strip().lower()
        cnpj_part = cnpj_search_key(q)
        conds = [func.lower(Company.name).contains(needle, autoescape=True)]
        if cnpj_part:
            conds.append(Company.cnpj.contains(cnpj_part, autoescape=True))
        stmt = stmt.where(or_(*conds))
    return await paginate(db, stmt, Company.id, page)


def _cnpj(value: str) -> str:
    try:
        return normalize_cnpj(value)
    except InvalidCNPJ as exc:
        raise ValidationFailed(str(exc), code=ErrorCode.INVALID_CNPJ) from None


async def _check_cnpj_free(db: AsyncSession, cnpj: str, self_id: uuid.UUID | None) -> None:
    stmt = select(Company.id).where(Company.cnpj == cnpj)
    if self_id is not None:
        stmt = stmt.where(Company.id != self_id)
    if await db.scalar(stmt) is not None:
        raise Conflict(f"a company with CNPJ {cnpj} already exists", code=ErrorCode.CNPJ_TAKEN)


async def create(db: AsyncSession, actor: Actor, body: CompanyCreate) -> Company:
    """Create a company (global admins only)."""
    actor.principal.require_global_admin()
    cnpj = _cnpj(body.cnpj)
    await _check_cnpj_free(db, cnpj, None)
    row = Company(
        name=body.name,
        cnpj=cnpj,
        timezone=body.timezone,
        locale=body.locale,
        settings=body.settings.model_dump(),
    )
    db.add(row)
    await db.flush()
    audit.record(
        db,
        actor,
        "company.create",
        "company",
        row.id,
        company_id=row.id,
        after=_snapshot(row),
    )
    return row


def _snapshot(row: Company) -> dict[str, Any]:
    return audit.snapshot(row, ["id", "name", "cnpj", "active", "timezone", "locale", "settings"])


async def update(
    db: AsyncSession, actor: Actor, company_id: uuid.UUID, body: CompanyUpdate
) -> Company:
    """Change a company: global admins anything, a company ADMIN their own's name and settings."""
    p = actor.principal
    row = await get(db, p, company_id)
    p.require(Role.ADMIN)
    fields = body.model_dump(exclude_unset=True)
    if not p.is_global_admin:
        refused = sorted(set(fields) - ADMIN_FIELDS)
        if refused:
            raise Forbidden(f"only global admins may change {', '.join(refused)}")
    for required in ("name", "cnpj", "timezone", "locale", "settings", "active"):
        if required in fields and fields[required] is None:
            raise ValidationFailed(f"{required} cannot be null")
    before = _snapshot(row)
    if "cnpj" in fields:
        fields["cnpj"] = _cnpj(fields["cnpj"])
        await _check_cnpj_free(db, fields["cnpj"], row.id)
    if "settings" in fields:
        assert body.settings is not None
        changes = body.settings.model_dump(exclude_unset=True)
        nulls = sorted(k for k, v in changes.items() if v is None)
        if nulls:
            raise ValidationFailed(f"settings.{nulls[0]} cannot be null")
        fields["settings"] = {**settings_of(row).model_dump(), **changes}
    for key, value in fields.items():
        setattr(row, key, value)
    after = _snapshot(row)
    if after == before:
        return row
    await db.flush()
    audit.record(
        db,
        actor,
        "company.update",
        "company",
        row.id,
        company_id=row.id,
        before=before,
        after=after,
    )
    await events.publish(
        db,
        row.id,
        COMPANY_UPDATE,
        {"id": row.id, "name": row.name, "active": row.active, "action": "update"},
    )
    if before["active"] and not row.active:
        _close_sockets(db, row.id, "company disabled")
    return row


def _close_sockets(db: AsyncSession, company_id: uuid.UUID, reason: str) -> None:
    def close(kernel: Kernel) -> None:  # a hook returning a value would be awaited
        kernel.hub.close_where(lambda p: p.company_id == company_id, CloseCode.UNAUTHORIZED, reason)

    after_commit(db, close)


async def _has_history(db: AsyncSession, company_id: uuid.UUID) -> bool:
    for col, owner in ((Ticket.id, Ticket.company_id), (Message.id, Message.company_id)):
        if await db.scalar(select(col).where(owner == company_id).limit(1)) is not None:
            return True
    return False


async def delete(db: AsyncSession, actor: Actor, company_id: uuid.UUID, *, force: bool) -> None:
    """Remove a company and everything it owns (global admins; `force` if it has history)."""
    p = actor.principal
    row = await get(db, p, company_id)
    p.require_global_admin()
    if not force and await _has_history(db, row.id):
        raise Conflict(
            "the company still has tickets or messages; pass force=true to delete them too",
            code=ErrorCode.COMPANY_NOT_EMPTY,
        )
    # The company row first: writers that lock it first (the inbound pipeline) queue
    # behind this transaction instead of holding rows the cascade must delete.
    await db.execute(select(Company.id).where(Company.id == row.id).with_for_update())
    before = _snapshot(row)
    await db.delete(row)
    await db.flush()
    # Recorded as a global action: the company's own audit rows go with it.
    audit.record(
        db,
        actor,
        "company.delete",
        "company",
        company_id,
        company_id=None,
        before=before,
        extra={"force": force},
    )
    _close_sockets(db, company_id, "company deleted")
