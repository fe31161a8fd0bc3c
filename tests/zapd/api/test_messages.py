"""POST /api/v1/messages over real HTTP, on a connected sandbox session, both backends.

What the customer reads is checked on the simulated phone (the sandbox inbox): the
agent-name prefix, expanded quick replies, and that notes never get there.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from sqlalchemy import func, select

from shared.enums import MessageStatus, MessageType, TicketStatus
from tests.zapd.api.conftest import Live, Tenant
from tests.zapd.api.test_conversation import connected_session, say, wait_for
from tests.zapd.services.delivery.test_outbox_worker import seed_ticket
from zapd.connectors.sandbox import AckTiming
from zapd.db.models import AuditLog, Client, Company, Event, Media, Message, Outbox, Ticket

PHONE = "+5511987650001"


async def setup(live: Live, **ticket_kw: Any) -> tuple[Tenant, str, uuid.UUID]:
    """A tenant, a connected session, and a Laboratório ticket with PHONE."""
    live.daemon.sandbox.timing = AckTiming(sent=0.01, delivered=0.02, read=0.03, jitter=0.01)
    t = await live.tenant()
    sid = await connected_session(live, t)
    ticket_kw.setdefault("department_id", t.lab_id)
    ticket_id, _ = await seed_ticket(live, t.company_id, sid, PHONE, **ticket_kw)
    return t, sid, ticket_id


def inbox(live: Live, sid: str, phone: str = PHONE) -> list[str | None]:
    """Return what the customer's phone received, in order."""
    return [d.body for d in live.daemon.sandbox.inbox(uuid.UUID(sid), phone)]


async def received(live: Live, sid: str, body: str, phone: str = PHONE) -> None:
    """Wait until the customer got `body`."""

    async def got() -> bool:
        return body in inbox(live, sid, phone)

    await wait_for(got)


async def send(client: Any, ticket_id: uuid.UUID | str, body: str, **kw: Any) -> Any:
    return await client.post(
        "/api/v1/messages", json={"ticket_id": str(ticket_id), "body": body, **kw}
    )


async def counts(live: Live) -> tuple[int, int]:
    """Return (messages, outbox rows)."""
    async with live.kernel.read() as db:
        m = await db.scalar(select(func.count()).select_from(Message))
        o = await db.scalar(select(func.count()).select_from(Outbox))
        return int(m or 0), int(o or 0)


async def test_agent_reply_reaches_customer_with_prefix(live: Live) -> None:
    t, sid, ticket_id = await setup(live, unread_count=3)
    r = await send(t.agent, ticket_id, "Seu exame está pronto.")
    assert r.status_code == 201, r.text
    msg = r.json()
    seen = "*Agent - Laboratório*:\nSeu exame está pronto."
    assert msg["body"] == seen and msg["is_note"] is False
    assert msg["author_id"] == str(t.users["agent"]) and msg["ticket_id"] == str(ticket_id)
    assert msg["direction"] == 1 and msg["type"] == 0 and msg["status"] == MessageStatus.QUEUED
    await received(live, sid, seen)
    assert inbox(live, sid) == [seen]  # exactly what is stored, once

    async def sent() -> Any:
        r = await t.agent.get(f"/api/v1/tickets/{ticket_id}/messages")
        item = r.json()["items"][0]
        return item if item["wa_message_id"] else None

    item = await wait_for(sent)
    assert item["id"] == msg["id"] and item["status"] >= MessageStatus.SENT
    ticket = (await t.agent.get(f"/api/v1/tickets/{ticket_id}")).json()
    assert ticket["first_response_at"] is not None and ticket["unread_count"] == 0
    assert ticket["status"] == TicketStatus.PENDING and ticket["assignee"] is None
    first_response = ticket["first_response_at"]

    # The company switches the prefix off: the customer reads the bare text.
    r = await t.admin.patch(
        f"/api/v1/companies/{t.company_id}", json={"settings": {"agent_name_prefix": False}}
    )
    assert r.status_code == 200, r.text
    r = await send(t.agent, ticket_id, "Sem prefixo agora.")
    assert r.status_code == 201 and r.json()["body"] == "Sem prefixo agora."
    await received(live, sid, "Sem prefixo agora.")
    ticket = (await t.agent.get(f"/api/v1/tickets/{ticket_id}")).json()
    assert ticket["first_response_at"] == first_response  # the first one counts

    async with live.kernel.read() as db:
        rows = (
            await db.scalars(
                select(AuditLog)
                .where(AuditLog.company_id == t.company_id, AuditLog.action == "message.send")
                .order_by(AuditLog.id)
            )
        ).all()
        assert len(rows) == 2
        assert rows[0].user_id == t.users["agent"] and rows[0].entity_id == uuid.UUID(msg["id"])
        assert rows[0].data["body_length"] == len(seen) and rows[0].data["note"] is False
        assert "exame" not in json.dumps(rows[0].data)  # the text stays out of the audit log
        types = (
            await db.scalars(
                select(Event.type).where(Event.company_id == t.company_id).order_by(Event.seq)
            )
        ).all()
        assert "message.new" in types and "ticket.update" in types


async def test_quick_replies_expand_for_the_tickets_department(live: Live) -> None:
    t, sid, ticket_id = await setup(live)
    for body in (
        {"shortcut": "ola", "body": "Olá! Como posso ajudar?"},
        {"shortcut": "ola", "body": "Olá, aqui é o Laboratório!", "department_id": str(t.lab_id)},
        {"shortcut": "preco", "body": "Tabela de preços", "department_id": str(t.sales_id)},
        {"shortcut": "horario", "body": "Atendemos das 8h às 18h."},
    ):
        r = await t.admin.post("/api/v1/quick-replies", json=body)
        assert r.status_code == 201, r.text
    prefix = "*Agent - Laboratório*:\n"
    r = await send(t.agent, ticket_id, "/ola")
    assert r.status_code == 201 and r.json()["body"] == prefix + "Olá, aqui é o Laboratório!"
    r = await send(t.agent, ticket_id, "/HORARIO e aos sábados até 12h.")
    expanded = prefix + "Atendemos das 8h às 18h. e aos sábados até 12h."
    assert r.status_code == 201 and r.json()["body"] == expanded
    r = await send(t.agent, ticket_id, "/usr/local não é atalho")
    assert r.status_code == 201 and r.json()["body"] == prefix + "/usr/local não é atalho"
    before = await counts(live)
    for text in ("/preco", "/nada", "/nada com texto"):
        r = await send(t.agent, ticket_id, text)
        assert r.status_code == 422 and r.json()["error"] == "ERR_UNKNOWN_QUICK_REPLY", r.text
    assert await counts(live) == before
    await received(live, sid, expanded)
    assert inbox(live, sid)[:2] == [prefix + "Olá, aqui é o Laboratório!", expanded]


async def test_notes_are_shown_to_agents_and_never_sent(live: Live) -> None:
    t, sid, ticket_id = await setup(live, unread_count=2)
    r = await send(t.agent, ticket_id, "Cliente pediu retorno amanhã", note=True)
    assert r.status_code == 201, r.text
    note = r.json()
    assert note["is_note"] is True and note["body"] == "Cliente pediu retorno amanhã"
    async with live.kernel.read() as db:
        assert (
            await db.scalar(
                select(func.count())
                .select_from(Outbox)
                .where(Outbox.message_id == uuid.UUID(note["id"]))
            )
            == 0
        )
        event = await db.scalar(
            select(Event).where(Event.company_id == t.company_id, Event.type == "message.new")
        )
        assert event is not None and event.data["id"] == note["id"] and event.data["is_note"]
        assert event.department_id == t.lab_id
    ticket = (await t.agent.get(f"/api/v1/tickets/{ticket_id}")).json()
    assert ticket["first_response_at"] is None  # a note is not a response
    assert ticket["unread_count"] == 0
    items = (await t.supervisor.get(f"/api/v1/tickets/{ticket_id}/messages")).json()["items"]
    assert [i["id"] for i in items] == [note["id"]]
    # A real message after the note reaches the phone; the note never does.
    r = await send(t.agent, ticket_id, "Retorno amanhã, combinado.")
    assert r.status_code == 201
    await received(live, sid, r.json()["body"])
    await asyncio.sleep(0.3)
    assert inbox(live, sid) == [r.json()["body"]]


async def test_idempotency_key_answers_the_same_message_once(live: Live) -> None:
    t, sid, ticket_id = await setup(live)
    headers = {"Idempotency-Key": "tui-retry-0001"}
    first = await t.agent.post(
        "/api/v1/messages",
        json={"ticket_id": str(ticket_id), "body": "Só uma vez"},
        headers=headers,
    )
    assert first.status_code == 201, first.text
    again = await t.agent.post(
        "/api/v1/messages",
        json={"ticket_id": str(ticket_id), "body": "Só uma vez"},
        headers=headers,
    )
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    # Even from a colleague of the same company, after it was sent.
    await received(live, sid, first.json()["body"])
    third = await t.supervisor.post(
        "/api/v1/messages",
        json={"ticket_id": str(ticket_id), "body": "Só uma vez"},
        headers=headers,
    )
    assert third.status_code == 200 and third.json()["id"] == first.json()["id"]
    await asyncio.sleep(0.3)
    assert inbox(live, sid) == [first.json()["body"]]

    note_headers = {"Idempotency-Key": "note-0001"}
    n1 = await send_with(t.agent, ticket_id, "nota", note_headers, note=True)
    n2 = await send_with(t.agent, ticket_id, "nota", note_headers, note=True)
    assert (n1.status_code, n2.status_code) == (201, 200)
    assert n1.json()["id"] == n2.json()["id"]

    # Keys are per company: another company's same key is its own message.
    other = await live.tenant("Other")
    other_sid = await connected_session(live, other)
    other_ticket, _ = await seed_ticket(
        live, other.company_id, other_sid, PHONE, department_id=other.lab_id
    )
    r = await send_with(other.agent, other_ticket, "Só uma vez", headers)
    assert r.status_code == 201 and r.json()["id"] != first.json()["id"]

    r = await send_with(t.agent, ticket_id, "x", {"Idempotency-Key": "k" * 201})
    assert r.status_code == 422 and r.json()["error"] == "ERR_VALIDATION"
    async with live.kernel.read() as db:
        sends = await db.scalar(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.company_id == t.company_id, AuditLog.action == "message.send")
        )
        assert sends == 2  # the message and the note; replays write nothing
        boxes = await db.scalar(
            select(func.count()).select_from(Outbox).where(Outbox.company_id == t.company_id)
        )
        assert boxes == 1


async def send_with(
    client: Any, ticket_id: uuid.UUID, body: str, headers: dict[str, str], **kw: Any
) -> Any:
    return await client.post(
        "/api/v1/messages",
        json={"ticket_id": str(ticket_id), "body": body, **kw},
        headers=headers,
    )


async def test_refusals_change_nothing(live: Live) -> None:
    t, sid, ticket_id = await setup(live)
    closed, _ = await seed_ticket(
        live,
        t.company_id,
        sid,
        "+5511987650002",
        department_id=t.lab_id,
        status=TicketStatus.CLOSED,
    )
    other = await live.tenant("Other")
    before = await counts(live)

    r = await send(t.agent, closed, "Oi")
    assert r.status_code == 409 and r.json()["error"] == "ERR_TICKET_CLOSED"
    r = await send(t.agent, closed, "nota", note=True)
    assert r.status_code == 409 and r.json()["error"] == "ERR_TICKET_CLOSED"
    for client in (other.admin, other.supervisor, other.agent, t.clients["agent2"]):
        r = await send(client, ticket_id, "Oi")
        assert r.status_code == 404 and r.json()["error"] == "ERR_NOT_FOUND", r.text
    r = await send(t.agent, uuid.uuid4(), "Oi")
    assert r.status_code == 404

    tid = str(ticket_id)
    bad: list[dict[str, Any]] = [
        {},
        {"ticket_id": tid},
        {"ticket_id": tid, "body": ""},
        {"ticket_id": tid, "body": "   \n "},
        {"ticket_id": tid, "body": "x" * 4097},
        {"ticket_id": "not-a-uuid", "body": "x"},
        {"ticket_id": tid, "body": "x", "colour": "blue"},
        {"ticket_id": tid, "body": "x", "note": "maybe"},
        {"ticket_id": tid, "session_id": sid, "to": PHONE, "body": "x"},
        {"session_id": sid, "body": "x"},
        {"to": PHONE, "body": "x"},
        {"session_id": sid, "to": PHONE, "body": "x", "note": True},
        {"session_id": sid, "to": "não é telefone", "body": "x"},
        {"session_id": sid, "to": "+1 555", "body": "x"},
        {"ticket_id": tid, "body": ["x"]},
        {"ticket_id": tid, "body": "nul \u0000 byte"},
    ]
    for body in bad:
        r = await t.admin.post("/api/v1/messages", json=body)
        assert r.status_code == 422, (body, r.status_code, r.text)
        assert r.json()["error"].startswith("ERR_") and "Traceback" not in r.text
    # Ids naming no row of the company: 404, like any foreign id.
    for body in (
        {"ticket_id": tid, "body": "x", "quoted_message_id": str(uuid.uuid4())},
        {"ticket_id": tid, "media_id": str(uuid.uuid4())},
    ):
        r = await t.admin.post("/api/v1/messages", json=body)
        assert r.status_code == 404 and r.json()["error"] == "ERR_NOT_FOUND", (body, r.text)
    # A quick reply that expands past WhatsApp's limit.
    r = await t.admin.post("/api/v1/quick-replies", json={"shortcut": "longa", "body": "y" * 4000})
    assert r.status_code == 201
    r = await send(t.agent, ticket_id, "/longa " + "z" * 200)
    assert r.status_code == 422 and "4096" in r.json()["message"]
    assert await counts(live) == before
    assert inbox(live, sid) == []
    async with live.kernel.read() as db:
        assert (
            await db.scalar(
                select(func.count()).select_from(AuditLog).where(AuditLog.action == "message.send")
            )
            == 0
        )


async def test_supervisors_write_to_a_phone(live: Live) -> None:
    live.daemon.sandbox.timing = AckTiming(sent=0.01, delivered=0.02, read=0.03, jitter=0.01)
    t = await live.tenant()
    sid = await connected_session(live, t)
    new_phone = "+55 11 97777-0001"
    r = await t.admin.post(
        "/api/v1/messages", json={"session_id": sid, "to": new_phone, "body": "Novidade!"}
    )
    assert r.status_code == 201, r.text
    msg = r.json()
    async with live.kernel.read() as db:
        company = await db.get(Company, t.company_id)
        assert company is not None
        client = await db.scalar(select(Client).where(Client.company_id == t.company_id))
        assert client is not None and client.phone == "+5511977770001"
    assert msg["ticket_id"] is None and msg["body"] == f"*Admin - {company.name}*:\nNovidade!"
    await received(live, sid, msg["body"], "+5511977770001")

    r = await t.agent.post(
        "/api/v1/messages", json={"session_id": sid, "to": new_phone, "body": "x"}
    )
    assert r.status_code == 403 and r.json()["error"] == "ERR_FORBIDDEN"
    other = await live.tenant("Other")
    r = await other.admin.post(
        "/api/v1/messages", json={"session_id": sid, "to": new_phone, "body": "x"}
    )
    assert r.status_code == 404

    # A client with an open ticket on the session: the message joins that ticket.
    await say(t, sid, "+5511966660001", "Oi, bom dia")
    async with live.kernel.read() as db:
        ticket = await db.scalar(select(Ticket).where(Ticket.company_id == t.company_id))
        assert ticket is not None
    r = await t.supervisor.post(
        "/api/v1/messages",
        json={"session_id": sid, "to": "+55 (11) 96666-0001", "body": "Já te atendo"},
    )
    assert r.status_code == 201 and r.json()["ticket_id"] == str(ticket.id)
    async with live.kernel.read() as db:
        assert await db.scalar(select(func.count()).select_from(Client)) == 2
        chats = await db.scalar(
            select(func.count()).select_from(Message).where(Message.ticket_id == ticket.id)
        )
        assert chats is not None and chats >= 3  # the customer's, the menu, the supervisor's
        audit = await db.scalar(
            select(AuditLog).where(AuditLog.action == "message.send").order_by(AuditLog.id)
        )
        assert audit is not None and audit.data["to"] == "+5511977770001"


async def test_media_message_goes_out_with_its_caption(live: Live) -> None:
    t, sid, ticket_id = await setup(live)
    other = await live.tenant("Other")
    ids = {}
    for company_id in (t.company_id, other.company_id):
        async with live.kernel.tx() as db:
            row = Media(
                company_id=company_id,
                storage_key="ab/" + "ab" * 32,
                mime="image/jpeg",
                size=1234,
                sha256="ab" * 32,
                filename="resultado.jpg",
                uploaded_by_id=t.users["agent"] if company_id == t.company_id else None,
            )
            db.add(row)
            await db.flush()
            ids[company_id] = row.id
        # A file the agent may not read (another department's, uploaded by someone else)
        # cannot be attached either: attaching it must not widen who can see it.
        async with live.kernel.tx() as db:
            hidden = Media(
                company_id=t.company_id,
                storage_key="cd/" + "cd" * 32,
                mime="application/pdf",
                size=10,
                sha256="cd" * 32,
                filename="contrato.pdf",
                uploaded_by_id=t.users["admin"],
            )
            db.add(hidden)
            await db.flush()
            hidden_id = hidden.id
    r = await t.agent.post(
        "/api/v1/messages", json={"ticket_id": str(ticket_id), "media_id": str(hidden_id)}
    )
    assert r.status_code == 404, r.text
    r = await t.agent.post(
        "/api/v1/messages", json={"ticket_id": str(ticket_id), "media_id": str(ids[t.company_id])}
    )
    assert r.status_code == 201, r.text
    assert r.json()["type"] == MessageType.IMAGE and r.json()["body"] is None
    assert r.json()["media_id"] == str(ids[t.company_id])
    r = await t.agent.post(
        "/api/v1/messages",
        json={
            "ticket_id": str(ticket_id),
            "media_id": str(ids[t.company_id]),
            "body": "Segue o resultado",
        },
    )
    assert r.status_code == 201 and r.json()["body"].endswith("\nSegue o resultado")
    await received(live, sid, r.json()["body"])
    got = live.daemon.sandbox.inbox(uuid.UUID(sid), PHONE)
    assert [(d.type, d.body) for d in got] == [
        (MessageType.IMAGE, None),
        (MessageType.IMAGE, r.json()["body"]),
    ]
    r = await t.agent.post(
        "/api/v1/messages",
        json={"ticket_id": str(ticket_id), "media_id": str(ids[other.company_id])},
    )
    assert r.status_code == 404 and "media_id" in r.json()["message"]
