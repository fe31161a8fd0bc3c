"""People who leave: an erased client's tickets close and nothing more goes to them; a
disabled user's tickets return to their queues, so new messages wait there."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from shared.enums import OutboxState, TicketStatus
from tests.zapd.api.conftest import Live, Tenant
from tests.zapd.api.test_conversation import connected_session, say
from zapd.db.models import Assignment, AuditLog, Client, Event, Message, Outbox, Ticket
from zapd.services.compliance import lgpd

PHONE = "+5511955550001"


async def routed_and_taken(live: Live, t: Tenant) -> tuple[str, str]:
    """A customer routed to Laboratório, accepted by the Lab agent; return (session, ticket)."""
    sid = await connected_session(live, t)
    await say(t, sid, PHONE, "Oi", name="Lúcia")
    await say(t, sid, PHONE, "1")
    items = (await t.supervisor.get("/api/v1/tickets")).json()["items"]
    ticket_id = items[0]["id"]
    r = await t.agent.post(f"/api/v1/tickets/{ticket_id}/accept")
    assert r.status_code == 200, r.text
    return sid, ticket_id


async def system_lines(live: Live, ticket_id: str) -> list[Message]:
    async with live.kernel.read() as db:
        rows = (
            await db.scalars(
                select(Message).where(
                    Message.ticket_id == uuid.UUID(ticket_id), Message.is_note.is_(True)
                )
            )
        ).all()
    return [m for m in rows if (m.extra or {}).get("kind") == "system"]


async def test_erasing_a_client_closes_its_tickets_and_refuses_sends(live: Live) -> None:
    t = await live.tenant()
    sid, ticket_id = await routed_and_taken(live, t)
    # A reply that cannot go out yet (the phone is offline): it waits in the outbox.
    live.daemon.sandbox.fail_next_sends(uuid.UUID(sid), 50, transient=True)
    r = await t.agent.post("/api/v1/messages", json={"ticket_id": ticket_id, "body": "Oi Lúcia"})
    assert r.status_code == 201, r.text
    waiting_id = uuid.UUID(r.json()["id"])

    async with live.kernel.tx() as db:
        client = await db.scalar(select(Client).where(Client.phone == PHONE))
        assert client is not None
        erased = await lgpd.erase(db, client)
    assert erased.counts["tickets_closed"] == 1

    async with live.kernel.read() as db:
        ticket = await db.get(Ticket, uuid.UUID(ticket_id))
        assert ticket is not None and ticket.status is TicketStatus.CLOSED
        box = await db.scalar(select(Outbox).where(Outbox.message_id == waiting_id))
        assert box is not None and box.state is OutboxState.CANCELLED
        open_assignments = (
            await db.scalars(
                select(Assignment).where(
                    Assignment.ticket_id == ticket.id, Assignment.ended_at.is_(None)
                )
            )
        ).all()
        assert open_assignments == []
    lines = await system_lines(live, ticket_id)
    assert len(lines) == 1 and "LGPD" in (lines[0].body or "")

    # The agent cannot write to them any more, nor bring the ticket back.
    r = await t.agent.post("/api/v1/messages", json={"ticket_id": ticket_id, "body": "Oi?"})
    assert r.status_code == 409 and r.json()["error"] == "ERR_CLIENT_ERASED", r.text
    assert "erased" in r.json()["message"]
    r = await t.supervisor.post(f"/api/v1/tickets/{ticket_id}/reopen")
    assert r.status_code == 409 and r.json()["error"] == "ERR_CLIENT_ERASED", r.text
    # Its history is closed for notes too.
    r = await t.agent.post(
        "/api/v1/messages", json={"ticket_id": ticket_id, "body": "n", "note": True}
    )
    assert r.status_code == 409 and r.json()["error"] == "ERR_TICKET_CLOSED"


async def _ticket(t: Tenant, ticket_id: str) -> dict[str, Any]:
    r = await t.supervisor.get(f"/api/v1/tickets/{ticket_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_disabling_a_user_returns_their_tickets_to_the_queue(live: Live) -> None:
    t = await live.tenant()
    sid, ticket_id = await routed_and_taken(live, t)
    assert (await _ticket(t, ticket_id))["assignee"]["id"] == str(t.users["agent"])

    r = await t.admin.post(f"/api/v1/users/{t.users['agent']}/disable")
    assert r.status_code == 200, r.text
    ticket = await _ticket(t, ticket_id)
    assert ticket["status"] == TicketStatus.PENDING and ticket["assignee"] is None
    assert ticket["department"]["id"] == str(t.lab_id)
    lines = await system_lines(live, ticket_id)
    assert len(lines) == 1 and "Agent" in (lines[0].body or "")
    async with live.kernel.read() as db:
        ended = (
            await db.scalars(
                select(Assignment.ended_at).where(Assignment.ticket_id == uuid.UUID(ticket_id))
            )
        ).all()
        assert ended and all(e is not None for e in ended)
        released = (await db.scalars(select(Event).where(Event.type == "ticket.update"))).all()
        assert any(
            e.data.get("action") == "release" and e.data["id"] == ticket_id for e in released
        )
        assert await db.scalar(select(AuditLog.id).where(AuditLog.action == "ticket.release"))

    # The customer writes again: the message waits in the queue, with no one holding it.
    await say(t, sid, PHONE, "alguém aí?")
    ticket = await _ticket(t, ticket_id)
    assert ticket["status"] == TicketStatus.PENDING and ticket["assignee"] is None
    assert ticket["unread_count"] >= 1


async def test_disabling_through_patch_releases_too(live: Live) -> None:
    t = await live.tenant()
    _sid, ticket_id = await routed_and_taken(live, t)
    r = await t.admin.patch(f"/api/v1/users/{t.users['agent']}", json={"active": False})
    assert r.status_code == 200, r.text
    ticket = await _ticket(t, ticket_id)
    assert ticket["status"] == TicketStatus.PENDING and ticket["assignee"] is None
