"""Tickets let go of a person who leaves: an erased client, a disabled user.

- `close_for_erased_client`: every open ticket of a client erased under the LGPD is
  closed (no farewell: the customer is gone) with a system line in its history; the
  caller (`compliance.lgpd.erase`) has already cancelled its queued outbound messages.
- `return_to_queues`: every open ticket assigned to a disabled user goes back to its
  department's queue (PENDING, no assignee, the assignment row ended), with a system
  line and a `ticket.update` event to both the old and the new audience, so new
  customer messages land in the queue rather than with someone who cannot answer.

A system line is an internal note (`is_note`, `extra.kind = "system"`, no author): agents
read it in the ticket's history; it never reaches the customer. Each change writes an
audit row (action `ticket.close` / `ticket.release`) in the caller's transaction.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import TicketStatus
from shared.protocol.users import UserUpdate
from zapd.db.models import Chat, Company, Department, Message, Ticket, User
from zapd.db.types import utcnow
from zapd.domain.texts import Texts
from zapd.kernel import audit
from zapd.kernel.principal import Actor
from zapd.services.delivery import outbox
from zapd.services.people import users
from zapd.services.tickets import lifecycle


async def system_line(
    db: AsyncSession, ticket: Ticket, key: str, **values: object
) -> Message | None:
    """Add a system note (text `key` of the company's locale) to a ticket's history."""
    if ticket.chat_id is None:
        return None
    chat = await db.get(Chat, ticket.chat_id)
    if chat is None:
        return None
    company = await db.get(Company, ticket.company_id)
    text = Texts(company.locale if company else None).render(key, **values)
    queued = await outbox.enqueue(db, chat, text, ticket=ticket, note=True, kind="system")
    return queued.message


async def _open_tickets(db: AsyncSession, *where: object) -> list[Ticket]:
    return list(
        (
            await db.scalars(
                select(Ticket)
                .where(Ticket.status != TicketStatus.CLOSED, *where)  # type: ignore[arg-type]
                .order_by(Ticket.id)
                .with_for_update()
            )
        ).all()
    )


async def close_for_erased_client(db: AsyncSession, actor: Actor, client_id: uuid.UUID) -> int:
    """Close the open tickets of an erased client; return how many."""
    tickets = await _open_tickets(db, Ticket.client_id == client_id)
    now = utcnow()
    for ticket in tickets:
        before, was = lifecycle.snapshot(ticket), lifecycle.hints(ticket)
        await system_line(db, ticket, "sys_client_erased")
        ticket.status = TicketStatus.CLOSED
        ticket.closed_at = now
        ticket.timeout_at = None
        await lifecycle.end_assignments(db, ticket.id, now)
        await db.flush()
        audit.record(
            db,
            actor,
            "ticket.close",
            "ticket",
            ticket.id,
            company_id=ticket.company_id,
            before=before,
            after=lifecycle.snapshot(ticket),
            extra={"reason": "client erased"},
        )
        await lifecycle.publish_update(db, ticket, "close", was, reason="client_erased")
    return len(tickets)


async def return_to_queues(
    db: AsyncSession, actor: Actor, user_id: uuid.UUID, user_name: str
) -> int:
    """Put the open tickets of a disabled user back in their departments' queues."""
    tickets = await _open_tickets(db, Ticket.assignee_id == user_id)
    now = utcnow()
    for ticket in tickets:
        before, was = lifecycle.snapshot(ticket), lifecycle.hints(ticket)
        ticket.assignee_id = None
        ticket.status = TicketStatus.PENDING
        department = (
            await db.get(Department, ticket.department_id) if ticket.department_id else None
        )
        ticket.timeout_at = lifecycle.deadline(department, now)  # waits like a new one
        await lifecycle.end_assignments(db, ticket.id, now)
        await system_line(db, ticket, "sys_user_disabled", agent=user_name)
        await db.flush()
        audit.record(
            db,
            actor,
            "ticket.release",
            "ticket",
            ticket.id,
            company_id=ticket.company_id,
            before=before,
            after=lifecycle.snapshot(ticket),
            extra={"reason": "user disabled", "user_id": user_id},
        )
        await lifecycle.publish_update(db, ticket, "release", was, reason="user_disabled")
    return len(tickets)


async def set_user_active(db: AsyncSession, actor: Actor, user_id: uuid.UUID, active: bool) -> User:
    """Enable or disable a user (`people.users.set_active`); a disabled user's open
    tickets return to their queues in the same transaction."""
    row = await users.set_active(db, actor, user_id, active)
    if not row.active:
        await return_to_queues(db, actor, row.id, row.name)
    return row


async def update_user(db: AsyncSession, actor: Actor, user_id: uuid.UUID, body: UserUpdate) -> User:
    """Change a user (`people.users.update`); disabling them releases their open tickets."""
    row = await users.update(db, actor, user_id, body)
    if not row.active:
        await return_to_queues(db, actor, row.id, row.name)
    return row
