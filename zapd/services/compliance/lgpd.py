"""LGPD (Brazil's data-protection law): a person's data, its erasure, and retention.

Used offline by `zapctl client export|erase` and `zapctl purge`, directly on the database.

Access (`export_document`): one JSON document with everything held about a client —
the client row, identities, tags, chats, tickets (with assignments), messages with
their bodies, metadata of attached media, and audit rows about the client, its tickets
and its messages.

Erasure (`erase`), in one transaction: the client's name, push name, e-mail, notes,
custom fields, phone, WhatsApp ids and LID are cleared and `erased_at` set; identities
and client tags are deleted; its chats lose their name and JID; every message of its
chats and tickets loses its body, extra data and attachment, and outbound ones still
waiting in the outbox are cancelled; media rows no longer used by any message are
deleted, and their files too once no media row (of any company) points at them; raw
inbound events that mention the person's numbers or LID are deleted; the body of the
realtime `message.new` events of its chats is cleared; audit rows about the client,
its messages and its deleted media are redacted. Rows stay (tickets, messages,
statuses, timestamps), so counts and metrics do not change. An audit row
`client.erase` (user NULL, data {"by": "zapctl", ...counts}) records the erasure.

Retention (`purge_*`): closed tickets older than a cutoff with their messages (and, by
cascade, status history, assignments, outbox rows), processed or ignored raw inbound
events, realtime events and session logs, deleted in small batches.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Text, cast, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import ClientIdentityKind, OutboxState, TicketStatus, WebhookEventState
from shared.errors import ErrorCode
from shared.phone import InvalidPhone, br_phone_variants, normalize_phone
from zapd.db.models import (
    Assignment,
    AuditLog,
    Chat,
    Client,
    ClientIdentity,
    ClientTag,
    Company,
    Department,
    Event,
    Media,
    Message,
    MessageStatusHistory,
    Outbox,
    SessionLog,
    Tag,
    Ticket,
    WebhookEvent,
)
from zapd.db.types import utcnow
from zapd.errors import BadRequest, NotFound, ValidationFailed
from zapd.kernel import audit, events
from zapd.kernel.audit import jsonable
from zapd.kernel.principal import CLI_ACTOR
from zapd.services.people import identity
from zapd.services.people.identity import Identity

DOCUMENT_FORMAT = "zap.lgpd.client.v1"
IN_CHUNK = 500  # ids per IN (...) list
_STORAGE_KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{64}$")
_PHONE_KINDS = (ClientIdentityKind.PHONE, ClientIdentityKind.PHONE_ALT)

K = TypeVar("K")


def _chunks(items: Sequence[K], size: int = IN_CHUNK) -> Iterable[Sequence[K]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def row_dict(row: Any) -> dict[str, Any]:
    """Return every column of an ORM row as JSON-safe values."""
    return {c.key: jsonable(getattr(row, c.key)) for c in row.__table__.columns}


# --------------------------------------------------------------------------- lookup


def parse_phone(raw: str) -> str:
    """Return the canonical E.164 form of a phone number typed by an admin (422 if bad)."""
    try:
        return normalize_phone(raw, strict=False)
    except InvalidPhone as exc:
        raise ValidationFailed(str(exc)) from None


async def find_client(db: AsyncSession, phone: str, company: Company | None = None) -> Client:
    """Return the client known by any spelling of `phone` (BR 9th digit or not)."""
    e164 = parse_phone(phone)
    ids = await identity.find_ids(db, Identity(phone=e164), company.id if company else None)
    if not ids:
        where = f" in company {company.cnpj}" if company is not None else ""
        raise NotFound(f"no client with phone {e164}{where}")
    clients = list((await db.scalars(select(Client).where(Client.id.in_(ids)))).all())
    companies = sorted({c.company_id for c in clients}, key=str)
    if len(companies) > 1:
        cnpjs = (await db.scalars(select(Company.cnpj).where(Company.id.in_(companies)))).all()
        raise BadRequest(
            f"{e164} is a client of {len(companies)} companies ({', '.join(sorted(cnpjs))}): "
            "name one with --company",
            code=ErrorCode.USAGE,
        )
    if len(clients) > 1:
        raise BadRequest(
            f"{e164} matches {len(clients)} clients of one company "
            f"({', '.join(sorted(str(c.id) for c in clients))}); merge them first",
            code=ErrorCode.AMBIGUOUS,
        )
    return clients[0]


# --------------------------------------------------------------------------- what we hold


@dataclass
class Holdings:
    """The ids of everything attached to one client."""

    chat_ids: list[uuid.UUID]
    ticket_ids: list[uuid.UUID]
    message_ids: list[uuid.UUID]
    media_ids: list[uuid.UUID]


async def holdings(db: AsyncSession, client: Client) -> Holdings:
    """Collect the ids of the client's chats, tickets, messages and attached media."""
    chat_ids = list((await db.scalars(select(Chat.id).where(Chat.client_id == client.id))).all())
    ticket_ids = list(
        (await db.scalars(select(Ticket.id).where(Ticket.client_id == client.id))).all()
    )
    message_ids: set[uuid.UUID] = set()
    media_ids: set[uuid.UUID] = set()
    for column, ids in ((Message.chat_id, chat_ids), (Message.ticket_id, ticket_ids)):
        for part in _chunks(ids):
            rows = await db.execute(select(Message.id, Message.media_id).where(column.in_(part)))
            for mid, media_id in rows:
                message_ids.add(mid)
                if media_id is not None:
                    media_ids.add(media_id)
    return Holdings(chat_ids, ticket_ids, sorted(message_ids), sorted(media_ids))


async def _rows(db: AsyncSession, model: Any, column: Any, ids: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for part in _chunks(ids):
        out.extend((await db.scalars(select(model).where(column.in_(part)))).all())
    out.sort(key=lambda r: str(r.id) if not hasattr(r, "created_at") else (r.created_at, r.id))
    return out


async def _audit_rows(db: AsyncSession, client: Client, h: Holdings) -> list[AuditLog]:
    found: dict[uuid.UUID, AuditLog] = {}
    for entity_type, ids in (
        ("client", [client.id]),
        ("ticket", h.ticket_ids),
        ("message", h.message_ids),
        ("media", h.media_ids),
    ):
        for part in _chunks(ids):
            rows = await db.scalars(
                select(AuditLog).where(
                    AuditLog.company_id == client.company_id,
                    AuditLog.entity_type == entity_type,
                    AuditLog.entity_id.in_(part),
                )
            )
            for row in rows:
                found[row.id] = row
    return sorted(found.values(), key=lambda r: r.id)


async def export_document(db: AsyncSession, client: Client) -> dict[str, Any]:
    """Return everything held about a client as one JSON-safe document."""
    company = await db.get(Company, client.company_id)
    h = await holdings(db, client)
    identities = (
        await db.scalars(
            select(ClientIdentity)
            .where(ClientIdentity.client_id == client.id)
            .order_by(ClientIdentity.created_at, ClientIdentity.id)
        )
    ).all()
    tags = (
        await db.execute(
            select(Tag.id, Tag.name)
            .join(ClientTag, ClientTag.tag_id == Tag.id)
            .where(ClientTag.client_id == client.id)
            .order_by(Tag.name)
        )
    ).all()
    tickets = await _rows(db, Ticket, Ticket.id, h.ticket_ids)
    dept_ids = sorted({t.department_id for t in tickets if t.department_id}, key=str)
    dept_names = dict(
        (
            await db.execute(
                select(Department.id, Department.name).where(Department.id.in_(dept_ids))
            )
        )
        .tuples()
        .all()
    )
    assignments = await _rows(db, Assignment, Assignment.ticket_id, h.ticket_ids)
    by_ticket: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for a in assignments:
        by_ticket.setdefault(a.ticket_id, []).append(row_dict(a))
    ticket_docs = []
    for t in tickets:
        doc = row_dict(t)
        doc["department_name"] = dept_names.get(t.department_id) if t.department_id else None
        doc["assignments"] = by_ticket.get(t.id, [])
        ticket_docs.append(doc)
    return {
        "format": DOCUMENT_FORMAT,
        "exported_at": jsonable(utcnow()),
        "company": {
            "id": jsonable(company.id) if company else None,
            "name": company.name if company else None,
            "cnpj": company.cnpj if company else None,
        },
        "client": row_dict(client),
        "identities": [row_dict(i) for i in identities],
        "tags": [{"id": str(tid), "name": name} for tid, name in tags],
        "chats": [row_dict(c) for c in await _rows(db, Chat, Chat.id, h.chat_ids)],
        "tickets": ticket_docs,
        "messages": [row_dict(m) for m in await _rows(db, Message, Message.id, h.message_ids)],
        "media": [
            {k: v for k, v in row_dict(m).items() if k != "storage_key"}
            for m in await _rows(db, Media, Media.id, h.media_ids)
        ],
        "audit": [row_dict(a) for a in await _audit_rows(db, client, h)],
    }


# --------------------------------------------------------------------------- erasure


@dataclass
class Erased:
    """What an erasure changed; `files` are deleted from disk after the commit."""

    client_id: uuid.UUID
    company_id: uuid.UUID
    counts: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # storage keys no media row uses any more


def _mentions(client: Client, identities: Sequence[ClientIdentity], e164s: Sequence[str]) -> Any:
    """Return a condition matching raw payloads that carry one of the person's numbers or LID.

    Payloads are JSON text; a number shows up as "+55...", as a JID user part
    "55...@s.whatsapp.net" / "55...:device@..." or as a bare digit string.
    """
    patterns: set[str] = set()
    for e164 in e164s:
        digits = e164.removeprefix("+")
        patterns |= {f'%"+{digits}"%', f'%"{digits}@%', f'%"{digits}:%', f'%"{digits}"%'}
    lids = {i.value for i in identities if i.kind == ClientIdentityKind.LID}
    if client.lid:
        lids.add(client.lid)
    for lid in lids:
        user = lid.split("@", 1)[0].split(":", 1)[0]
        if user:
            patterns |= {f'%"{user}@%', f'%"{user}:%'}
    text = cast(WebhookEvent.payload, Text)
    return or_(*(text.like(p) for p in sorted(patterns)))


async def erase(db: AsyncSession, client: Client) -> Erased:
    """Remove a client's personal data in the current transaction (see the module docs)."""
    out = Erased(client.id, client.company_id)
    counts = out.counts
    h = await holdings(db, client)
    identities = list(
        (
            await db.scalars(select(ClientIdentity).where(ClientIdentity.client_id == client.id))
        ).all()
    )
    e164s = sorted(
        {i.value for i in identities if i.kind in _PHONE_KINDS}
        | ({v for v in br_phone_variants(client.phone)} if client.phone else set())
    )

    # Raw inbound events first: they are found by the numbers about to be cleared.
    raw_ids: list[uuid.UUID] = []
    if e164s or client.lid or identities:
        raw_ids = list(
            (
                await db.scalars(
                    select(WebhookEvent.id).where(
                        WebhookEvent.company_id == client.company_id,
                        _mentions(client, identities, e164s),
                    )
                )
            ).all()
        )
    for part in _chunks(raw_ids):
        await db.execute(delete(WebhookEvent).where(WebhookEvent.id.in_(part)))
    counts["raw_events_deleted"] = len(raw_ids)

    # Messages: no body, no extra data, no attachment; unsent ones never go out.
    for part in _chunks(h.message_ids):
        await db.execute(
            update(Message)
            .where(Message.id.in_(part))
            .values(body=None, extra={}, media_id=None, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        await db.execute(
            update(Outbox)
            .where(
                Outbox.message_id.in_(part),
                Outbox.state.in_([OutboxState.PENDING, OutboxState.SENDING]),
            )
            .values(state=OutboxState.CANCELLED, last_error="client erased (LGPD)")
            .execution_options(synchronize_session=False)
        )
    counts["messages"] = len(h.message_ids)

    # Media: rows no other message uses go; files go once no media row points at them.
    still_used: set[uuid.UUID] = set()
    for part in _chunks(h.media_ids):
        rows = await db.scalars(select(Message.media_id).where(Message.media_id.in_(part)))
        still_used |= {m for m in rows if m is not None}
    gone = [m for m in h.media_ids if m not in still_used]
    keys: set[str] = set()
    for gone_part in _chunks(gone):
        keys |= set(
            (await db.scalars(select(Media.storage_key).where(Media.id.in_(gone_part)))).all()
        )
        await db.execute(delete(Media).where(Media.id.in_(gone_part)))
    counts["media_deleted"] = len(gone)
    key_list = sorted(keys)
    kept: set[str] = set()
    for key_part in _chunks(key_list):
        kept |= set(
            (
                await db.scalars(select(Media.storage_key).where(Media.storage_key.in_(key_part)))
            ).all()
        )
    out.files = [k for k in key_list if k not in kept and _STORAGE_KEY.match(k)]

    # Realtime log: the text of the client's messages.
    counts["events_redacted"] = await _redact_events(db, client.company_id, h.chat_ids)

    # Audit rows that quote the person.
    counts["audit_redacted"] = await _redact_audit(db, client, h.message_ids, gone)

    # Chats, identities, tags, and the client row itself.
    for chat_part in _chunks(h.chat_ids):
        chats = (await db.scalars(select(Chat).where(Chat.id.in_(chat_part)))).all()
        for chat in chats:
            chat.name = None
            chat.wa_chat_id = f"erased:{chat.id}"
    counts["chats"] = len(h.chat_ids)
    counts["tickets"] = len(h.ticket_ids)
    counts["identities_deleted"] = len(identities)
    await db.execute(delete(ClientIdentity).where(ClientIdentity.client_id == client.id))
    tags = await db.execute(delete(ClientTag).where(ClientTag.client_id == client.id))
    counts["tags_removed"] = int(getattr(tags, "rowcount", 0) or 0)

    client.name = None
    client.profile_name = None
    client.email = None
    client.notes = None
    client.custom_fields = {}
    client.phone = None
    client.wa_user_id = None
    client.lid = None
    client.erased_at = utcnow()
    await db.flush()

    audit.record(
        db,
        CLI_ACTOR,
        "client.erase",
        "client",
        client.id,
        company_id=client.company_id,
        extra={"by": "zapctl", **counts},
    )
    from shared.protocol.clients import CLIENT_UPDATE  # pydantic models: only when erasing

    await events.publish(db, client.company_id, CLIENT_UPDATE, {"id": client.id, "action": "erase"})
    return out


async def _redact_events(db: AsyncSession, company_id: uuid.UUID, chat_ids: list[uuid.UUID]) -> int:
    wanted = {str(c) for c in chat_ids}
    redacted = 0
    for part in _chunks(chat_ids, 50):
        text = cast(Event.data, Text)
        rows = (
            await db.scalars(
                select(Event).where(
                    Event.company_id == company_id,
                    or_(*(text.like(f"%{c}%") for c in part)),
                )
            )
        ).all()
        for row in rows:
            data = dict(row.data or {})
            if data.get("chat_id") in wanted and data.get("body") is not None:
                data["body"] = None
                row.data = data
                redacted += 1
    return redacted


async def _redact_audit(
    db: AsyncSession,
    client: Client,
    message_ids: list[uuid.UUID],
    media_ids: list[uuid.UUID],
) -> int:
    redacted = 0
    for entity_type, ids in (
        ("client", [client.id]),
        ("message", message_ids),
        ("media", media_ids),
    ):
        for part in _chunks(ids):
            rows = (
                await db.scalars(
                    select(AuditLog).where(
                        AuditLog.company_id == client.company_id,
                        AuditLog.entity_type == entity_type,
                        AuditLog.entity_id.in_(part),
                    )
                )
            ).all()
            for row in rows:
                new = _redacted(entity_type, dict(row.data or {}))
                if new != row.data:
                    row.data = new
                    redacted += 1
    return redacted


def _redacted(entity_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """Return an audit row's data with the person's details taken out (field names kept)."""
    if data.get("redacted") == "lgpd":
        return data
    if entity_type == "client":
        out: dict[str, Any] = {"redacted": "lgpd"}
        changes = data.get("changes")
        if isinstance(changes, dict):
            out["fields"] = sorted(changes)
        return out
    if entity_type == "message":
        if "to" not in data:
            return data
        return {**data, "to": None, "redacted": "lgpd"}
    changes = data.get("changes")
    if isinstance(changes, dict) and "filename" in changes:
        return {**data, "changes": {**changes, "filename": None}, "redacted": "lgpd"}
    return data


def delete_files(media_root: Path, storage_keys: Iterable[str]) -> int:
    """Delete stored media files by key (missing ones are fine); return how many went."""
    removed = 0
    for key in storage_keys:
        if not _STORAGE_KEY.match(key):
            continue
        try:
            (media_root / key).unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


async def unused_keys(db: AsyncSession, storage_keys: Sequence[str]) -> list[str]:
    """Return the keys no media row uses (checked again right before deleting files)."""
    used: set[str] = set()
    for part in _chunks(list(storage_keys)):
        used |= set(
            (await db.scalars(select(Media.storage_key).where(Media.storage_key.in_(part)))).all()
        )
    return [k for k in storage_keys if k not in used]


# --------------------------------------------------------------------------- retention

PURGE_ORDER = ("tickets", "webhook_events", "events", "session_logs")


def _closed_tickets(cutoff: datetime, company_id: uuid.UUID | None) -> Any:
    stmt = select(Ticket.id).where(
        Ticket.status == TicketStatus.CLOSED,
        Ticket.closed_at.is_not(None),
        Ticket.closed_at < cutoff,
    )
    if company_id is not None:
        stmt = stmt.where(Ticket.company_id == company_id)
    return stmt


def _old(model: Any, column: Any, cutoff: datetime, company_id: uuid.UUID | None) -> list[Any]:
    conditions = [column < cutoff]
    if company_id is not None:
        conditions.append(model.company_id == company_id)
    if model is WebhookEvent:
        conditions.append(
            WebhookEvent.state.in_([WebhookEventState.PROCESSED, WebhookEventState.IGNORED])
        )
    return conditions


_SIMPLE: dict[str, tuple[Any, Any]] = {
    "webhook_events": (WebhookEvent, WebhookEvent.received_at),
    "events": (Event, Event.created_at),
    "session_logs": (SessionLog, SessionLog.created_at),
}


async def purge_counts(
    db: AsyncSession, cutoff: datetime, company_id: uuid.UUID | None
) -> dict[str, int]:
    """Count what a purge at `cutoff` would delete, per kind of row."""
    tickets = _closed_tickets(cutoff, company_id).subquery()
    messages = select(Message.id).where(Message.ticket_id.in_(select(tickets.c.id)))
    out = {
        "tickets": await db.scalar(select(func.count()).select_from(tickets)) or 0,
        "messages": await db.scalar(select(func.count()).select_from(messages.subquery())) or 0,
        "message_status_history": await db.scalar(
            select(func.count()).where(MessageStatusHistory.message_id.in_(messages))
        )
        or 0,
        "assignments": await db.scalar(
            select(func.count()).where(Assignment.ticket_id.in_(select(tickets.c.id)))
        )
        or 0,
    }
    for name, (model, column) in _SIMPLE.items():
        out[name] = (
            await db.scalar(select(func.count()).where(*_old(model, column, cutoff, company_id)))
            or 0
        )
    return {k: int(v) for k, v in out.items()}


async def old_ticket_ids(
    db: AsyncSession, cutoff: datetime, company_id: uuid.UUID | None, limit: int
) -> list[uuid.UUID]:
    """Return up to `limit` ids of tickets closed before `cutoff`."""
    return list((await db.scalars(_closed_tickets(cutoff, company_id).limit(limit))).all())


async def purge_ticket_messages(
    db: AsyncSession, ticket_ids: Sequence[uuid.UUID], cutoff: datetime, limit: int
) -> int:
    """Delete up to `limit` messages of those tickets (still closed before `cutoff`)."""
    still_old = select(Ticket.id).where(
        Ticket.id.in_(ticket_ids),
        Ticket.status == TicketStatus.CLOSED,
        Ticket.closed_at < cutoff,
    )
    ids = list(
        (
            await db.scalars(
                select(Message.id).where(Message.ticket_id.in_(still_old)).limit(limit)
            )
        ).all()
    )
    if ids:
        await db.execute(delete(Message).where(Message.id.in_(ids)))
    return len(ids)


async def purge_tickets(db: AsyncSession, ticket_ids: Sequence[uuid.UUID], cutoff: datetime) -> int:
    """Delete those tickets if still closed before `cutoff` (their messages went first)."""
    result = await db.execute(
        delete(Ticket).where(
            Ticket.id.in_(ticket_ids),
            Ticket.status == TicketStatus.CLOSED,
            Ticket.closed_at < cutoff,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def purge_simple(
    db: AsyncSession, kind: str, cutoff: datetime, company_id: uuid.UUID | None, limit: int
) -> int:
    """Delete up to `limit` old rows of one kind (webhook_events, events, session_logs)."""
    model, column = _SIMPLE[kind]
    ids = list(
        (
            await db.scalars(
                select(model.id).where(*_old(model, column, cutoff, company_id)).limit(limit)
            )
        ).all()
    )
    if ids:
        await db.execute(delete(model).where(model.id.in_(ids)))
    return len(ids)
