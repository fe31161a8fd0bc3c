"""zapd client endpoints: tickets, listing and reading them, and their life (accept, assign,
transfer, close...).

Part of `ZapClient` (shared.client); the wire models are imported when a method first
runs (shared.client.lazy).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Literal

from shared.client.core import API, ClientCore, Order
from shared.client.lazy import protocol
from shared.enums import TicketStatus

if TYPE_CHECKING:
    from shared.protocol import common, tickets
else:
    tickets = protocol("tickets")


class TicketEndpoints(ClientCore):
    """Tickets: listing, reading and their life (accept, assign, transfer, close...)."""

    # ----------------------------------------------------------------- tickets

    async def list_tickets(
        self,
        *,
        status: TicketStatus | list[TicketStatus] | None = None,
        department_id: uuid.UUID | None = None,
        assignee_id: uuid.UUID | Literal["me", "none"] | None = None,
        client_id: uuid.UUID | None = None,
        session_id: uuid.UUID | None = None,
        q: str | None = None,
        number: int | None = None,
        company_id: uuid.UUID | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        order: Order | None = None,
    ) -> common.Page[tickets.TicketOut]:
        """List one page of the tickets the caller may see (newest first by default)."""
        return await self._get_page(
            tickets.TicketOut,
            f"{API}/tickets",
            status=[status] if isinstance(status, TicketStatus) else status,
            department_id=department_id,
            assignee_id=assignee_id,
            client_id=client_id,
            session_id=session_id,
            q=q,
            number=number,
            company_id=company_id,
            cursor=cursor,
            limit=limit,
            order=order,
        )

    async def get_ticket(self, ticket_id: uuid.UUID) -> tickets.TicketOut:
        """Show one ticket with its client, department and assignee."""
        return await self._get(tickets.TicketOut, f"{API}/tickets/{ticket_id}")

    async def list_ticket_messages(
        self,
        ticket_id: uuid.UUID,
        *,
        cursor: str | None = None,
        limit: int | None = None,
        order: Order | None = None,
    ) -> common.Page[tickets.MessageOut]:
        """List one page of a ticket's messages and internal notes (newest first by default)."""
        return await self._get_page(
            tickets.MessageOut,
            f"{API}/tickets/{ticket_id}/messages",
            cursor=cursor,
            limit=limit,
            order=order,
        )

    async def list_ticket_assignments(
        self,
        ticket_id: uuid.UUID,
        *,
        cursor: str | None = None,
        limit: int | None = None,
        order: Order | None = None,
    ) -> common.Page[tickets.AssignmentOut]:
        """List one page of a ticket's assignment history (who held it, and when)."""
        return await self._get_page(
            tickets.AssignmentOut,
            f"{API}/tickets/{ticket_id}/assignments",
            cursor=cursor,
            limit=limit,
            order=order,
        )

    async def list_message_status_history(
        self,
        message_id: uuid.UUID,
        *,
        cursor: str | None = None,
        limit: int | None = None,
        order: Order | None = None,
    ) -> common.Page[tickets.StatusChangeOut]:
        """List one page of the delivery statuses a message reached."""
        return await self._get_page(
            tickets.StatusChangeOut,
            f"{API}/messages/{message_id}/status-history",
            cursor=cursor,
            limit=limit,
            order=order,
        )

    # ----------------------------------------------------------------- ticket life

    async def accept_ticket(self, ticket_id: uuid.UUID) -> tickets.TicketOut:
        """Take a waiting ticket (Conflict: at capacity, or someone else took it)."""
        return await self._send(tickets.TicketOut, "POST", f"{API}/tickets/{ticket_id}/accept")

    async def assign_ticket(
        self, ticket_id: uuid.UUID, body: tickets.TicketAssign
    ) -> tickets.TicketOut:
        """Give a ticket to a member of the company (SUPERVISOR+)."""
        return await self._send(
            tickets.TicketOut, "POST", f"{API}/tickets/{ticket_id}/assign", body
        )

    async def transfer_ticket(
        self, ticket_id: uuid.UUID, body: tickets.TicketTransfer
    ) -> tickets.TicketOut:
        """Move a ticket to another department and/or person."""
        return await self._send(
            tickets.TicketOut, "POST", f"{API}/tickets/{ticket_id}/transfer", body
        )

    async def close_ticket(
        self, ticket_id: uuid.UUID, body: tickets.TicketClose | None = None
    ) -> tickets.TicketOut:
        """Close a ticket (its assignee or SUPERVISOR+), with the farewell unless told not to."""
        return await self._send(tickets.TicketOut, "POST", f"{API}/tickets/{ticket_id}/close", body)

    async def reopen_ticket(self, ticket_id: uuid.UUID) -> tickets.TicketOut:
        """Reopen a closed ticket (SUPERVISOR+ or its last assignee)."""
        return await self._send(tickets.TicketOut, "POST", f"{API}/tickets/{ticket_id}/reopen")

    async def mark_ticket_read(self, ticket_id: uuid.UUID) -> tickets.TicketOut:
        """Mark a ticket and its chat as read."""
        return await self._send(tickets.TicketOut, "POST", f"{API}/tickets/{ticket_id}/read")

    async def update_ticket(
        self, ticket_id: uuid.UUID, body: tickets.TicketUpdate
    ) -> tickets.TicketOut:
        """Change a ticket's priority (SUPERVISOR+) and/or replace its tags."""
        return await self._send(tickets.TicketOut, "PATCH", f"{API}/tickets/{ticket_id}", body)
