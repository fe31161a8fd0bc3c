"""Agents (and scripts) writing to customers: `send` puts a message in the outbox.

To a ticket (any role that may see it) or, for supervisors and up, to a phone number on
a session (the client and chat are found or created; the client's open ticket on that
session, if any, gets the message). The text may start with `/shortcut` (a quick
reply); when the company says so, the agent's name and department go before it, as the
customer will read it. Internal notes are stored and shown to agents, never sent.

An `Idempotency-Key` makes a send safe to repeat: the same key from the same company
with the same request answers the first message and queues nothing; the same key with
another request (a different body, ticket, media...) is refused with 422
ERR_IDEMPOTENCY_MISMATCH. The request's fingerprint (`request_fingerprint`) is kept in
the message's `extra`; messages stored before it existed replay as before.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import MessageType, Role, TicketStatus
from shared.errors import ErrorCode
from shared.phone import InvalidPhone, e164_to_jid, normalize_phone
from shared.protocol.clients import CLIENT_UPDATE
from shared.protocol.events import TICKET_UPDATE
from shared.protocol.messages import BODY_MAX, MessageSend
from zapd.db.models import (
    Chat,
    Client,
    Company,
    Department,
    Media,
    Message,
    QuickReply,
    Ticket,
    WaSession,
)
from zapd.db.types import utcnow
from zapd.domain.texts import Texts, session_overrides
from zapd.errors import Conflict, NotFound, ValidationFailed
from zapd.kernel import audit, events
from zapd.kernel.principal import Actor, Principal
from zapd.kernel.scoping import referenced, unknown_reference
from zapd.kernel.visibility import can_see
from zapd.services.conversations.cloud import check_cloud_send, template_text
from zapd.services.delivery import media as media_service
from zapd.services.delivery import outbox
from zapd.services.people import identity
from zapd.services.people.companies import settings_of
from zapd.services.people.identity import Identity
from zapd.services.sessions import records as sessions
from zapd.services.tickets import queries as tickets
from zapd.services.tickets.queries import ticket_event

_SHORTCUT = re.compile(r"^/([A-Za-z0-9_-]{1,64})(?=\s|$)")
_MEDIA_TYPES = {
    "image": MessageType.IMAGE,
    "audio": MessageType.AUDIO,
    "video": MessageType.VIDEO,
}


@dataclass(frozen=True)
class Sent:
    """The outcome of a send: the message, and whether this call created it."""

    message: Message
    created: bool


FINGERPRINT = "request_sha256"  # the key of the request fingerprint in `Message.extra`


def request_fingerprint(body: MessageSend) -> str:
    """Return a stable hash of what was asked (the whole request body, canonical JSON)."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def scoped_key(company_id: uuid.UUID, key: str) -> str:
    """Return the outbox idempotency key of a client-given key (scoped by company)."""
    return f"api:{company_id}:{key}"


async def _replay(
    db: AsyncSession, p: Principal, key: str, ticket: Ticket | None, fingerprint: str
) -> Message | None:
    found = await outbox.by_key(db, key)
    if found is None and ticket is not None:
        # Notes never enter the outbox: their key is kept on the note itself.
        found = await db.scalar(
            select(Message).where(
                Message.ticket_id == ticket.id,
                Message.is_note.is_(True),
                Message.extra["idempotency_key"].as_string() == key,
            )
        )
    if found is None:
        return None
    if found.ticket_id is not None:
        original = await db.get(Ticket, found.ticket_id)
        if original is not None and not can_see(p, original):
            raise Conflict(
                "this Idempotency-Key was already used for another ticket",
                code=ErrorCode.IDEMPOTENCY_KEY_REUSED,
            )
    first = (found.extra or {}).get(FINGERPRINT)
    if first is not None and first != fingerprint:
        raise ValidationFailed(
            "this Idempotency-Key was already used with another request; "
            "use a new key for a new message",
            code=ErrorCode.IDEMPOTENCY_MISMATCH,
        )
    return found


async def expand_quick_reply(
    db: AsyncSession, company_id: uuid.UUID, department_id: uuid.UUID | None, text: str
) -> tuple[str, str | None]:
    """Expand a leading `/shortcut` (the department's own reply wins over a company-wide one).

    Returns the text and the shortcut used (None when the text has none). Whatever
    follows the shortcut is kept after the reply's body.
    """
    match = _SHORTCUT.match(text)
    if match is None:
        return text, None
    shortcut = match.group(1).lower()
    rows = list(
        (
            await db.scalars(
                select(QuickReply).where(
                    QuickReply.company_id == company_id, QuickReply.shortcut == shortcut
                )
            )
        ).all()
    )
    usable = [r for r in rows if r.department_id is None or r.department_id == department_id]
    if not usable:
        raise ValidationFailed(
            f"no quick reply /{shortcut} here", code=ErrorCode.UNKNOWN_QUICK_REPLY
        )
    reply = max(usable, key=lambda r: r.department_id is not None)
    return reply.body + text[match.end() :], shortcut


async def _client_for_phone(db: AsyncSession, company_id: uuid.UUID, e164: str) -> Client:
    client, created = await identity.find_or_create(db, company_id, Identity(phone=e164))
    if created:
        await db.flush()
        await events.publish(db, company_id, CLIENT_UPDATE, {"id": client.id, "action": "create"})
    return client


async def _chat_for(db: AsyncSession, session: WaSession, client: Client, e164: str) -> Chat:
    chat = await db.scalar(
        select(Chat)
        .where(
            Chat.company_id == session.company_id,
            Chat.session_id == session.id,
            Chat.client_id == client.id,
        )
        .order_by(Chat.last_message_at.desc().nulls_last(), Chat.id.desc())
        .limit(1)
    )
    if chat is not None:
        return chat
    jid = e164_to_jid(e164)
    chat = await db.scalar(
        select(Chat).where(
            Chat.company_id == session.company_id,
            Chat.session_id == session.id,
            Chat.wa_chat_id == jid,
        )
    )
    if chat is None:
        chat = Chat(
            company_id=session.company_id,
            session_id=session.id,
            client_id=client.id,
            wa_chat_id=jid,
        )
        db.add(chat)
        await db.flush()
    return chat


async def _media(db: AsyncSession, principal: Principal, media_id: uuid.UUID) -> Media:
    """Return a media the sender may read (attaching it must not widen who can see it)."""
    try:
        return await media_service.get(db, principal, media_id)
    except NotFound:
        raise unknown_reference("media_id", "media") from None


def _type_of(media: Media | None) -> MessageType:
    if media is None:
        return MessageType.TEXT
    return _MEDIA_TYPES.get(media.mime.split("/", 1)[0].lower(), MessageType.DOCUMENT)


async def send(
    db: AsyncSession, actor: Actor, body: MessageSend, idempotency_key: str | None = None
) -> Sent:
    """Queue a message to a customer, or store an internal note (see the module docstring)."""
    p = actor.principal
    ticket: Ticket | None = None
    client: Client | None = None
    e164: str | None = None
    if body.ticket_id is not None:
        ticket = await tickets.get_ticket(db, p, body.ticket_id)
        company_id = ticket.company_id
    else:
        assert body.session_id is not None and body.to is not None
        session = await sessions.get(db, p, body.session_id)
        p.require(Role.SUPERVISOR)
        company_id = session.company_id
        try:
            e164 = normalize_phone(body.to)
        except InvalidPhone as exc:
            raise ValidationFailed(f"to: {exc}") from None
    key = scoped_key(company_id, idempotency_key) if idempotency_key else None
    fingerprint = request_fingerprint(body)
    if key is not None:
        replayed = await _replay(db, p, key, ticket, fingerprint)
        if replayed is not None:
            return Sent(replayed, created=False)

    if ticket is not None:
        owner = await db.get(Client, ticket.client_id)
        if owner is not None and owner.erased_at is not None and not body.note:
            raise Conflict(
                "this client's data was erased (LGPD): messages to them are refused",
                code=ErrorCode.CLIENT_ERASED,
            )
        if ticket.status is TicketStatus.CLOSED:
            raise Conflict("the ticket is closed", code=ErrorCode.TICKET_CLOSED)
        if ticket.chat_id is None or ticket.session_id is None:
            raise Conflict(
                "the ticket has no WhatsApp chat (its session was removed)",
                code=ErrorCode.TICKET_NO_CHAT,
            )
        chat = await db.get(Chat, ticket.chat_id)
        found_session = await db.get(WaSession, ticket.session_id)
        if chat is None or found_session is None:
            raise Conflict("the ticket has no WhatsApp chat", code=ErrorCode.TICKET_NO_CHAT)
        session = found_session
    else:
        assert e164 is not None
        client = await _client_for_phone(db, company_id, e164)
        chat = await _chat_for(db, session, client, e164)
        ticket = await db.scalar(
            select(Ticket).where(
                Ticket.client_id == client.id,
                Ticket.session_id == session.id,
                Ticket.status != TicketStatus.CLOSED,
            )
        )
    if not body.note and not session.active:
        raise Conflict("the session is inactive", code=ErrorCode.SESSION_INACTIVE)
    template_extra = await check_cloud_send(
        db, session, ticket.client_id if ticket else client.id if client else None, body
    )

    quoted_id = None
    if body.quoted_message_id is not None:
        quoted = await referenced(
            db,
            Message,
            body.quoted_message_id,
            company_id,
            field="quoted_message_id",
            what="message",
        )
        if quoted.chat_id != chat.id:
            raise ValidationFailed("quoted_message_id: no such message in this chat")
        quoted_id = quoted.id
    media = await _media(db, actor.principal, body.media_id) if body.media_id else None

    department = (
        await db.get(Department, ticket.department_id)
        if ticket is not None and ticket.department_id
        else None
    )
    text = body.body if body.body and body.body.strip() else None
    if body.template is not None:
        text = template_text(body.template.name, body.template.parameters)
    shortcut = None
    if text is not None:
        text, shortcut = await expand_quick_reply(
            db, company_id, department.id if department else None, text
        )
        if len(text) > BODY_MAX:
            raise ValidationFailed(f"body: at most {BODY_MAX} characters once expanded")
    company = await db.get(Company, company_id)
    if company is None:
        raise NotFound("company not found")
    if (
        text is not None
        and not body.note
        and body.template is None
        and p.user_id is not None
        and settings_of(company).agent_name_prefix
    ):
        texts = Texts(company.locale, session_overrides(session.flow_config))
        prefix = texts.render(
            "agent_prefix",
            agent=p.name,
            department=department.name if department else company.name,
        )
        text = f"{prefix}\n{text}"

    queued = await outbox.enqueue(
        db,
        chat,
        text,
        ticket=ticket,
        type_=_type_of(media),
        author_id=p.user_id,
        media_id=media.id if media else None,
        quoted_message_id=quoted_id,
        idempotency_key=None if body.note else key,
        note=body.note,
        kind="agent",
    )
    message = queued.message
    if key is not None:
        message.extra = {**(message.extra or {}), FINGERPRINT: fingerprint}
    if template_extra is not None:
        message.extra = {**(message.extra or {}), **template_extra}
    if body.note and key is not None:
        message.extra = {**(message.extra or {}), "idempotency_key": key}

    chat.unread_count = 0
    if ticket is not None:
        ticket.unread_count = 0  # the agent has read the conversation
        if not body.note and ticket.first_response_at is None:
            ticket.first_response_at = utcnow()
    await db.flush()
    extra: dict[str, Any] = {
        "ticket_id": ticket.id if ticket else None,
        "chat_id": chat.id,
        "session_id": session.id,
        "note": body.note,
        "type": int(message.type),
        "body_length": len(text or ""),  # the text itself stays out of the audit log
        "media_id": message.media_id,
        "quick_reply": shortcut,
        "template": body.template.name if body.template else None,
        "idempotency_key": idempotency_key,
    }
    if e164 is not None:
        extra["to"] = e164
    audit.record(
        db, actor, "message.send", "message", message.id, company_id=company_id, extra=extra
    )
    if ticket is not None:
        await events.for_ticket(db, company_id, TICKET_UPDATE, ticket_event(ticket), ticket)
    return Sent(message, created=True)
