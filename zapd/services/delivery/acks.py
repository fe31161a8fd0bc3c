"""Delivery status changes: forward only, recorded, pushed; early acks kept until their message."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import MessageStatus
from shared.protocol.events import MESSAGE_STATUS
from zapd.db.models import Message, MessageStatusHistory, PendingAck, Ticket
from zapd.db.types import utcnow
from zapd.domain.acks import advance
from zapd.kernel import events


async def apply_status(
    db: AsyncSession,
    message: Message,
    status: MessageStatus,
    *,
    at: datetime | None = None,
    source: str,
    error: str | None = None,
) -> bool:
    """Move a message's status forward (never back); record and push the change."""
    nxt = advance(message.status, status)
    if nxt is None:
        return False
    message.status = nxt
    if error:
        message.error = error
    db.add(
        MessageStatusHistory(
            company_id=message.company_id,
            message_id=message.id,
            status=nxt,
            source=source,
            occurred_at=at or utcnow(),
        )
    )
    ticket = await db.get(Ticket, message.ticket_id) if message.ticket_id else None
    await events.publish(
        db,
        message.company_id,
        MESSAGE_STATUS,
        {
            "id": message.id,
            "ticket_id": message.ticket_id,
            "status": int(nxt),
            "error": message.error,
        },
        department_id=ticket.department_id if ticket else None,
        user_id=ticket.assignee_id if ticket else None,
    )
    return True


async def on_ack(
    db: AsyncSession,
    company_id: uuid.UUID,
    session_id: uuid.UUID,
    wa_message_id: str,
    status: MessageStatus,
    at: datetime,
    source: str,
    error: str | None = None,
) -> bool:
    """Apply an engine ack now, or keep it until its message lands (returns applied?)."""
    message = await db.scalar(
        select(Message).where(
            Message.company_id == company_id,
            Message.session_id == session_id,
            Message.wa_message_id == wa_message_id,
        )
    )
    if message is None:
        db.add(
            PendingAck(
                company_id=company_id,
                session_id=session_id,
                wa_message_id=wa_message_id,
                status=status,
                occurred_at=at,
            )
        )
        return False
    return await apply_status(db, message, status, at=at, source=source, error=error)


async def apply_pending(db: AsyncSession, message: Message, source: str) -> int:
    """Apply (in status order) the acks that arrived before `message` got its WhatsApp id."""
    if message.wa_message_id is None:
        return 0
    rows = list(
        (
            await db.scalars(
                select(PendingAck).where(
                    PendingAck.company_id == message.company_id,
                    PendingAck.session_id == message.session_id,
                    PendingAck.wa_message_id == message.wa_message_id,
                )
            )
        ).all()
    )
    applied = 0
    for row in sorted(rows, key=lambda r: r.status.rank):
        if await apply_status(db, message, row.status, at=row.occurred_at, source=source):
            applied += 1
        await db.delete(row)
    return applied
