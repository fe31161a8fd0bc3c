"""The outbox: every outbound message is a message row plus an outbox row, in one transaction.

`enqueue` is the only way anything reaches a customer. The sending side (workers,
rate limits, retries, dead letters) lives in `zapd.services.outbox_worker`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import MessageDirection, MessageStatus, MessageType, OutboxState
from shared.protocol.events import MESSAGE_NEW
from zapd.db.models import Chat, Message, Outbox, Ticket
from zapd.db.types import utcnow
from zapd.realtime import events


@dataclass(frozen=True)
class Enqueued:
    """A message waiting in the outbox."""

    message: Message
    outbox: Outbox | None  # None for internal notes (never sent)
    created: bool  # False when the idempotency key had been used already


async def by_key(db: AsyncSession, idempotency_key: str) -> Message | None:
    """Return the message an idempotency key already produced, if any."""
    return await db.scalar(
        select(Message)
        .join(Outbox, Outbox.message_id == Message.id)
        .where(Outbox.idempotency_key == idempotency_key)
    )


async def enqueue(
    db: AsyncSession,
    chat: Chat,
    body: str | None,
    *,
    ticket: Ticket | None = None,
    type_: MessageType = MessageType.TEXT,
    author_id: uuid.UUID | None = None,
    media_id: uuid.UUID | None = None,
    quoted_message_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
    note: bool = False,
    kind: str = "agent",  # agent, menu, system: kept in extra for the history
) -> Enqueued:
    """Create an outbound message and its outbox row (or an internal note) in this transaction.

    A repeated `idempotency_key` returns the first message and creates nothing.
    Keys are scoped by the caller (e.g. "api:<company>:<client key>").
    """
    if idempotency_key is not None:
        existing = await by_key(db, idempotency_key)
        if existing is not None:
            row = await db.scalar(select(Outbox).where(Outbox.message_id == existing.id))
            return Enqueued(existing, row, created=False)
    now = utcnow()
    message = Message(
        company_id=chat.company_id,
        session_id=chat.session_id,
        chat_id=chat.id,
        ticket_id=ticket.id if ticket else None,
        direction=MessageDirection.OUTBOUND,
        type=type_,
        status=MessageStatus.SENT if note else MessageStatus.QUEUED,
        body=body,
        media_id=media_id,
        quoted_message_id=quoted_message_id,
        is_note=note,
        author_id=author_id,
        extra={"kind": kind},
    )
    db.add(message)
    await db.flush()
    box: Outbox | None = None
    if not note:
        box = Outbox(
            company_id=chat.company_id,
            session_id=chat.session_id,
            message_id=message.id,
            idempotency_key=idempotency_key or f"msg:{message.id}",
            state=OutboxState.PENDING,
            next_attempt_at=now,
        )
        db.add(box)
    chat.last_message_at = now
    if ticket is not None:
        ticket.last_message_at = now
    await db.flush()
    await events.publish(
        db,
        chat.company_id,
        MESSAGE_NEW,
        {
            "id": message.id,
            "ticket_id": message.ticket_id,
            "chat_id": chat.id,
            "direction": int(message.direction),
            "type": int(message.type),
            "status": int(message.status),
            "body": body,
            "is_note": note,
            "author_id": author_id,
            "kind": kind,
        },
        department_id=ticket.department_id if ticket else None,
        user_id=ticket.assignee_id if ticket else None,
    )
    return Enqueued(message, box, created=True)
