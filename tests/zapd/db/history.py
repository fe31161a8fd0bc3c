"""Seed a representative history fast (executemany), for query-plan tests.

Two companies; the first holds `clients` customers, each with a chat, PHONE and
PHONE_ALT identities, one closed ticket (half of them a second one; one in five of
those still open: pending in a department queue, or being served by the agent), ten
messages per client spread over their tickets (the outbound ones with their SENT outbox
rows), two realtime events per client, and a reply still queued (a PENDING outbox row)
to each of a sample of fifty of them.
The second company holds a tenth of that, so every query also has to filter by company.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.cnpj import cnpj_check_digits
from shared.enums import (
    ChatType,
    ClientIdentityKind,
    Engine,
    FlowState,
    MessageDirection,
    MessageStatus,
    MessageType,
    OutboxState,
    Priority,
    Role,
    SessionStatus,
    TicketStatus,
)
from zapd.db.models import (
    Chat,
    Client,
    ClientIdentity,
    Company,
    Department,
    Event,
    Message,
    Outbox,
    Ticket,
    User,
    UserDepartment,
    WaSession,
)
from zapd.db.types import new_id

BATCH = 5_000
MESSAGES_PER_CLIENT = 10


@dataclass
class Seeded:
    """Ids the queries under test need."""

    company_id: uuid.UUID
    session_id: uuid.UUID
    department_ids: list[uuid.UUID]
    admin_id: uuid.UUID
    agent_id: uuid.UUID
    phones: list[str] = field(default_factory=list)  # a sample of existing customers
    client_ids: list[uuid.UUID] = field(default_factory=list)
    ticket_ids: list[uuid.UUID] = field(default_factory=list)  # tickets with messages
    last_seq: int = 0


async def _insert(conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), BATCH):
        await conn.execute(insert(table), rows[i : i + BATCH])


def _phone(company_no: int, i: int) -> str:
    return f"+55{11 + company_no}9{i:08d}"


async def seed(engine: AsyncEngine, clients: int) -> Seeded:
    """Write the history of two companies; return what the first one's queries need."""
    out: Seeded | None = None
    for company_no, n in ((0, clients), (1, max(1, clients // 10))):
        seeded = await _seed_company(engine, company_no, n)
        if out is None:
            out = seeded
    assert out is not None
    return out


async def _seed_company(engine: AsyncEngine, company_no: int, n: int) -> Seeded:
    now = datetime.now(UTC)
    start = now - timedelta(days=365)
    base = f"{90_000_000 + company_no:08d}0001"
    company_id, session_id = new_id(), new_id()
    deps = [new_id() for _ in range(4)]
    admin_id, agent_id = new_id(), new_id()
    common = {"company_id": company_id}
    async with engine.begin() as conn:
        await conn.execute(
            Company.__table__.insert(),
            [
                {
                    "id": company_id,
                    "name": f"History {company_no}",
                    "cnpj": base + cnpj_check_digits(base),
                    "settings": {},
                    "last_event_seq": 2 * n,
                    "last_ticket_number": 2 * n,
                    "created_at": start,
                    "updated_at": start,
                }
            ],
        )
        await conn.execute(
            WaSession.__table__.insert(),
            [
                {
                    **common,
                    "id": session_id,
                    "name": "main",
                    "engine": Engine.SANDBOX,
                    "status": SessionStatus.CONNECTED,
                    "config": {},
                    "flow_config": {},
                }
            ],
        )
        await conn.execute(
            Department.__table__.insert(),
            [
                {
                    **common,
                    "id": dep,
                    "name": f"Dep {i}",
                    "slug": f"dep-{i}",
                    "menu_order": i,
                    "keywords": [],
                    "business_hours": {},
                }
                for i, dep in enumerate(deps)
            ],
        )
        await conn.execute(
            User.__table__.insert(),
            [
                {
                    **common,
                    "id": uid,
                    "email": f"{name}.{company_no}@history.invalid",
                    "name": name,
                    "password_hash": "x",
                    "role": role,
                }
                for uid, name, role in (
                    (admin_id, "admin", Role.ADMIN),
                    (agent_id, "agent", Role.AGENT),
                )
            ],
        )
        await conn.execute(
            UserDepartment.__table__.insert(),
            [{**common, "user_id": agent_id, "department_id": deps[0]}],
        )
        seeded = Seeded(company_id, session_id, deps, admin_id, agent_id)
        step = timedelta(days=365) / max(1, n)
        clients: list[dict[str, Any]] = []
        identities: list[dict[str, Any]] = []
        chats: list[dict[str, Any]] = []
        tickets: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        boxes: list[dict[str, Any]] = []
        number = seq = 0
        for i in range(n):
            at = start + step * i
            phone = _phone(company_no, i)
            client_id, chat_id = new_id(), new_id()
            clients.append(
                {
                    **common,
                    "id": client_id,
                    "phone": phone,
                    "wa_user_id": f"{phone[1:]}@s.whatsapp.net",
                    "profile_name": f"Cliente {i}",
                    "custom_fields": {},
                    "created_at": at,
                    "updated_at": at,
                }
            )
            identities.append(
                {**common, "id": new_id(), "client_id": client_id, "kind": 0, "value": phone}
            )
            identities.append(
                {
                    **common,
                    "id": new_id(),
                    "client_id": client_id,
                    "kind": ClientIdentityKind.PHONE_ALT,
                    "value": phone[:5] + phone[6:],
                }
            )
            chats.append(
                {
                    **common,
                    "id": chat_id,
                    "session_id": session_id,
                    "client_id": client_id,
                    "wa_chat_id": f"{phone[1:]}@s.whatsapp.net",
                    "type": ChatType.DIRECT,
                    "last_message_at": at,
                    "created_at": at,
                    "updated_at": at,
                }
            )
            own: list[uuid.UUID] = []
            for k in range(2 if i % 2 == 0 else 1):
                number += 1
                open_ = k == 1 and i % 10 == 0
                serving = open_ and (i // 10) % 2 == 1  # half the open ones with the agent
                ticket_id = new_id()
                own.append(ticket_id)
                tickets.append(
                    {
                        **common,
                        "id": ticket_id,
                        "number": number,
                        "client_id": client_id,
                        "session_id": session_id,
                        "chat_id": chat_id,
                        "department_id": deps[(i // 10 if open_ else i + k) % len(deps)],
                        "assignee_id": agent_id if serving or i % 7 == 0 else None,
                        "status": TicketStatus.OPEN
                        if serving
                        else TicketStatus.PENDING
                        if open_
                        else TicketStatus.CLOSED,
                        "flow_state": FlowState.ROUTED if open_ else FlowState.DONE,
                        "flow_data": {},
                        "priority": Priority.NORMAL,
                        "closed_at": None if open_ else at + timedelta(hours=k + 1),
                        "last_message_at": at,
                        "created_at": at + timedelta(minutes=k),
                        "updated_at": at,
                    }
                )
            sampled = i % max(1, n // 50) == 0
            for m in range(MESSAGES_PER_CLIENT + (1 if sampled else 0)):
                inbound = m % 2 == 0
                queued = m == MESSAGES_PER_CLIENT  # the sample's reply, still to go out
                message_id = new_id()
                if not inbound:
                    boxes.append(
                        {
                            **common,
                            "id": new_id(),
                            "session_id": session_id,
                            "message_id": message_id,
                            "chat_id": chat_id,
                            "idempotency_key": f"msg:{message_id}",
                            "state": OutboxState.PENDING if queued else OutboxState.SENT,
                            "attempts": 0 if queued else 1,
                            "max_attempts": 8,
                            "next_attempt_at": at,
                            "sent_at": None if queued else at + timedelta(seconds=m),
                            "created_at": at + timedelta(seconds=m),
                            "updated_at": at + timedelta(seconds=m),
                        }
                    )
                messages.append(
                    {
                        **common,
                        "id": message_id,
                        "session_id": session_id,
                        "chat_id": chat_id,
                        "ticket_id": own[m % len(own)],
                        "direction": MessageDirection.INBOUND
                        if inbound
                        else MessageDirection.OUTBOUND,
                        "type": MessageType.TEXT,
                        "status": MessageStatus.RECEIVED
                        if inbound
                        else MessageStatus.QUEUED
                        if queued
                        else MessageStatus.READ,
                        "body": f"mensagem {m} do cliente {i}",
                        "wa_message_id": None if queued else f"W{company_no}.{i}.{m}",
                        "extra": {},
                        "created_at": at + timedelta(seconds=m),
                        "updated_at": at + timedelta(seconds=m),
                    }
                )
            for _ in range(2):
                seq += 1
                events.append(
                    {
                        **common,
                        "id": new_id(),
                        "seq": seq,
                        "type": "message.new",
                        "department_id": deps[i % len(deps)],
                        "scoped": True,
                        "data": {"ticket_id": str(own[0])},
                        "created_at": at,
                    }
                )
            if sampled:
                seeded.phones.append(phone)
                seeded.client_ids.append(client_id)
                seeded.ticket_ids.append(own[0])
            if len(messages) >= BATCH * 4:
                await _flush(conn, clients, identities, chats, tickets, messages, events, boxes)
        await _flush(conn, clients, identities, chats, tickets, messages, events, boxes)
        seeded.last_seq = seq
    return seeded


async def _flush(conn: AsyncConnection, *batches: list[dict[str, Any]]) -> None:
    tables = (Client, ClientIdentity, Chat, Ticket, Message, Event, Outbox)
    for model, rows in zip(tables, batches, strict=True):
        await _insert(conn, model.__table__, rows)  # type: ignore[arg-type]
        rows.clear()
