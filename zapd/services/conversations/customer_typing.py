"""A customer's typing, shown live to the agents who can see their ticket.

Invariants:
- Ephemeral: a `TypingEvent` is never stored, replayed or given a seq; it goes out on
  the realtime stream as a `typing` event shaped like an agent's (`ticket_id`, `name`,
  `typing`) plus `customer: true` (and `recording` for a voice note), only to the
  subscribers allowed to see the ticket (`can_see_ticket`).
- It is about the client's open ticket on that session (at most one, a unique index
  says so); a chat zap does not know, or a client with no open ticket, shows nothing.
- One indexed read per event, no write: typing can never slow the inbound pipeline or
  fail it, and a database error only loses that indicator (logged at debug).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select

from shared.enums import TicketStatus
from shared.protocol.events import TYPING
from zapd.connectors.events import TypingEvent
from zapd.db.models import Chat, Client, Ticket
from zapd.kernel.visibility import can_see_ticket
from zapd.realtime.hub import Hub, HubItem

if TYPE_CHECKING:
    from zapd.kernel.context import Kernel

log = logging.getLogger("zapd.typing")


class CustomerTyping:
    """Turns engines' typing events into realtime `typing` events."""

    def __init__(self, kernel: Kernel, hub: Hub) -> None:
        self.kernel = kernel
        self.hub = hub
        self.shown = 0  # events that reached at least one subscriber

    async def receive(self, event: TypingEvent) -> int:
        """Show `event` to whoever may see the ticket; return to how many subscribers."""
        try:
            async with self.kernel.read() as db:
                row = (
                    await db.execute(
                        select(
                            Ticket.id,
                            Ticket.company_id,
                            Ticket.department_id,
                            Ticket.assignee_id,
                            Client.name,
                            Client.profile_name,
                            Client.phone,
                        )
                        .join(Chat, Chat.client_id == Ticket.client_id)
                        .join(Client, Client.id == Ticket.client_id)
                        .where(
                            Chat.session_id == event.session_id,
                            Chat.wa_chat_id == event.chat_jid,
                            Ticket.session_id == event.session_id,
                            Ticket.status != TicketStatus.CLOSED,
                        )
                        .limit(1)
                    )
                ).first()
        except Exception as exc:  # an indicator is not worth an error anywhere
            log.debug("typing on %s not shown: %s", event.chat_jid, type(exc).__name__)
            return 0
        if row is None:
            return 0
        ticket_id, company_id, department_id, assignee_id, name, profile, phone = row
        data: dict[str, object] = {
            "ticket_id": str(ticket_id),
            "name": name or profile or phone or "…",
            "typing": event.typing,
            "customer": True,
        }
        if event.recording:
            data["recording"] = True
        item = HubItem(company_id, None, TYPING, data, department_id=department_id)
        n = self.hub.send_ephemeral(
            item, lambda s: can_see_ticket(s.principal, company_id, department_id, assignee_id)
        )
        self.shown += 1 if n else 0
        return n
