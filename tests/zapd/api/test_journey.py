"""A customer's whole journey over the real API, on a sandbox session, both backends."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.enums import FlowState, MessageStatus, TicketStatus
from tests.zapd.api.conftest import Live
from tests.zapd.api.test_conversation import connected_session, say, wait_for
from zapd.connectors.sandbox import AckTiming

CUSTOMER = "+5511912345678"


async def inbox(t: Any, sid: str) -> list[str]:
    r = await t.admin.get(f"/api/v1/sandbox/{sid}/inbox", params={"phone": CUSTOMER})
    assert r.status_code == 200, r.text
    return [m["body"] or "" for m in r.json()]


async def test_menu_routing_accept_reply_and_acks_to_read(live: Live) -> None:
    live.daemon.sandbox.timing = AckTiming(
        sent=0.02, delivered=0.05, read=0.1, jitter=0.05, shuffle=True
    )
    t = await live.tenant()
    sid = await connected_session(live, t)
    sales = t.clients["agent2"]  # the Comercial agent

    await say(t, sid, CUSTOMER, "Olá, boa tarde", name="Paula Dias")

    async def greeted() -> bool:
        return any("*2* - Comercial" in body for body in await inbox(t, sid))

    await wait_for(greeted)  # the menu reached the customer's phone
    await say(t, sid, CUSTOMER, "2")
    tickets = (await sales.get("/api/v1/tickets", params={"status": 0})).json()["items"]
    assert len(tickets) == 1
    ticket = tickets[0]
    assert ticket["department"]["name"] == "Comercial"
    assert ticket["flow_state"] == FlowState.ROUTED

    r = await sales.post(f"/api/v1/tickets/{ticket['id']}/accept")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == TicketStatus.OPEN
    r = await sales.post(
        "/api/v1/messages", json={"ticket_id": ticket["id"], "body": "Olá Paula, posso ajudar?"}
    )
    assert r.status_code == 201, r.text
    sent_id = r.json()["id"]

    async def prefixed() -> bool:
        return "*Agent2 - Comercial*:\nOlá Paula, posso ajudar?" in await inbox(t, sid)

    await wait_for(prefixed)  # what the customer sees carries the agent and department

    async def read() -> bool:
        r = await sales.get(f"/api/v1/tickets/{ticket['id']}/messages", params={"order": "asc"})
        status = {m["id"]: m["status"] for m in r.json()["items"]}
        return status.get(sent_id) == MessageStatus.READ

    await wait_for(read)  # acks arrived shuffled; the status only moved forward to READ
    ticket_now = (await sales.get(f"/api/v1/tickets/{ticket['id']}")).json()
    assert ticket_now["first_response_at"] is not None


async def test_invalid_answers_then_default_and_out_of_hours(live: Live) -> None:
    t = await live.tenant()
    # Comercial closes every day at 00:01: whatever the time, it is out of hours.
    hours = {d: [["00:00", "00:01"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    r = await t.admin.patch(
        f"/api/v1/departments/{t.sales_id}",
        json={"business_hours": hours, "out_of_hours_message": "Estamos fechados agora."},
    )
    assert r.status_code == 200, r.text
    sid = await connected_session(live, t)
    await say(t, sid, CUSTOMER, "oi")
    await say(t, sid, CUSTOMER, "banana")
    await say(t, sid, CUSTOMER, "comercial")

    async def closed_note() -> bool:
        return "Estamos fechados agora." in await inbox(t, sid)

    await wait_for(closed_note)
    bodies = await inbox(t, sid)
    assert any(b.startswith("Desculpe, não entendi sua resposta.") for b in bodies)
    items = (await t.supervisor.get("/api/v1/tickets")).json()["items"]
    assert [x["department"]["name"] for x in items] == ["Comercial"]  # queued all the same
    assert items[0]["status"] == TicketStatus.PENDING

    # Three invalid answers route a second customer to the default department.
    other = "+5511987654321"
    for text in ("oi", "x", "y", "z"):
        await say(t, sid, other, text)
    mine = [
        x
        for x in (await t.supervisor.get("/api/v1/tickets")).json()["items"]
        if x["client"]["phone"] == other
    ]
    assert mine and mine[0]["department"]["name"] == "Laboratório"


async def test_returning_client_is_offered_the_last_department(live: Live) -> None:
    t = await live.tenant()
    sid = await connected_session(live, t)
    await say(t, sid, CUSTOMER, "oi")
    await say(t, sid, CUSTOMER, "comercial")
    ticket = (await t.supervisor.get("/api/v1/tickets")).json()["items"][0]
    r = await t.supervisor.post(f"/api/v1/tickets/{ticket['id']}/close", json={"farewell": False})
    assert r.status_code == 200, r.text
    # Past the reopen window: zero minutes means every message opens a new ticket.
    r = await t.admin.patch(
        f"/api/v1/companies/{t.company_id}", json={"settings": {"reopen_window_minutes": 0}}
    )
    assert r.status_code == 200, r.text
    await say(t, sid, CUSTOMER, "bom dia de novo")

    async def asked() -> bool:
        return any("Da última vez" in b and "*Comercial*" in b for b in await inbox(t, sid))

    await wait_for(asked)
    await say(t, sid, CUSTOMER, "1")
    await asyncio.sleep(0)
    items = (await t.supervisor.get("/api/v1/tickets", params={"status": 0})).json()["items"]
    assert len(items) == 1 and items[0]["id"] != ticket["id"]
    assert items[0]["department"]["name"] == "Comercial"
