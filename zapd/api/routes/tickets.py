"""/api/v1/tickets: service episodes (read side).

Agents see the tickets of their departments and the ones assigned to them; any other
ticket answers 404. Supervisors and admins see every ticket of their company.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from shared.enums import TicketStatus
from shared.protocol.common import Page
from shared.protocol.tickets import MessageOut, TicketOut
from zapd.api.deps import Auth, PageDep, Res
from zapd.services import tickets

router = APIRouter(prefix="/api/v1/tickets", tags=["tickets"])


@router.get("", response_model=Page[TicketOut])
async def list_tickets(
    principal: Auth,
    res: Res,
    page: PageDep,
    status: Annotated[list[TicketStatus] | None, Query(max_length=3)] = None,
    department_id: Annotated[uuid.UUID | None, Query()] = None,
    assignee_id: Annotated[
        str | None, Query(max_length=36, description="a user id, 'me' or 'none'")
    ] = None,
    client_id: Annotated[uuid.UUID | None, Query()] = None,
    session_id: Annotated[uuid.UUID | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=100, description="client name or phone")] = None,
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
    )
    async with res.read() as db:
        rows, cursor = await tickets.list_(db, principal, f, page)
        return Page[TicketOut](
            items=[TicketOut.model_validate(r) for r in rows], next_cursor=cursor
        )


@router.get("/{ticket_id}", response_model=TicketOut)
async def get_ticket(ticket_id: uuid.UUID, principal: Auth, res: Res) -> TicketOut:
    """Show one ticket with its client, department and assignee."""
    async with res.read() as db:
        return TicketOut.model_validate(await tickets.get(db, principal, ticket_id))


@router.get("/{ticket_id}/messages", response_model=Page[MessageOut])
async def ticket_messages(
    ticket_id: uuid.UUID, principal: Auth, res: Res, page: PageDep
) -> Page[MessageOut]:
    """Page through a ticket's messages and internal notes (newest first by default)."""
    async with res.read() as db:
        rows, cursor = await tickets.messages(db, principal, ticket_id, page)
        return Page[MessageOut](
            items=[MessageOut.model_validate(r) for r in rows], next_cursor=cursor
        )
