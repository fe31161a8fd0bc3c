"""/api/v1/tickets: service episodes — listings and their life (accept ... close, reopen).

Agents see the tickets of their departments and the ones assigned to them; any other
ticket answers 404. Supervisors and admins see every ticket of their company.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import TicketStatus
from shared.protocol.common import Page
from shared.protocol.tickets import (
    AssignmentOut,
    MessageOut,
    ServiceWindow,
    TicketAssign,
    TicketClose,
    TicketOut,
    TicketTransfer,
    TicketUpdate,
)
from zapd.api.deps import ActorDep, Auth, KernelDep, PageDep
from zapd.db.models import Ticket
from zapd.services.conversations import cloud
from zapd.services.tickets import lifecycle
from zapd.services.tickets import queries as tickets

router = APIRouter(prefix="/api/v1/tickets", tags=["tickets"])


@router.get("", response_model=Page[TicketOut])
async def list_tickets(
    principal: Auth,
    kernel: KernelDep,
    page: PageDep,
    status: Annotated[list[TicketStatus] | None, Query(max_length=3)] = None,
    department_id: Annotated[uuid.UUID | None, Query()] = None,
    assignee_id: Annotated[
        str | None, Query(max_length=36, description="a user id, 'me' or 'none'")
    ] = None,
    client_id: Annotated[uuid.UUID | None, Query()] = None,
    session_id: Annotated[uuid.UUID | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=100, description="client name or phone")] = None,
    number: Annotated[
        int | None, Query(ge=1, le=2**62, description="the per-company ticket number (#123)")
    ] = None,
    company_id: Annotated[uuid.UUID | None, Query(description="global admins only")] = None,
) -> Page[TicketOut]:
    """List the tickets the caller may see, newest first by default."""
    f = tickets.TicketFilter(
        company_id=company_id,
        statuses=tuple(status or ()),
        department_id=department_id,
        assignee=assignee_id,
        client_id=client_id,
        session_id=session_id,
        q=q,
        number=number,
    )
    async with kernel.read() as db:
        rows, cursor = await tickets.list_(db, principal, f, page)
        return Page[TicketOut](
            items=[TicketOut.model_validate(r) for r in rows], next_cursor=cursor
        )


@router.get("/{ticket_id}", response_model=TicketOut)
async def get_ticket(ticket_id: uuid.UUID, principal: Auth, kernel: KernelDep) -> TicketOut:
    """Show one ticket with its client, department and assignee (and Cloud API window)."""
    async with kernel.read() as db:
        out = TicketOut.model_validate(await tickets.get(db, principal, ticket_id))
        state = await cloud.ticket_window(db, out.session_id, out.client.id)
    if state is None:
        return out
    return out.model_copy(
        update={
            "service_window": ServiceWindow(
                open=state.open,
                last_inbound_at=state.last_inbound_at,
                expires_at=state.expires_at,
            )
        }
    )


@router.get("/{ticket_id}/messages", response_model=Page[MessageOut])
async def ticket_messages(
    ticket_id: uuid.UUID, principal: Auth, kernel: KernelDep, page: PageDep
) -> Page[MessageOut]:
    """Page through a ticket's messages and internal notes (newest first by default)."""
    async with kernel.read() as db:
        rows, cursor = await tickets.messages(db, principal, ticket_id, page)
        return Page[MessageOut](
            items=[MessageOut.model_validate(r) for r in rows], next_cursor=cursor
        )


@router.get("/{ticket_id}/assignments", response_model=Page[AssignmentOut])
async def ticket_assignments(
    ticket_id: uuid.UUID, principal: Auth, kernel: KernelDep, page: PageDep
) -> Page[AssignmentOut]:
    """Page through who held the ticket and when (its assignment history)."""
    async with kernel.read() as db:
        rows, cursor = await tickets.assignments(db, principal, ticket_id, page)
        return Page[AssignmentOut](
            items=[AssignmentOut.model_validate(r) for r in rows], next_cursor=cursor
        )


# --------------------------------------------------------------------------- write side


async def _out(db: AsyncSession, ticket: Ticket) -> TicketOut:
    return TicketOut.model_validate((await tickets.views(db, [ticket]))[0])


@router.post("/{ticket_id}/accept", response_model=TicketOut)
async def accept_ticket(ticket_id: uuid.UUID, actor: ActorDep, kernel: KernelDep) -> TicketOut:
    """Take a waiting ticket: an agent from their departments' queues, SUPERVISOR+ any.

    409 ERR_AT_CAPACITY when the taker already holds their maximum of open tickets,
    409 ERR_TICKET_TAKEN when someone else holds it (of two racing takers, one wins).
    """
    async with kernel.tx() as db:
        return await _out(db, await lifecycle.accept(db, actor, ticket_id))


@router.post("/{ticket_id}/assign", response_model=TicketOut)
async def assign_ticket(
    ticket_id: uuid.UUID, body: TicketAssign, actor: ActorDep, kernel: KernelDep
) -> TicketOut:
    """Give a ticket to an active member of the company (SUPERVISOR+)."""
    async with kernel.tx() as db:
        return await _out(db, await lifecycle.assign(db, actor, ticket_id, body))


@router.post("/{ticket_id}/transfer", response_model=TicketOut)
async def transfer_ticket(
    ticket_id: uuid.UUID, body: TicketTransfer, actor: ActorDep, kernel: KernelDep
) -> TicketOut:
    """Move a ticket to another department and/or person (its assignee or SUPERVISOR+)."""
    async with kernel.tx() as db:
        return await _out(db, await lifecycle.transfer(db, actor, ticket_id, body))


@router.post("/{ticket_id}/close", response_model=TicketOut)
async def close_ticket(
    ticket_id: uuid.UUID, actor: ActorDep, kernel: KernelDep, body: TicketClose | None = None
) -> TicketOut:
    """Close a ticket (its assignee or SUPERVISOR+), saying goodbye unless told not to."""
    async with kernel.tx() as db:
        return await _out(db, await lifecycle.close(db, actor, ticket_id, body or TicketClose()))


@router.post("/{ticket_id}/reopen", response_model=TicketOut)
async def reopen_ticket(ticket_id: uuid.UUID, actor: ActorDep, kernel: KernelDep) -> TicketOut:
    """Reopen a closed ticket (SUPERVISOR+ or its last assignee)."""
    async with kernel.tx() as db:
        return await _out(db, await lifecycle.reopen(db, actor, ticket_id))


@router.post("/{ticket_id}/read", response_model=TicketOut)
async def read_ticket(ticket_id: uuid.UUID, actor: ActorDep, kernel: KernelDep) -> TicketOut:
    """Mark a ticket and its chat as read."""
    async with kernel.tx() as db:
        return await _out(db, await lifecycle.mark_read(db, actor, ticket_id))


@router.patch("/{ticket_id}", response_model=TicketOut)
async def update_ticket(
    ticket_id: uuid.UUID, body: TicketUpdate, actor: ActorDep, kernel: KernelDep
) -> TicketOut:
    """Change a ticket's priority (SUPERVISOR+) and/or replace its tags."""
    async with kernel.tx() as db:
        return await _out(db, await lifecycle.update_ticket(db, actor, ticket_id, body))
