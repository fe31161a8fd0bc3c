"""Clients: listing and search, manual creation, edits, blocking and tags."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, func, literal, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import ClientIdentityKind, Role
from shared.phone import InvalidPhone, normalize_phone
from shared.protocol.clients import CLIENT_UPDATE, ClientCreate, ClientTagsSet, ClientUpdate
from shared.text import fold
from zapd.db.models import Client, ClientIdentity, ClientTag, Company
from zapd.db.types import utcnow
from zapd.errors import Conflict, NotFound, ValidationFailed
from zapd.kernel import audit, events
from zapd.kernel.pagination import PageParams, paginate
from zapd.kernel.principal import Actor, Principal
from zapd.kernel.scoping import get_owned
from zapd.services.catalog import tags
from zapd.services.people import identity
from zapd.services.people.identity import Identity

_PHONE_KINDS = (ClientIdentityKind.PHONE, ClientIdentityKind.PHONE_ALT)
_PHONE_QUERY_CHARS = frozenset("0123456789+ ()-./")

# Accent- and case-insensitive name matching, with what each backend has built in.
# PostgreSQL: translate() maps accented Latin letters (both cases) to their base letter
# and drops combining marks, lower() does the rest. SQLite has no translate() and chokes
# on deeply nested replace() calls, so the folded query becomes a GLOB pattern whose
# letters are classes of every spelling ("joao" -> "*[jJ][oOóÓ...][aAáÁ...][oOóÓ...]*").
_ACCENTED = "áàâãäåéèêëíìîïóòôõöúùûüçñýÿÁÀÂÃÄÅÉÈÊËÍÌÎÏÓÒÔÕÖÚÙÛÜÇÑÝŸ"
_BASE = "aaaaaaeeeeiiiiooooouuuucnyyaaaaaaeeeeiiiiooooouuuucnyy"
_COMBINING = "\u0300\u0301\u0302\u0303\u0308\u0327"


def _spellings() -> dict[str, str]:
    out: dict[str, str] = {}
    for accented, base in zip(_ACCENTED, _BASE, strict=True):
        out[base] = out.get(base, base + base.upper()) + accented
    return out


_SPELLINGS = _spellings()


def _glob_class(ch: str) -> str:
    if ch in _SPELLINGS:
        return f"[{_SPELLINGS[ch]}]"
    if ch in "*?[]":
        return f"[{ch}]"
    if ch.upper() != ch and len(ch.upper()) == 1:
        return f"[{ch}{ch.upper()}]"
    return ch


def _name_matches(column: Any, folded: str, dialect: str) -> ColumnElement[bool]:
    """Match `column` containing `folded` (from `shared.text.fold`), ignoring case and accents."""
    if dialect == "postgresql":
        plain = func.lower(func.translate(column, literal(_ACCENTED + _COMBINING), literal(_BASE)))
        return plain.contains(folded, autoescape=True)
    pattern = "*" + "".join(_glob_class(ch) for ch in folded) + "*"
    glob: ColumnElement[bool] = column.op("GLOB", is_comparison=True)(literal(pattern))
    return glob


def _search_filter(q: str, dialect: str) -> ColumnElement[bool] | None:
    """Match `q` against name and profile name (folded) and, if it looks like one, the phone."""
    conditions: list[ColumnElement[bool]] = []
    text = fold(q)
    if text:
        conditions += [
            _name_matches(Client.name, text, dialect),
            _name_matches(Client.profile_name, text, dialect),
        ]
    digits = "".join(c for c in q if c.isascii() and c.isdigit())
    if digits and all(c in _PHONE_QUERY_CHARS for c in q.strip()):
        conditions += [
            Client.phone.contains(digits, autoescape=True),
            exists().where(
                ClientIdentity.client_id == Client.id,
                ClientIdentity.kind.in_(_PHONE_KINDS),
                ClientIdentity.value.contains(digits, autoescape=True),
            ),
        ]
    return or_(*conditions) if conditions else None


async def get(db: AsyncSession, p: Principal, client_id: uuid.UUID) -> Client:
    """Return a client of the caller's company, or 404."""
    return await get_owned(db, p, Client, client_id, "client")


async def tag_map(
    db: AsyncSession, client_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Return each client's tag ids (in tagging order)."""
    out: dict[uuid.UUID, list[uuid.UUID]] = {cid: [] for cid in client_ids}
    if not client_ids:
        return out
    rows = await db.execute(
        select(ClientTag.client_id, ClientTag.tag_id)
        .where(ClientTag.client_id.in_(list(client_ids)))
        .order_by(ClientTag.created_at, ClientTag.tag_id)
    )
    for client_id, tag_id in rows:
        out[client_id].append(tag_id)
    return out


async def list_(
    db: AsyncSession,
    p: Principal,
    page: PageParams,
    *,
    q: str | None = None,
    blocked: bool | None = None,
    tag_id: uuid.UUID | None = None,
    company_id: uuid.UUID | None = None,
) -> tuple[list[Client], str | None]:
    """List clients one page at a time (every role), with search and filters."""
    stmt = select(Client)
    company = p.company_filter(company_id)
    if company is not None:
        stmt = stmt.where(Client.company_id == company)
    if q:
        cond = _search_filter(q, db.get_bind().dialect.name)
        if cond is not None:
            stmt = stmt.where(cond)
    if blocked is not None:
        stmt = stmt.where(Client.blocked == blocked)
    if tag_id is not None:
        await tags.get(db, p, tag_id)
        stmt = stmt.where(
            exists().where(ClientTag.client_id == Client.id, ClientTag.tag_id == tag_id)
        )
    return await paginate(db, stmt, Client.id, page)


def _phone_taken(phone: str, client_id: uuid.UUID) -> Conflict:
    return Conflict(f"a client with phone {phone} already exists (id {client_id})")


async def create(db: AsyncSession, actor: Actor, body: ClientCreate) -> Client:
    """Add a client by hand (every role); the phone is normalized and must be new."""
    p = actor.principal
    company_id = p.company_for_write(body.company_id)
    if await db.get(Company, company_id) is None:
        raise NotFound("company not found")
    try:
        phone = normalize_phone(body.phone)
    except InvalidPhone as exc:
        raise ValidationFailed(str(exc)) from None
    existing = await identity.find(db, company_id, Identity(phone=phone))
    if existing is not None:
        raise _phone_taken(phone, existing.id)
    row = Client(
        company_id=company_id,
        phone=phone,
        name=body.name,
        email=body.email,
        notes=body.notes,
        custom_fields=body.custom_fields or {},
    )
    db.add(row)
    try:
        await db.flush()
        await identity.attach(db, row, Identity(phone=phone))
        await db.flush()
    except IntegrityError:  # a concurrent insert won the race past the pre-check
        raise Conflict(f"a client with phone {phone} already exists") from None
    audit.record(
        db, actor, "client.create", "client", row.id, company_id=company_id, after=_snap(row)
    )
    await events.publish(db, company_id, CLIENT_UPDATE, {"id": row.id, "action": "create"})
    return row


_EDITABLE = ("name", "email", "notes", "custom_fields")


def _snap(row: Client) -> dict[str, Any]:
    return audit.snapshot(row, ["phone", "name", "email", "notes", "custom_fields", "blocked"])


async def update(
    db: AsyncSession, actor: Actor, client_id: uuid.UUID, body: ClientUpdate
) -> Client:
    """Change a client (every role; blocking needs SUPERVISOR and up)."""
    p = actor.principal
    fields = body.model_dump(exclude_unset=True)
    if "blocked" in fields:
        if fields["blocked"] is None:
            raise ValidationFailed("blocked cannot be null")
        p.require(Role.SUPERVISOR)
    if "custom_fields" in fields and fields["custom_fields"] is None:
        raise ValidationFailed("custom_fields cannot be null; send {} to clear it")
    row = await get(db, p, client_id)
    before = _snap(row)
    for key, value in fields.items():
        setattr(row, key, value)
    await db.flush()
    after = _snap(row)
    edited = {k: before[k] for k in _EDITABLE if k in fields}
    now = {k: after[k] for k in _EDITABLE if k in fields}
    actions: list[str] = []
    if edited != now:
        actions.append("update")
        audit.record(
            db,
            actor,
            "client.update",
            "client",
            row.id,
            company_id=row.company_id,
            before=edited,
            after=now,
        )
    if before["blocked"] != after["blocked"]:
        action = "block" if row.blocked else "unblock"
        actions.append(action)
        audit.record(
            db,
            actor,
            f"client.{action}",
            "client",
            row.id,
            company_id=row.company_id,
            before={"blocked": before["blocked"]},
            after={"blocked": after["blocked"]},
        )
    for action in actions:
        await events.publish(
            db,
            row.company_id,
            CLIENT_UPDATE,
            {"id": row.id, "action": action, "blocked": row.blocked},
        )
    return row


async def set_tags(
    db: AsyncSession, actor: Actor, client_id: uuid.UUID, body: ClientTagsSet
) -> tuple[Client, list[uuid.UUID]]:
    """Replace a client's tags (every role); the tags must be of the client's company."""
    p = actor.principal
    row = await get(db, p, client_id)
    wanted = await tags.of_company(db, row.company_id, body.tag_ids)
    current = list(
        (
            await db.scalars(
                select(ClientTag.tag_id)
                .where(ClientTag.client_id == row.id)
                .order_by(ClientTag.created_at, ClientTag.tag_id)
            )
        ).all()
    )
    gone = [t for t in current if t not in wanted]
    new = [t for t in wanted if t not in current]
    if gone:
        await db.execute(
            delete(ClientTag).where(ClientTag.client_id == row.id, ClientTag.tag_id.in_(gone))
        )
    for tag_id in new:
        db.add(ClientTag(client_id=row.id, tag_id=tag_id, company_id=row.company_id))
    result = [t for t in current if t in wanted] + new
    if gone or new:
        row.updated_at = utcnow()
        await db.flush()
        audit.record(
            db,
            actor,
            "client.tags",
            "client",
            row.id,
            company_id=row.company_id,
            before={"tag_ids": sorted(str(t) for t in current)},
            after={"tag_ids": sorted(str(t) for t in result)},
            extra={"added": new, "removed": gone},
        )
        await events.publish(
            db,
            row.company_id,
            CLIENT_UPDATE,
            {"id": row.id, "action": "tags", "tag_ids": result},
        )
    return row, result
