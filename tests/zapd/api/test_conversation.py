"""The conversation engine end to end over the real API, on a sandbox session."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import func, select

from shared.enums import FlowState, OutboxState, SessionStatus, TicketStatus
from tests.zapd.api.conftest import Live, Tenant
from zapd.db.models import (
    AuditLog,
    Client,
    ClientIdentity,
    Message,
    Outbox,
    Ticket,
    WebhookEvent,
)


async def wait_for(predicate: Any, within: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def connected_session(live: Live, t: Tenant) -> str:
    r = await t.admin.post("/api/v1/sessions", json={"name": "Atendimento", "engine": 0})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert (await t.admin.post(f"/api/v1/sessions/{sid}/start")).status_code == 202

    async def qr() -> Any:
        body = (await t.admin.get(f"/api/v1/sessions/{sid}/qr")).json()
        return body if body["qr"] else None

    shown = await wait_for(qr)
    assert shown["sandbox"] is True and shown["status"] == SessionStatus.WAITING_QR
    r = await t.admin.post(f"/api/v1/sandbox/{sid}/scan", json={"phone": "+55 11 3000-1000"})
    assert r.status_code == 200, r.text

    async def connected() -> bool:
        s = (await t.admin.get(f"/api/v1/sessions/{sid}")).json()
        return s["status"] == SessionStatus.CONNECTED

    await wait_for(connected)
    return sid


async def say(t: Tenant, sid: str, phone: str, text: str, **kw: Any) -> dict[str, Any]:
    r = await t.admin.post(
        f"/api/v1/sandbox/{sid}/inbound", json={"from": phone, "text": text, **kw}
    )
    assert r.status_code == 201, r.text
    return r.json()


async def test_new_customer_gets_menu_and_is_routed(live: Live) -> None:
    t = await live.tenant()
    sid = await connected_session(live, t)
    await say(t, sid, "+55 11 91234-5678", "Oi, bom dia", name="Maria Souza")
    async with live.kernel.read() as db:
        ticket = await db.scalar(select(Ticket))
        assert ticket is not None
        assert ticket.status is TicketStatus.PENDING
        assert ticket.flow_state is FlowState.AWAITING_MENU_CHOICE
        menu = (await db.scalars(select(Message).where(Message.direction == 1))).all()
        assert len(menu) == 1 and "*2* - Comercial" in (menu[0].body or "")
        assert menu[0].body.startswith("Olá, Maria!")
        box = await db.scalar(select(Outbox))
        assert box is not None and box.state in (
            OutboxState.PENDING,
            OutboxState.SENDING,
            OutboxState.SENT,
        )

    await say(t, sid, "+5511912345678", "2")
    async with live.kernel.read() as db:
        ticket = await db.scalar(select(Ticket))
        assert ticket is not None and ticket.department_id == t.sales_id
        assert ticket.flow_state is FlowState.ROUTED
        assert ticket.unread_count == 2
    tickets = (await t.clients["agent2"].get("/api/v1/tickets")).json()["items"]
    assert [x["department"]["id"] for x in tickets] == [str(t.sales_id)]
    assert (await t.agent.get("/api/v1/tickets")).json()["items"] == []  # Lab agent


async def test_redelivery_changes_nothing(live: Live) -> None:
    t = await live.tenant()
    sid = await connected_session(live, t)
    for _ in range(3):
        await say(t, sid, "+5511912345678", "Oi", wa_message_id="WAMID-DUP-1")
    async with live.kernel.read() as db:
        inbound = await db.scalar(
            select(func.count()).select_from(Message).where(Message.direction == 0)
        )
        assert inbound == 1
        assert await db.scalar(select(func.count()).select_from(Ticket)) == 1
        states = (
            await db.scalars(select(WebhookEvent.state).where(WebhookEvent.event_type == "message"))
        ).all()

        assert len(states) == 3 and all(s == 1 for s in states)  # stored, processed


async def test_ninth_digit_and_lid_are_one_client(live: Live) -> None:
    t = await live.tenant()
    sid = await connected_session(live, t)
    await say(t, sid, "+55 11 98123-4567", "Oi")
    await say(t, sid, "+55 11 8123-4567", "1")  # old form, no 9th digit
    await say(t, sid, "+55 11 98123-4567", "de novo", lid="987654321012@lid")
    async with live.kernel.read() as db:
        clients = (await db.scalars(select(Client))).all()
        assert len(clients) == 1 and clients[0].phone == "+5511981234567"
        kinds = {(i.kind, i.value) for i in (await db.scalars(select(ClientIdentity))).all()}
        assert (2, "+551181234567") in kinds and (1, "987654321012@lid") in kinds
        assert await db.scalar(select(func.count()).select_from(Ticket)) == 1
        ticket = await db.scalar(select(Ticket))
        assert ticket is not None and ticket.department_id == t.lab_id


async def test_concurrent_first_messages_open_one_ticket(live: Live) -> None:
    t = await live.tenant()
    sid = await connected_session(live, t)
    await asyncio.gather(*[say(t, sid, "+5511955550000", f"msg {i}") for i in range(8)])
    async with live.kernel.read() as db:
        assert await db.scalar(select(func.count()).select_from(Ticket)) == 1
        assert (
            await db.scalar(select(func.count()).select_from(Message).where(Message.direction == 0))
            == 8
        )


async def test_sandbox_routes_refuse_bad_input_and_others(live: Live) -> None:
    t = await live.tenant()
    sid = await connected_session(live, t)
    for body in (
        {"from": "abc", "text": "x"},
        {"from": "+5511912345678", "text": ""},
        {"text": "x"},
        {"from": "+5511912345678", "text": "x", "lid": "nope"},
    ):
        r = await t.admin.post(f"/api/v1/sandbox/{sid}/inbound", json=body)
        assert r.status_code == 422, (body, r.text)
    assert (
        await t.agent.post(
            f"/api/v1/sandbox/{sid}/inbound", json={"from": "+5511912345678", "text": "x"}
        )
    ).status_code == 403
    other = await live.tenant("Other")
    r = await other.admin.post(
        f"/api/v1/sandbox/{sid}/inbound", json={"from": "+5511912345678", "text": "x"}
    )
    assert r.status_code == 404
    assert (await other.admin.post(f"/api/v1/sessions/{sid}/start")).status_code == 404
    assert (await t.admin.post(f"/api/v1/sessions/{uuid.uuid4()}/start")).status_code == 404
    r = await t.admin.post(f"/api/v1/sessions/{sid}/start")
    assert r.status_code == 409 and r.json()["error"] == "ERR_SESSION_STARTED"


async def test_pairing_code_links_a_session_without_a_qr(live: Live) -> None:
    t = await live.tenant()
    r = await t.admin.post("/api/v1/sessions", json={"name": "Pareada", "engine": 0})
    sid = r.json()["id"]
    pair = f"/api/v1/sessions/{sid}/pair"
    r = await t.admin.post(pair, json={"phone": "+5511912345678"})
    assert r.status_code == 409 and r.json()["error"] == "ERR_SESSION_NOT_RUNNING"
    assert (await t.admin.post(f"/api/v1/sessions/{sid}/start")).status_code == 202

    for body in ({"phone": "12"}, {}, {"phone": "+5511912345678", "extra": 1}):
        r = await t.admin.post(pair, json=body)
        assert r.status_code == 422, (body, r.text)
        assert "Traceback" not in r.text
    assert (await t.agent.post(pair, json={"phone": "+5511912345678"})).status_code == 403
    other = await live.tenant("Other")
    assert (await other.admin.post(pair, json={"phone": "+5511912345678"})).status_code == 404

    r = await t.admin.post(pair, json={"phone": "(11) 91234-5678"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["session_id"] == sid and got["phone"] == "+5511912345678"
    assert got["sandbox"] is True and len(got["code"]) == 8

    enter = f"/api/v1/sandbox/{sid}/pair"
    r = await t.admin.post(
        enter, json={"code": "ZZZZZZZZ" if got["code"] != "ZZZZZZZZ" else "YYYYYYYY"}
    )
    assert r.status_code == 409 and r.json()["error"] == "ERR_PAIRING_REFUSED"
    assert (await t.admin.post(enter, json={"code": "x"})).status_code == 422
    assert (await other.admin.post(enter, json={"code": got["code"]})).status_code == 404
    r = await t.admin.post(enter, json={"code": got["code"][:4] + "-" + got["code"][4:]})
    assert r.status_code == 200 and r.json() == {"phone": "+5511912345678"}

    async def connected() -> Any:
        s = (await t.admin.get(f"/api/v1/sessions/{sid}")).json()
        return s if s["status"] == SessionStatus.CONNECTED else None

    s = await wait_for(connected)
    assert s["phone"] == "+5511912345678"
    r = await t.admin.post(pair, json={"phone": "+5511912345678"})
    assert r.status_code == 409 and r.json()["error"] == "ERR_PAIRING_REFUSED"
    async with live.kernel.read() as db:
        actions = (
            await db.scalars(select(AuditLog.action).where(AuditLog.entity_id == uuid.UUID(sid)))
        ).all()
    assert "session.pair" in actions
