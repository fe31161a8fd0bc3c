"""Rows inserted straight into the database, for read-side API tests.

The write side of conversations (inbound pipeline, accept/assign/transfer/close) is
not what these tests are about, so they seed chats, tickets and messages directly.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime
from typing import Any

from shared.enums import (
    Engine,
    LogLevel,
    MessageDirection,
    MessageStatus,
    MessageType,
    TicketStatus,
)
from tests.zapd.api.conftest import Live
from zapd.connectors.events import MessageEvent
from zapd.db.models import (
    AuditLog,
    Chat,
    Client,
    Message,
    SessionLog,
    Ticket,
    WaSession,
)
from zapd.kernel.scoping import next_ticket_number

_n = itertools.count(1)


async def session(
    live: Live, company_id: uuid.UUID, name: str | None = None, **kw: Any
) -> uuid.UUID:
    """Insert a sandbox session."""
    async with live.kernel.tx() as db:
        row = WaSession(
            company_id=company_id,
            name=name or f"Sessão {next(_n)}",
            engine=kw.pop("engine", Engine.SANDBOX),
            **kw,
        )
        db.add(row)
        await db.flush()
        return row.id


async def client(
    live: Live,
    company_id: uuid.UUID,
    phone: str,
    name: str | None = None,
    profile_name: str | None = None,
) -> uuid.UUID:
    """Insert a client."""
    async with live.kernel.tx() as db:
        row = Client(company_id=company_id, phone=phone, name=name, profile_name=profile_name)
        db.add(row)
        await db.flush()
        return row.id


async def ticket(
    live: Live,
    company_id: uuid.UUID,
    session_id: uuid.UUID,
    client_id: uuid.UUID,
    *,
    department_id: uuid.UUID | None = None,
    assignee_id: uuid.UUID | None = None,
    status: TicketStatus = TicketStatus.PENDING,
    **kw: Any,
) -> uuid.UUID:
    """Insert a ticket (numbered like the real thing) with a chat of its own."""
    async with live.kernel.tx() as db:
        number = await next_ticket_number(db, company_id)
        chat = Chat(
            company_id=company_id,
            session_id=session_id,
            client_id=client_id,
            wa_chat_id=f"{next(_n)}@s.whatsapp.net",
        )
        db.add(chat)
        await db.flush()
        row = Ticket(
            company_id=company_id,
            number=number,
            session_id=session_id,
            client_id=client_id,
            chat_id=chat.id,
            department_id=department_id,
            assignee_id=assignee_id,
            status=status,
            **kw,
        )
        db.add(row)
        await db.flush()
        return row.id


async def messages(live: Live, ticket_id: uuid.UUID, count: int, **kw: Any) -> list[uuid.UUID]:
    """Insert `count` messages on a ticket, alternating in and out; return ids in order."""
    ids: list[uuid.UUID] = []
    async with live.kernel.tx() as db:
        t = await db.get(Ticket, ticket_id)
        assert t is not None and t.session_id is not None and t.chat_id is not None
        for i in range(count):
            inbound = i % 2 == 0
            row = Message(
                company_id=t.company_id,
                session_id=t.session_id,
                chat_id=t.chat_id,
                ticket_id=t.id,
                direction=MessageDirection.INBOUND if inbound else MessageDirection.OUTBOUND,
                type=MessageType.TEXT,
                status=MessageStatus.RECEIVED if inbound else MessageStatus.DELIVERED,
                body=f"mensagem {i}",
                wa_message_id=f"wamid.{uuid.uuid4().hex}",
                **kw,
            )
            db.add(row)
            await db.flush()  # one at a time: ids keep insertion order
            ids.append(row.id)
    return ids


async def session_logs(
    live: Live, session_id: uuid.UUID, levels: list[LogLevel]
) -> list[uuid.UUID]:
    """Insert one log line per level given; return ids in order."""
    ids: list[uuid.UUID] = []
    async with live.kernel.tx() as db:
        s = await db.get(WaSession, session_id)
        assert s is not None
        for i, level in enumerate(levels):
            row = SessionLog(
                company_id=s.company_id,
                session_id=s.id,
                level=level,
                event=f"e{i}",
                message=f"line {i}",
            )
            db.add(row)
            await db.flush()
            ids.append(row.id)
    return ids


async def audit_row(
    live: Live,
    company_id: uuid.UUID | None,
    action: str,
    entity_type: str,
    *,
    user_id: uuid.UUID | None = None,
    entity_id: uuid.UUID | None = None,
    created_at: datetime | None = None,
) -> uuid.UUID:
    """Insert an audit row (with a chosen time, for range queries)."""
    async with live.kernel.tx() as db:
        row = AuditLog(
            company_id=company_id,
            user_id=user_id,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            data={},
        )
        if created_at is not None:
            row.created_at = created_at
        db.add(row)
        await db.flush()
        return row.id


def says(
    sid: uuid.UUID, phone: str, wa_id: str, text: str = "oi", chat: str | None = None
) -> MessageEvent:
    """A customer's text as an engine hands it to the pipeline (`chat`: another chat id)."""
    now = datetime.now(UTC)
    jid = phone[1:] + "@s.whatsapp.net"
    return MessageEvent(
        session_id=sid,
        at=now,
        wa_message_id=wa_id,
        chat_jid=chat or jid,
        sender_jid=jid,
        body=text,
        timestamp=now,
    )
