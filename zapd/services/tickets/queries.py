"""Tickets, read side: filtered listings, a ticket's messages, and the ticket read model.

Who sees a ticket is `zapd.kernel.visibility` (the rule the realtime stream applies
too): a ticket the caller may not see answers 404, like one that does not exist.
`ticket_event` is the realtime payload describing a ticket, the one shape every
`ticket.new` / `ticket.update` event carries whoever publishes it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import TicketStatus
from zapd.db import search
from zapd.db.models import (
    Assignment,
    Client,
    Department,
    Message,
    MessageStatusHistory,
    Ticket,
    User,
)
from zapd.domain.flow import Step
from zapd.errors import NotFound, ValidationFailed
from zapd.kernel.pagination import PageParams, paginate
from zapd.kernel.principal import Principal
from zapd.kernel.visibility import can_see, can_see_ticket, ticket_clause

ASSIGNEE_ME = "me"
ASSIGNEE_NONE = "none"


@dataclass(frozen=True)
class TicketView:
    """A ticket with the rows it points at; reads the ticket's own columns through."""

    ticket: Ticket
    client: Client
    department: Department | None
    assignee: User | None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ticket, name)


@dataclass(frozen=True)
class TicketFilter:
    """What `GET /tickets` narrows the listing to."""

    company_id: uuid.UUID | None = None
    statuses: tuple[TicketStatus, ...] = ()
    department_id: uuid.UUID | None = None
    assignee: str | None = None  # a user id, "me" or "none" (unassigned)
    client_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    q: str | None = None
    number: int | None = None  # the per-company "#123"


def ticket_event(
    ticket: Ticket, *, reopened: bool = False, step: Step | None = None
) -> dict[str, Any]:
    """Return the realtime payload describing a ticket."""
    return {
        "id": ticket.id,
        "number": ticket.number,
        "status": int(ticket.status),
        "flow_state": int(ticket.flow_state),
        "department_id": ticket.department_id,
        "assignee_id": ticket.assignee_id,
        "client_id": ticket.client_id,
        "session_id": ticket.session_id,
        "unread_count": ticket.unread_count,
        "reopened": reopened,
        "routed_by": step.reason if step and step.department_id else None,
        "out_of_hours": bool(step and step.out_of_hours),
        "at": datetime.now(UTC),
    }


async def get_ticket(db: AsyncSession, p: Principal, ticket_id: uuid.UUID) -> Ticket:
    """Return a ticket the caller may see, or 404."""
    row = await db.get(Ticket, ticket_id)
    if row is None or not can_see(p, row):
        raise NotFound("ticket not found")
    return row


async def views(db: AsyncSession, tickets: Sequence[Ticket]) -> list[TicketView]:
    """Load the clients, departments and assignees of `tickets` (three queries in all).

    A ticket whose client is gone by the time its client is read (erased, merged, its
    company deleted: on PostgreSQL each statement of a read sees its own snapshot) is
    left out, as it would be from a listing read a moment later.
    """

    async def by_id(model: Any, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, Any]:
        wanted = sorted({i for i in ids if i is not None})
        if not wanted:
            return {}
        rows = await db.scalars(select(model).where(model.id.in_(wanted)))
        return {r.id: r for r in rows}

    clients = await by_id(Client, (t.client_id for t in tickets))
    departments = await by_id(Department, (t.department_id for t in tickets))
    users = await by_id(User, (t.assignee_id for t in tickets))
    return [
        TicketView(
            t,
            clients[t.client_id],
            departments.get(t.department_id) if t.department_id else None,
            users.get(t.assignee_id) if t.assignee_id else None,
        )
        for t in tickets
        if t.client_id in clients
    ]


async def get(db: AsyncSession, p: Principal, ticket_id: uuid.UUID) -> TicketView:
    """Return a visible ticket with its client, department and assignee, or 404."""
    found = await views(db, [await get_ticket(db, p, ticket_id)])
    if not found:
        raise NotFound("ticket not found")
    return found[0]


def _apply_filter(stmt: Select[Any], p: Principal, f: TicketFilter) -> Select[Any]:
    company = p.company_filter(f.company_id)
    if company is not None:
        stmt = stmt.where(Ticket.company_id == company)
    limit = ticket_clause(p)
    if limit is not None:
        stmt = stmt.where(limit)
    if f.statuses:
        stmt = stmt.where(Ticket.status.in_(sorted(set(f.statuses))))
    if f.department_id is not None:
        stmt = stmt.where(Ticket.department_id == f.department_id)
    if f.assignee is not None:
        if f.assignee == ASSIGNEE_ME:
            if p.user_id is None:
                raise ValidationFailed("assignee_id=me needs a user login, not an API token")
            stmt = stmt.where(Ticket.assignee_id == p.user_id)
        elif f.assignee == ASSIGNEE_NONE:
            stmt = stmt.where(Ticket.assignee_id.is_(None))
        else:
            try:
                assignee = uuid.UUID(f.assignee)
            except ValueError:
                raise ValidationFailed("assignee_id: a user id, 'me' or 'none'") from None
            stmt = stmt.where(Ticket.assignee_id == assignee)
    if f.client_id is not None:
        stmt = stmt.where(Ticket.client_id == f.client_id)
    if f.session_id is not None:
        stmt = stmt.where(Ticket.session_id == f.session_id)
    if f.number is not None:
        stmt = stmt.where(Ticket.number == f.number)
    q = (f.q or "").strip()
    if q:
        # Names: folded word prefixes on the indexed `client_terms` ("lucia" finds "Lúcia").
        matches: list[ColumnElement[bool]] = []
        words = search.query_words(q)
        if words:
            matches.append(search.name_matches(Ticket.client_id, words, company))
        digits = re.sub(r"\D", "", q)
        if len(digits) >= 3:
            matches.append(
                Ticket.client_id.in_(select(Client.id).where(Client.phone.contains(digits)))
            )
        if not matches:
            return stmt.where(false())
        stmt = stmt.where(or_(*matches))
    return stmt


async def list_(
    db: AsyncSession, p: Principal, f: TicketFilter, page: PageParams
) -> tuple[list[TicketView], str | None]:
    """Page through the tickets the caller may see, narrowed by `f`."""
    stmt = _apply_filter(select(Ticket), p, f)
    rows, cursor = await paginate(db, stmt, Ticket.id, page)
    return await views(db, rows), cursor


async def messages(
    db: AsyncSession, p: Principal, ticket_id: uuid.UUID, page: PageParams
) -> tuple[list[Message], str | None]:
    """Page through a visible ticket's messages and notes."""
    ticket = await get_ticket(db, p, ticket_id)
    stmt = select(Message).where(
        Message.company_id == ticket.company_id, Message.ticket_id == ticket.id
    )
    return await paginate(db, stmt, Message.id, page)


async def assignments(
    db: AsyncSession, p: Principal, ticket_id: uuid.UUID, page: PageParams
) -> tuple[list[Assignment], str | None]:
    """Page through a visible ticket's assignment history (404 for a ticket not visible)."""
    ticket = await get_ticket(db, p, ticket_id)
    stmt = select(Assignment).where(
        Assignment.company_id == ticket.company_id, Assignment.ticket_id == ticket.id
    )
    return await paginate(db, stmt, Assignment.id, page)


async def status_history(
    db: AsyncSession, p: Principal, message_id: uuid.UUID, page: PageParams
) -> tuple[list[MessageStatusHistory], str | None]:
    """Page through a message's delivery statuses.

    The message is visible when its ticket is (`zapd.kernel.visibility`); one with no
    ticket follows the rule of a ticket with no department and no assignee.
    """
    message = await db.get(Message, message_id)
    if message is None:
        raise NotFound("message not found")
    ticket = await db.get(Ticket, message.ticket_id) if message.ticket_id else None
    visible = (
        can_see(p, ticket)
        if ticket is not None
        else can_see_ticket(p, message.company_id, None, None)
    )
    if not visible:
        raise NotFound("message not found")
    stmt = select(MessageStatusHistory).where(
        MessageStatusHistory.company_id == message.company_id,
        MessageStatusHistory.message_id == message.id,
    )
    return await paginate(db, stmt, MessageStatusHistory.id, page)
