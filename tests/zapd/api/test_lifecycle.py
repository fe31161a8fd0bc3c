"""Ticket lifecycle over real HTTP: accept, assign, transfer, close, reopen, read, update.

Roles, tenancy, wrong-state and bad-body answers, capacity, racing takers, the
assignment history, audit rows, realtime events and the texts queued for customers.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, update

from shared.enums import FlowState, MessageDirection, Priority, Role, TicketStatus
from tests.zapd.api import seed
from tests.zapd.api.conftest import Live, Tenant
from tests.zapd.api.test_conversation import connected_session, say
from zapd.db.models import (
    Assignment,
    AuditLog,
    Category,
    Chat,
    Event,
    Message,
    Tag,
    Ticket,
    TicketTag,
    User,
)
from zapd.db.types import utcnow

_phones = itertools.count(10_000)


def new_phone() -> str:
    return f"+55119{next(_phones):08d}"


async def make_ticket(
    live: Live,
    t: Tenant,
    *,
    department_id: uuid.UUID | None = None,
    status: TicketStatus = TicketStatus.PENDING,
    assignee_id: uuid.UUID | None = None,
    **kw: Any,
) -> uuid.UUID:
    """Seed a ticket (with its own session, client and chat) straight in the database."""
    sid = await seed.session(live, t.company_id)
    cid = await seed.client(live, t.company_id, new_phone(), "Cliente")
    return await seed.ticket(
        live,
        t.company_id,
        sid,
        cid,
        department_id=department_id or t.lab_id,
        status=status,
        assignee_id=assignee_id,
        flow_state=FlowState.ROUTED,
        **kw,
    )


async def ticket_row(live: Live, ticket_id: Any) -> Ticket:
    async with live.kernel.read() as db:
        row = await db.get(Ticket, uuid.UUID(str(ticket_id)))
        assert row is not None
        return row


async def assignments(live: Live, ticket_id: Any) -> list[Assignment]:
    async with live.kernel.read() as db:
        return list(
            (
                await db.scalars(
                    select(Assignment)
                    .where(Assignment.ticket_id == uuid.UUID(str(ticket_id)))
                    .order_by(Assignment.started_at, Assignment.id)
                )
            ).all()
        )


async def audits(live: Live, ticket_id: Any) -> list[AuditLog]:
    async with live.kernel.read() as db:
        return list(
            (
                await db.scalars(
                    select(AuditLog)
                    .where(AuditLog.entity_id == uuid.UUID(str(ticket_id)))
                    .order_by(AuditLog.id)
                )
            ).all()
        )


async def ticket_events(live: Live, ticket_id: Any, action: str | None = None) -> list[Event]:
    async with live.kernel.read() as db:
        rows = (
            await db.scalars(select(Event).where(Event.type == "ticket.update").order_by(Event.seq))
        ).all()
    return [
        e
        for e in rows
        if e.data.get("id") == str(ticket_id) and (action is None or e.data.get("action") == action)
    ]


async def outbound(live: Live, ticket_id: Any) -> list[Message]:
    async with live.kernel.read() as db:
        return list(
            (
                await db.scalars(
                    select(Message)
                    .where(
                        Message.ticket_id == uuid.UUID(str(ticket_id)),
                        Message.direction == MessageDirection.OUTBOUND,
                    )
                    .order_by(Message.id)
                )
            ).all()
        )


def err(r: httpx.Response, status: int, code: str | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"].startswith("ERR_") and body["message"] and "Traceback" not in r.text
    if code is not None:
        assert body["error"] == code, r.text


async def set_user(live: Live, user_id: uuid.UUID, **values: Any) -> None:
    async with live.kernel.tx() as db:
        await db.execute(update(User).where(User.id == user_id).values(**values))


async def routed_ticket(live: Live, t: Tenant, sid: str, phone: str, choice: str) -> uuid.UUID:
    """Have a customer write and pick a department from the menu; return the ticket id."""
    await say(t, sid, phone, "Oi, bom dia", name="Maria Souza")
    await say(t, sid, phone, choice)
    async with live.kernel.read() as db:
        row = await db.scalar(
            select(Ticket)
            .where(Ticket.company_id == t.company_id, Ticket.status != TicketStatus.CLOSED)
            .order_by(Ticket.id.desc())
            .limit(1)
        )
        assert row is not None and row.flow_state is FlowState.ROUTED
        return row.id


# --------------------------------------------------------------------------- accept


async def test_accept_takes_a_waiting_ticket(live: Live) -> None:
    t = await live.tenant()
    tid = await make_ticket(live, t, timeout_at=utcnow() + timedelta(minutes=5))
    # Comercial's agent does not see a Laboratório ticket: 404, not 403.
    err(await t.clients["agent2"].post(f"/api/v1/tickets/{tid}/accept"), 404, "ERR_NOT_FOUND")
    r = await t.agent.post(f"/api/v1/tickets/{tid}/accept")
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["status"] == TicketStatus.OPEN and got["flow_state"] == FlowState.DONE
    assert got["assignee"] == {"id": str(t.users["agent"]), "name": "Agent"}
    assert got["timeout_at"] is None and got["department"]["id"] == str(t.lab_id)
    rows = await assignments(live, tid)
    assert [(a.user_id, a.reason, a.ended_at) for a in rows] == [(t.users["agent"], "accept", None)]
    assert rows[0].department_id == t.lab_id and rows[0].assigned_by_id == t.users["agent"]
    [audit] = await audits(live, tid)
    assert audit.action == "ticket.accept" and audit.user_id == t.users["agent"]
    assert audit.data["changes"]["status"] == [0, 1]
    assert audit.data["changes"]["assignee_id"] == [None, str(t.users["agent"])]
    [ev] = await ticket_events(live, tid, "accept")
    assert ev.department_id == t.lab_id and ev.user_id == t.users["agent"]
    assert ev.data["status"] == 1 and ev.data["assignee_id"] == str(t.users["agent"])
    # Accepting one's own ticket again changes nothing; anyone else is refused.
    r = await t.agent.post(f"/api/v1/tickets/{tid}/accept")
    assert r.status_code == 200 and len(await assignments(live, tid)) == 1
    err(await t.supervisor.post(f"/api/v1/tickets/{tid}/accept"), 409, "ERR_TICKET_TAKEN")
    assert len(await audits(live, tid)) == 1


async def test_accept_roles_and_states(live: Live) -> None:
    t = await live.tenant()
    # A supervisor takes any queue's ticket, an admin too.
    sales = await make_ticket(live, t, department_id=t.sales_id)
    r = await t.supervisor.post(f"/api/v1/tickets/{sales}/accept")
    assert r.status_code == 200 and r.json()["assignee"]["id"] == str(t.users["supervisor"])
    other = await make_ticket(live, t, department_id=t.sales_id)
    assert (await t.admin.post(f"/api/v1/tickets/{other}/accept")).status_code == 200
    # Global admins manage companies; they do not serve customers.
    third = await make_ticket(live, t)
    assert live.root is not None
    err(await live.root.post(f"/api/v1/tickets/{third}/accept"), 403, "ERR_FORBIDDEN")
    # An API token has no person to assign.
    r = await t.admin.post("/api/v1/api-tokens", json={"name": "bot", "role": 0})
    bot = live.client(r.json()["token"])
    err(await bot.post(f"/api/v1/tickets/{third}/accept"), 403)
    closed = await make_ticket(live, t, status=TicketStatus.CLOSED, closed_at=utcnow())
    err(await t.agent.post(f"/api/v1/tickets/{closed}/accept"), 409, "ERR_TICKET_CLOSED")
    err(await t.agent.post(f"/api/v1/tickets/{uuid.uuid4()}/accept"), 404, "ERR_NOT_FOUND")
    err(await t.agent.post("/api/v1/tickets/not-a-uuid/accept"), 422, "ERR_VALIDATION")
    assert (await ticket_row(live, third)).status is TicketStatus.PENDING


async def test_accept_respects_capacity(live: Live) -> None:
    t = await live.tenant()
    await set_user(live, t.users["agent"], max_concurrent_tickets=1)
    first, second = await make_ticket(live, t), await make_ticket(live, t)
    assert (await t.agent.post(f"/api/v1/tickets/{first}/accept")).status_code == 200
    err(await t.agent.post(f"/api/v1/tickets/{second}/accept"), 409, "ERR_AT_CAPACITY")
    row = await ticket_row(live, second)
    assert row.status is TicketStatus.PENDING and row.assignee_id is None
    assert await assignments(live, second) == [] and await audits(live, second) == []
    # Closing the first frees the slot.
    assert (await t.agent.post(f"/api/v1/tickets/{first}/close", json={})).status_code == 200
    assert (await t.agent.post(f"/api/v1/tickets/{second}/accept")).status_code == 200


async def test_concurrent_accepts_have_one_winner(live: Live) -> None:
    t = await live.tenant()
    takers = [t.agent, t.supervisor, t.admin]
    for i in range(5):
        email = f"lab{i}.{t.company_id.hex[:8]}@acme.com.br"
        await live.add_user(t.company_id, email, Role.AGENT, f"Lab {i}", [t.lab_id])
        takers.append((await live.login(email))[0])
    for _round in range(3):
        tid = await make_ticket(live, t)
        answers = await asyncio.gather(*[c.post(f"/api/v1/tickets/{tid}/accept") for c in takers])
        codes = sorted(r.status_code for r in answers)
        assert codes == [200] + [409] * (len(takers) - 1), [r.text for r in answers]
        assert all(r.json()["error"] == "ERR_TICKET_TAKEN" for r in answers if r.status_code == 409)
        [winner] = [r.json() for r in answers if r.status_code == 200]
        rows = await assignments(live, tid)
        assert len(rows) == 1 and str(rows[0].user_id) == winner["assignee"]["id"]
        assert str((await ticket_row(live, tid)).assignee_id) == winner["assignee"]["id"]
        assert len(await audits(live, tid)) == 1
        assert len(await ticket_events(live, tid, "accept")) == 1


async def test_concurrent_accepts_by_one_agent_stop_at_capacity(live: Live) -> None:
    t = await live.tenant()
    await set_user(live, t.users["agent"], max_concurrent_tickets=2)
    ids = [await make_ticket(live, t) for _ in range(6)]
    answers = await asyncio.gather(*[t.agent.post(f"/api/v1/tickets/{i}/accept") for i in ids])
    assert sorted(r.status_code for r in answers) == [200, 200, 409, 409, 409, 409]
    assert {r.json()["error"] for r in answers if r.status_code == 409} == {"ERR_AT_CAPACITY"}
    async with live.kernel.read() as db:
        held = await db.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(Ticket.assignee_id == t.users["agent"], Ticket.status == TicketStatus.OPEN)
        )
    assert held == 2


# --------------------------------------------------------------------------- assign


async def test_assign(live: Live) -> None:
    t = await live.tenant()
    tid = await make_ticket(live, t)
    body = {"user_id": str(t.users["agent2"])}
    err(await t.agent.post(f"/api/v1/tickets/{tid}/assign", json=body), 403, "ERR_FORBIDDEN")
    err(await t.clients["agent2"].post(f"/api/v1/tickets/{tid}/assign", json=body), 404)
    r = await t.supervisor.post(f"/api/v1/tickets/{tid}/assign", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["assignee"]["id"] == str(t.users["agent2"])
    assert r.json()["status"] == TicketStatus.OPEN and r.json()["flow_state"] == FlowState.DONE
    # agent2 works Comercial, yet sees the Laboratório ticket now: it is theirs.
    assert (await t.clients["agent2"].get(f"/api/v1/tickets/{tid}")).status_code == 200
    # Same person again: nothing changes.
    assert (await t.supervisor.post(f"/api/v1/tickets/{tid}/assign", json=body)).status_code == 200
    assert len(await assignments(live, tid)) == 1
    # To someone else: the first assignment ends.
    r = await t.admin.post(f"/api/v1/tickets/{tid}/assign", json={"user_id": str(t.users["agent"])})
    assert r.status_code == 200 and r.json()["assignee"]["id"] == str(t.users["agent"])
    first, second = await assignments(live, tid)
    assert first.user_id == t.users["agent2"] and first.ended_at is not None
    assert (second.user_id, second.reason, second.ended_at) == (t.users["agent"], "assign", None)
    assert second.assigned_by_id == t.users["admin"]
    assert [a.action for a in await audits(live, tid)] == ["ticket.assign", "ticket.assign"]
    # agent2 lost it: the event of the change reached both sides.
    evs = await ticket_events(live, tid, "assign")
    assert (evs[-2].user_id, evs[-1].user_id) == (t.users["agent"], t.users["agent2"]) or (
        evs[-1].user_id,
        evs[-2].user_id,
    ) == (t.users["agent"], t.users["agent2"])


async def test_assign_capacity_force_and_bad_targets(live: Live) -> None:
    t = await live.tenant()
    await set_user(live, t.users["agent2"], max_concurrent_tickets=0)
    tid = await make_ticket(live, t)
    body = {"user_id": str(t.users["agent2"])}
    err(await t.supervisor.post(f"/api/v1/tickets/{tid}/assign", json=body), 409, "ERR_AT_CAPACITY")
    r = await t.supervisor.post(f"/api/v1/tickets/{tid}/assign", json={**body, "force": True})
    assert r.status_code == 200 and r.json()["assignee"]["id"] == str(t.users["agent2"])
    [row] = await audits(live, tid)
    assert row.data["force"] is True
    other = await live.tenant("Other")
    fresh = await make_ticket(live, t)
    for bad in (
        {"user_id": str(other.users["agent"])},  # another company's person
        {"user_id": str(uuid.uuid4())},
    ):
        err(await t.supervisor.post(f"/api/v1/tickets/{fresh}/assign", json=bad), 404)
    await set_user(live, t.users["agent"], active=False)
    err(
        await t.supervisor.post(
            f"/api/v1/tickets/{fresh}/assign", json={"user_id": str(t.users["agent"])}
        ),
        422,
    )
    for bad in ({}, {"user_id": "nope"}, {"user_id": str(t.users["agent2"]), "extra": 1}):
        err(await t.supervisor.post(f"/api/v1/tickets/{fresh}/assign", json=bad), 422)
    assert (await ticket_row(live, fresh)).assignee_id is None
    assert await assignments(live, fresh) == [] and await audits(live, fresh) == []
    closed = await make_ticket(live, t, status=TicketStatus.CLOSED, closed_at=utcnow())
    err(await t.supervisor.post(f"/api/v1/tickets/{closed}/assign", json=body), 409)


# --------------------------------------------------------------------------- transfer


async def test_transfer_to_a_department_and_to_a_person(live: Live) -> None:
    t = await live.tenant()
    sid = await connected_session(live, t)
    tid = await routed_ticket(live, t, sid, "+5511912345678", "1")  # Laboratório
    assert (await t.agent.post(f"/api/v1/tickets/{tid}/accept")).status_code == 200
    before_msgs = len(await outbound(live, tid))
    # The assignee sends it to Comercial's queue.
    r = await t.agent.post(
        f"/api/v1/tickets/{tid}/transfer", json={"department_id": str(t.sales_id)}
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["status"] == TicketStatus.PENDING and got["assignee"] is None
    assert got["department"] == {"id": str(t.sales_id), "name": "Comercial"}
    assert got["flow_state"] == FlowState.ROUTED
    [accepted] = await assignments(live, tid)
    assert accepted.ended_at is not None
    # Both sides heard of it: the old department and assignee, and the new queue.
    evs = await ticket_events(live, tid, "transfer")
    assert {(e.department_id, e.user_id) for e in evs} == {
        (t.sales_id, None),
        (t.lab_id, t.users["agent"]),
    }
    # The customer was told, through the outbox.
    msgs = await outbound(live, tid)
    assert len(msgs) == before_msgs + 1
    assert msgs[-1].body == "Você foi transferido(a) para *Comercial*."
    assert msgs[-1].extra == {"kind": "system"}
    async with live.kernel.read() as db:
        from zapd.db.models import Outbox

        assert await db.scalar(select(Outbox).where(Outbox.message_id == msgs[-1].id))
    # The Lab agent no longer sees it; Comercial's does.
    err(await t.agent.get(f"/api/v1/tickets/{tid}"), 404)
    assert (await t.clients["agent2"].get(f"/api/v1/tickets/{tid}")).status_code == 200
    # A supervisor hands it to a person: OPEN with them, the customer hears who.
    r = await t.supervisor.post(
        f"/api/v1/tickets/{tid}/transfer", json={"user_id": str(t.users["agent2"])}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == TicketStatus.OPEN
    assert r.json()["assignee"]["id"] == str(t.users["agent2"])
    assert (await outbound(live, tid))[
        -1
    ].body == "Você foi transferido(a) para *Agent2* (*Comercial*)."
    last = (await assignments(live, tid))[-1]
    assert (last.user_id, last.reason, last.assigned_by_id) == (
        t.users["agent2"],
        "transfer",
        t.users["supervisor"],
    )
    # The new assignee sends it on with their own words; then quietly.
    r = await t.clients["agent2"].post(
        f"/api/v1/tickets/{tid}/transfer",
        json={
            "department_id": str(t.lab_id),
            "user_id": str(t.users["agent"]),
            "message": "Vou passar você para a Agent do laboratório.",
        },
    )
    assert r.status_code == 200, r.text
    msgs = await outbound(live, tid)
    assert msgs[-1].body == "Vou passar você para a Agent do laboratório."
    assert msgs[-1].author_id == t.users["agent2"]
    count = len(msgs)
    r = await t.agent.post(
        f"/api/v1/tickets/{tid}/transfer",
        json={"department_id": str(t.sales_id), "notify_customer": False},
    )
    assert r.status_code == 200 and len(await outbound(live, tid)) == count
    actions = [a.action for a in await audits(live, tid)]
    assert actions == ["ticket.accept"] + ["ticket.transfer"] * 4


async def test_transfer_sets_the_new_queue_deadline(live: Live) -> None:
    t = await live.tenant()
    r = await t.admin.patch(
        f"/api/v1/departments/{t.sales_id}", json={"response_timeout_seconds": 300}
    )
    assert r.status_code == 200
    tid = await make_ticket(live, t, status=TicketStatus.OPEN, assignee_id=t.users["agent"])
    r = await t.agent.post(
        f"/api/v1/tickets/{tid}/transfer", json={"department_id": str(t.sales_id)}
    )
    assert r.status_code == 200
    row = await ticket_row(live, tid)
    assert row.timeout_at is not None
    assert timedelta(seconds=290) < row.timeout_at - utcnow() <= timedelta(seconds=300)


async def test_transfer_refusals(live: Live) -> None:
    t = await live.tenant()
    tid = await make_ticket(live, t, status=TicketStatus.OPEN, assignee_id=t.users["agent"])
    pending = await make_ticket(live, t)
    url = f"/api/v1/tickets/{tid}/transfer"
    # Only the assignee or a supervisor: an agent of the queue who does not hold it may not.
    lab2 = f"lab2.{t.company_id.hex[:8]}@acme.com.br"
    await live.add_user(t.company_id, lab2, Role.AGENT, "Lab 2", [t.lab_id])
    other_agent, _ = await live.login(lab2)
    err(await other_agent.post(url, json={"department_id": str(t.sales_id)}), 403)
    err(
        await other_agent.post(
            f"/api/v1/tickets/{pending}/transfer", json={"department_id": str(t.sales_id)}
        ),
        403,
    )
    # Agents may not force past a colleague's limit.
    err(await t.agent.post(url, json={"user_id": str(t.users["agent2"]), "force": True}), 403)
    other = await live.tenant("Other")
    for body in (
        {},  # no target
        {"department_id": "x"},
        {"department_id": str(t.sales_id), "message": ""},
        {"department_id": str(t.sales_id), "message": "   "},
        {"department_id": str(t.sales_id), "message": "x" * 5000},
        {"department_id": str(t.sales_id), "message": "oi", "notify_customer": False},
        {"department_id": str(t.sales_id), "bogus": True},
    ):
        err(await t.agent.post(url, json=body), 422)
    for body in (
        {"department_id": str(other.lab_id)},  # another company's department: 404
        {"user_id": str(other.users["agent"])},
        {"department_id": str(uuid.uuid4())},
    ):
        err(await t.agent.post(url, json=body), 404, "ERR_NOT_FOUND")
    # Nowhere new to go.
    err(await t.agent.post(url, json={"user_id": str(t.users["agent"])}), 409, "ERR_TRANSFER_NOOP")
    err(
        await t.supervisor.post(
            f"/api/v1/tickets/{pending}/transfer", json={"department_id": str(t.lab_id)}
        ),
        409,
        "ERR_TRANSFER_NOOP",
    )
    await set_user(live, t.users["agent2"], max_concurrent_tickets=0)
    err(await t.agent.post(url, json={"user_id": str(t.users["agent2"])}), 409, "ERR_AT_CAPACITY")
    row = await ticket_row(live, tid)
    assert (row.status, row.assignee_id, row.department_id) == (
        TicketStatus.OPEN,
        t.users["agent"],
        t.lab_id,
    )
    assert await audits(live, tid) == []
    # A supervisor may force it.
    r = await t.supervisor.post(url, json={"user_id": str(t.users["agent2"]), "force": True})
    assert r.status_code == 200
    closed = await make_ticket(live, t, status=TicketStatus.CLOSED, closed_at=utcnow())
    err(
        await t.supervisor.post(
            f"/api/v1/tickets/{closed}/transfer", json={"department_id": str(t.sales_id)}
        ),
        409,
        "ERR_TICKET_CLOSED",
    )


# --------------------------------------------------------------------------- close, reopen


async def test_close_with_category_and_farewell(live: Live) -> None:
    t = await live.tenant()
    sid = await connected_session(live, t)
    tid = await routed_ticket(live, t, sid, "+5511912345678", "2")  # Comercial
    assert (await t.clients["agent2"].post(f"/api/v1/tickets/{tid}/accept")).status_code == 200
    async with live.kernel.tx() as db:
        cat = Category(company_id=t.company_id, name="Resolvido")
        db.add(cat)
        await db.flush()
        cat_id = cat.id
    other = await live.tenant("Other")
    async with live.kernel.tx() as db:
        foreign = Category(company_id=other.company_id, name="Deles")
        db.add(foreign)
        await db.flush()
        foreign_id = foreign.id
    url = f"/api/v1/tickets/{tid}/close"
    err(await t.agent.post(url, json={}), 404)  # Lab agent: not theirs, not their queue
    for body in ({"category_id": str(foreign_id)}, {"category_id": str(uuid.uuid4())}):
        err(await t.clients["agent2"].post(url, json=body), 404, "ERR_NOT_FOUND")
    for body in (
        {"message": "tchau", "farewell": False},
        {"farewell": "maybe"},
        {"message": ""},
    ):
        err(await t.clients["agent2"].post(url, json=body), 422)
    assert (await ticket_row(live, tid)).status is TicketStatus.OPEN
    r = await t.clients["agent2"].post(url, json={"category_id": str(cat_id)})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["status"] == TicketStatus.CLOSED and got["closed_at"]
    assert got["closed_by_id"] == str(t.users["agent2"]) and got["category_id"] == str(cat_id)
    msgs = await outbound(live, tid)
    assert msgs[-1].body == "Atendimento encerrado. Obrigado pelo contato!"
    assert msgs[-1].extra == {"kind": "system"}
    [held] = await assignments(live, tid)
    assert held.ended_at is not None
    [audit] = [a for a in await audits(live, tid) if a.action == "ticket.close"]
    assert audit.data["changes"]["status"] == [1, 2] and audit.data["farewell"] is True
    assert len(await ticket_events(live, tid, "close")) == 1
    err(await t.clients["agent2"].post(url, json={}), 409, "ERR_TICKET_CLOSED")
    err(await t.supervisor.post(url, json={}), 409, "ERR_TICKET_CLOSED")


async def test_close_roles_farewell_off_and_custom_text(live: Live) -> None:
    t = await live.tenant()
    sid = await connected_session(live, t)
    tid = await routed_ticket(live, t, sid, "+5511912345678", "1")  # Laboratório
    # A queue agent who does not hold it may not close it; its assignee or a supervisor may.
    err(await t.agent.post(f"/api/v1/tickets/{tid}/close", json={}), 403, "ERR_FORBIDDEN")
    count = len(await outbound(live, tid))
    r = await t.supervisor.post(f"/api/v1/tickets/{tid}/close", json={"farewell": False})
    assert r.status_code == 200 and len(await outbound(live, tid)) == count
    tid2 = await routed_ticket(live, t, sid, "+5511987654321", "1")
    r = await t.supervisor.post(
        f"/api/v1/tickets/{tid2}/close", json={"message": "Até a próxima, Maria!"}
    )
    assert r.status_code == 200
    assert (await outbound(live, tid2))[-1].body == "Até a próxima, Maria!"
    # No body at all is the same as {}.
    tid3 = await make_ticket(live, t)
    assert (await t.supervisor.post(f"/api/v1/tickets/{tid3}/close")).status_code == 200


async def test_reopen(live: Live) -> None:
    t = await live.tenant()
    tid = await make_ticket(live, t, status=TicketStatus.OPEN, assignee_id=t.users["agent"])
    err(await t.agent.post(f"/api/v1/tickets/{tid}/reopen"), 409, "ERR_TICKET_NOT_CLOSED")
    assert (await t.agent.post(f"/api/v1/tickets/{tid}/close", json={})).status_code == 200
    # Its last assignee reopens it: back with them, OPEN.
    r = await t.agent.post(f"/api/v1/tickets/{tid}/reopen")
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["status"] == TicketStatus.OPEN and got["assignee"]["id"] == str(t.users["agent"])
    assert got["closed_at"] is None and got["closed_by_id"] is None and got["reopen_count"] == 1
    assert (await assignments(live, tid))[-1].reason == "reopen"
    assert len(await ticket_events(live, tid, "reopen")) == 1
    # Last assignee at capacity: it waits in its department's queue instead.
    assert (await t.agent.post(f"/api/v1/tickets/{tid}/close", json={})).status_code == 200
    await set_user(live, t.users["agent"], max_concurrent_tickets=0)
    r = await t.supervisor.post(f"/api/v1/tickets/{tid}/reopen")
    assert r.status_code == 200
    assert r.json()["status"] == TicketStatus.PENDING and r.json()["assignee"] is None
    assert r.json()["department"]["id"] == str(t.lab_id) and r.json()["reopen_count"] == 2
    assert [a.action for a in await audits(live, tid)].count("ticket.reopen") == 2
    # Someone else (not the last assignee, not a supervisor) may not.
    assert (await t.supervisor.post(f"/api/v1/tickets/{tid}/close", json={})).status_code == 200
    lab2 = f"lab2.{t.company_id.hex[:8]}@acme.com.br"
    await live.add_user(t.company_id, lab2, Role.AGENT, "Lab 2", [t.lab_id])
    other_agent, _ = await live.login(lab2)
    err(await other_agent.post(f"/api/v1/tickets/{tid}/reopen"), 403)
    err(await t.clients["agent2"].post(f"/api/v1/tickets/{tid}/reopen"), 404)


async def test_reopen_refused_while_the_client_has_another_open_ticket(live: Live) -> None:
    t = await live.tenant()
    sid = await seed.session(live, t.company_id)
    cid = await seed.client(live, t.company_id, new_phone(), "Cliente")
    old = await seed.ticket(
        live,
        t.company_id,
        sid,
        cid,
        department_id=t.lab_id,
        status=TicketStatus.CLOSED,
        closed_at=utcnow(),
    )
    new = await seed.ticket(live, t.company_id, sid, cid, department_id=t.lab_id)
    err(await t.supervisor.post(f"/api/v1/tickets/{old}/reopen"), 409, "ERR_OPEN_TICKET_EXISTS")
    assert (await ticket_row(live, old)).status is TicketStatus.CLOSED
    assert (await t.supervisor.post(f"/api/v1/tickets/{new}/close", json={})).status_code == 200
    assert (await t.supervisor.post(f"/api/v1/tickets/{old}/reopen")).status_code == 200


# ------------------------------------------------------------ customers after a close


async def test_customer_writing_after_close_reopens_within_the_window(live: Live) -> None:
    t = await live.tenant()
    sid = await connected_session(live, t)
    phone = "+5511912345678"
    tid = await routed_ticket(live, t, sid, phone, "2")  # Comercial
    assert (await t.clients["agent2"].post(f"/api/v1/tickets/{tid}/accept")).status_code == 200
    assert (
        await t.clients["agent2"].post(f"/api/v1/tickets/{tid}/close", json={})
    ).status_code == 200
    # Default window (15 min): the customer's next words reopen the same ticket.
    await say(t, sid, phone, "Esqueci de perguntar uma coisa")
    row = await ticket_row(live, tid)
    assert row.status is TicketStatus.OPEN and row.assignee_id == t.users["agent2"]
    assert row.reopen_count == 1 and row.closed_at is None
    async with live.kernel.read() as db:
        assert (
            await db.scalar(
                select(func.count()).select_from(Ticket).where(Ticket.company_id == t.company_id)
            )
            == 1
        )
    # Window of 1 minute, closed 2 minutes ago: a new ticket, and the flow offers the
    # department the customer was served by last time.
    r = await t.admin.patch(
        f"/api/v1/companies/{t.company_id}", json={"settings": {"reopen_window_minutes": 1}}
    )
    assert r.status_code == 200, r.text
    assert (
        await t.clients["agent2"].post(f"/api/v1/tickets/{tid}/close", json={})
    ).status_code == 200
    async with live.kernel.tx() as db:
        await db.execute(
            update(Ticket).where(Ticket.id == tid).values(closed_at=utcnow() - timedelta(minutes=2))
        )
    await say(t, sid, phone, "Oi de novo")
    async with live.kernel.read() as db:
        tickets = (
            await db.scalars(
                select(Ticket).where(Ticket.company_id == t.company_id).order_by(Ticket.id)
            )
        ).all()
    assert len(tickets) == 2 and tickets[0].status is TicketStatus.CLOSED
    fresh = tickets[1]
    assert fresh.status is TicketStatus.PENDING
    assert fresh.flow_state is FlowState.AWAITING_ROUTING_CONFIRMATION
    question = (await outbound(live, fresh.id))[-1].body or ""
    assert "Da última vez você foi atendido(a) por *Comercial*" in question
    await say(t, sid, phone, "1")  # yes: back to Comercial
    fresh = await ticket_row(live, fresh.id)
    assert fresh.department_id == t.sales_id and fresh.flow_state is FlowState.ROUTED


async def test_reopen_by_api_after_the_window(live: Live) -> None:
    """An agent may still reopen by hand what the window no longer reopens by itself."""
    t = await live.tenant()
    sid = await connected_session(live, t)
    tid = await routed_ticket(live, t, sid, "+5511912345678", "1")
    assert (await t.agent.post(f"/api/v1/tickets/{tid}/accept")).status_code == 200
    assert (await t.agent.post(f"/api/v1/tickets/{tid}/close", json={})).status_code == 200
    async with live.kernel.tx() as db:
        await db.execute(
            update(Ticket).where(Ticket.id == tid).values(closed_at=utcnow() - timedelta(days=2))
        )
    r = await t.agent.post(f"/api/v1/tickets/{tid}/reopen")
    assert r.status_code == 200 and r.json()["status"] == TicketStatus.OPEN
    # The customer writes: the reopened ticket is theirs, no second ticket.
    await say(t, sid, "+5511912345678", "Obrigado por voltar")
    async with live.kernel.read() as db:
        count = await db.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.company_id == t.company_id)
        )
    assert count == 1 and (await ticket_row(live, tid)).unread_count >= 1


# --------------------------------------------------------------------------- read, update


async def test_read_clears_unread_counts(live: Live) -> None:
    t = await live.tenant()
    tid = await make_ticket(live, t, unread_count=3)
    row = await ticket_row(live, tid)
    async with live.kernel.tx() as db:
        await db.execute(update(Chat).where(Chat.id == row.chat_id).values(unread_count=3))
    err(await t.clients["agent2"].post(f"/api/v1/tickets/{tid}/read"), 404)
    r = await t.agent.post(f"/api/v1/tickets/{tid}/read")
    assert r.status_code == 200 and r.json()["unread_count"] == 0
    async with live.kernel.read() as db:
        chat = await db.get(Chat, row.chat_id)
        assert chat is not None and chat.unread_count == 0
    [ev] = await ticket_events(live, tid, "read")
    assert ev.data["unread_count"] == 0 and ev.department_id == t.lab_id
    # Nothing left to read: no new event.
    assert (await t.agent.post(f"/api/v1/tickets/{tid}/read")).status_code == 200
    assert len(await ticket_events(live, tid, "read")) == 1


async def test_update_priority_and_tags(live: Live) -> None:
    t = await live.tenant()
    other = await live.tenant("Other")
    async with live.kernel.tx() as db:
        vip = Tag(company_id=t.company_id, name="VIP")
        late = Tag(company_id=t.company_id, name="Atrasado")
        theirs = Tag(company_id=other.company_id, name="Deles")
        db.add_all([vip, late, theirs])
        await db.flush()
        vip_id, late_id, theirs_id = vip.id, late.id, theirs.id
    tid = await make_ticket(live, t)
    url = f"/api/v1/tickets/{tid}"
    err(await t.agent.patch(url, json={"priority": Priority.URGENT}), 403, "ERR_FORBIDDEN")
    for body in (
        {"priority": 9},
        {"priority": None},
        {"tag_ids": None},
        {"tag_ids": ["nope"]},
        {"tag_ids": [str(uuid.uuid4()) for _ in range(51)]},
        {"status": 2},
    ):
        err(await t.supervisor.patch(url, json=body), 422)
    err(await t.supervisor.patch(url, json={"tag_ids": [str(theirs_id)]}), 404, "ERR_NOT_FOUND")
    r = await t.agent.patch(url, json={"tag_ids": [str(vip_id), str(late_id), str(vip_id)]})
    assert r.status_code == 200, r.text
    r = await t.supervisor.patch(url, json={"priority": Priority.HIGH, "tag_ids": [str(late_id)]})
    assert r.status_code == 200 and r.json()["priority"] == Priority.HIGH
    async with live.kernel.read() as db:
        tags = (await db.scalars(select(TicketTag.tag_id).where(TicketTag.ticket_id == tid))).all()
    assert list(tags) == [late_id]
    rows = await audits(live, tid)
    assert [a.action for a in rows] == ["ticket.update", "ticket.update"]
    assert rows[0].data["changes"]["tag_ids"] == [[], sorted([str(vip_id), str(late_id)])]
    assert rows[1].data["changes"]["priority"] == [Priority.NORMAL, Priority.HIGH]
    evs = await ticket_events(live, tid, "update")
    assert [e.data["tag_ids"] for e in evs] == [
        [str(vip_id), str(late_id)],
        [str(late_id)],
    ]
    # No change: no audit, no event; an empty body is fine.
    assert (await t.agent.patch(url, json={"tag_ids": [str(late_id)]})).status_code == 200
    assert (await t.agent.patch(url, json={})).status_code == 200
    assert len(await audits(live, tid)) == 2


# --------------------------------------------------------------------------- tenancy


async def test_other_companies_tickets_answer_404_and_stay_untouched(live: Live) -> None:
    t = await live.tenant()
    tid = await make_ticket(live, t)
    closed = await make_ticket(live, t, status=TicketStatus.CLOSED, closed_at=utcnow())
    a = await live.tenant("Attacker")
    calls: list[tuple[str, str, Any]] = [
        ("POST", f"/api/v1/tickets/{tid}/accept", None),
        ("POST", f"/api/v1/tickets/{tid}/assign", {"user_id": str(a.users["agent"])}),
        ("POST", f"/api/v1/tickets/{tid}/transfer", {"department_id": str(a.lab_id)}),
        ("POST", f"/api/v1/tickets/{tid}/close", {}),
        ("POST", f"/api/v1/tickets/{closed}/reopen", None),
        ("POST", f"/api/v1/tickets/{tid}/read", None),
        ("PATCH", f"/api/v1/tickets/{tid}", {"priority": 3}),
    ]
    # The tenancy walk's bodies too: `{}` must reach the ownership check and answer 404.
    calls += [
        ("POST", f"/api/v1/tickets/{tid}/transfer", {}),
        ("POST", f"/api/v1/tickets/{tid}/accept", {}),
        ("POST", f"/api/v1/tickets/{closed}/reopen", {}),
        ("POST", f"/api/v1/tickets/{tid}/read", {}),
        ("PATCH", f"/api/v1/tickets/{tid}", {}),
    ]
    r = await a.admin.post("/api/v1/api-tokens", json={"name": "a-script", "role": 0})
    token = live.client(r.json()["token"])
    for client in (a.admin, a.supervisor, a.agent, token):
        for method, url, body in calls:
            err(await client.request(method, url, json=body), 404, "ERR_NOT_FOUND")
    row = await ticket_row(live, tid)
    assert (row.status, row.assignee_id, row.priority) == (TicketStatus.PENDING, None, 1)
    assert (await ticket_row(live, closed)).status is TicketStatus.CLOSED
    assert await audits(live, tid) == [] and await audits(live, closed) == []
    # A global admin may act on any company's tickets (as a supervisor would).
    assert live.root is not None
    r = await live.root.post(
        f"/api/v1/tickets/{tid}/assign", json={"user_id": str(t.users["agent"])}
    )
    assert r.status_code == 200 and r.json()["assignee"]["id"] == str(t.users["agent"])
