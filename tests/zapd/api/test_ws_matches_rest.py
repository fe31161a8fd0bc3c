"""The WebSocket shows each principal exactly what REST lets it read, event by event.

Real traffic (customers on a sandbox session: one left in the greeting menu, one routed
to each department, a reply, an accept) is watched live and replayed (`since=0`) by
both agents and the supervisor. For every event a principal received, REST answers 200
for what it is about; for every ticket REST lists, its events arrived; a ticket still in
the greeting menu (REST: 404 for agents) sends agents nothing.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from sqlalchemy import func, select

from shared.enums import MessageDirection, MessageStatus, OutboxState
from tests.zapd.api.conftest import Live, Tenant
from tests.zapd.api.test_conversation import connected_session, say, wait_for
from tests.zapd.api.test_ws import TIMEOUT, token_of, ws
from zapd.db.models import Company, Message, Outbox

PEOPLE = ("agent", "agent2", "supervisor")


def _about(ev: dict[str, Any]) -> tuple[str, str]:
    """Return (REST path, what) an event is about, to check that REST lets its reader see it."""
    kind, data = ev["type"], ev["data"]
    if kind.startswith("message."):
        assert data["ticket_id"] is not None, ev  # ticketless traffic reaches no agent
        return f"/api/v1/tickets/{data['ticket_id']}", "ticket"
    if kind.startswith("ticket."):
        return f"/api/v1/tickets/{data['id']}", "ticket"
    if kind == "client.update":
        return f"/api/v1/clients/{data['id']}", "client"
    if kind.startswith("session."):
        return f"/api/v1/sessions/{data['id']}", "session"
    if kind == "user.update":
        return f"/api/v1/users/{data['id']}", "user"
    raise AssertionError(f"unexpected event type {kind}")


def _ticket_of(ev: dict[str, Any]) -> str | None:
    if ev["type"].startswith("message."):
        return str(ev["data"]["ticket_id"])
    if ev["type"].startswith("ticket."):
        return str(ev["data"]["id"])
    return None


async def _replay(live: Live, token: str) -> list[dict[str, Any]]:
    """Everything the log holds for `token`'s principal (frames before `hello`)."""
    got: list[dict[str, Any]] = []
    async with ws(live, token, since=0, max_queue=4096) as conn:
        while True:
            doc = json.loads(await asyncio.wait_for(conn.recv(), TIMEOUT))
            if doc.get("type") == "hello":
                return got
            got.append(doc)


async def _collect(conn: Any, into: list[dict[str, Any]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            raw = await asyncio.wait_for(conn.recv(), 0.2)
        except TimeoutError:
            continue
        doc = json.loads(raw)
        if doc.get("seq") is not None:
            into.append(doc)


async def _traffic(live: Live, t: Tenant) -> dict[str, str]:
    sid = await connected_session(live, t)
    await say(t, sid, "+55 11 91111-0001", "Oi, tudo bem?", name="Ana")  # stays in the menu
    await say(t, sid, "+55 11 91111-0001", "quero saber do meu pedido")  # still the menu
    await say(t, sid, "+55 11 91111-0002", "Olá", name="Bruno")
    await say(t, sid, "+55 11 91111-0002", "1")  # Laboratório (agent)
    await say(t, sid, "+55 11 91111-0003", "Bom dia", name="Carla")
    await say(t, sid, "+55 11 91111-0003", "2")  # Comercial (agent2)
    tickets = (await t.supervisor.get("/api/v1/tickets", params={"limit": 50})).json()["items"]
    by_phone = {x["client"]["phone"]: x["id"] for x in tickets}
    menu, lab, sales = (by_phone[f"+551191111000{i}"] for i in (1, 2, 3))
    r = await t.agent.post(f"/api/v1/tickets/{lab}/accept")
    assert r.status_code == 200, r.text
    r = await t.agent.post("/api/v1/messages", json={"ticket_id": lab, "body": "Olá, Bruno!"})
    assert r.status_code == 201, r.text
    await say(t, sid, "+55 11 91111-0002", "obrigado")

    async def outbox_done() -> bool:
        async with live.kernel.read() as db:
            waiting = await db.scalar(
                select(func.count())
                .select_from(Outbox)
                .where(Outbox.state.in_([OutboxState.PENDING, OutboxState.SENDING]))
            )
        return waiting == 0

    await wait_for(outbox_done, within=TIMEOUT)

    async def all_read() -> bool:  # READ is the sandbox's last ack, ~1.5 s after each send
        async with live.kernel.read() as db:
            unread = await db.scalar(
                select(func.count())
                .select_from(Message)
                .where(
                    Message.company_id == t.company_id,
                    Message.direction == MessageDirection.OUTBOUND,
                    Message.is_note.is_(False),
                    Message.status != MessageStatus.READ,
                )
            )
        return unread == 0

    await wait_for(all_read, within=TIMEOUT)
    # Then let anything else land: the log stops growing.
    heads: list[int] = []

    async def quiet() -> bool:
        async with live.kernel.read() as db:
            heads.append(
                int(
                    await db.scalar(
                        select(Company.last_event_seq).where(Company.id == t.company_id)
                    )
                    or 0
                )
            )
        await asyncio.sleep(0.2)
        return len(heads) >= 4 and len(set(heads[-4:])) == 1

    await wait_for(quiet, within=TIMEOUT)
    return {"menu": menu, "lab": lab, "sales": sales}


async def _check(name: str, client: httpx.AsyncClient, got: list[dict[str, Any]]) -> None:
    assert got, name
    for ev in got:
        path, what = _about(ev)
        r = await client.get(path)
        assert r.status_code == 200, (name, ev["type"], what, r.status_code)
    received = {_ticket_of(ev) for ev in got} - {None}
    listed = (await client.get("/api/v1/tickets", params={"limit": 100})).json()["items"]
    assert {x["id"] for x in listed} <= received, name  # what REST shows, its events arrived
    for ticket_id in received:
        assert (await client.get(f"/api/v1/tickets/{ticket_id}")).status_code == 200


async def test_websocket_shows_exactly_what_rest_lets_each_principal_read(live: Live) -> None:
    t = await live.tenant()
    tokens = {who: token_of(t.clients[who]) for who in PEOPLE}
    live_events: dict[str, list[dict[str, Any]]] = {who: [] for who in PEOPLE}
    stop = asyncio.Event()
    async with (
        ws(live, tokens["agent"], max_queue=4096) as c1,
        ws(live, tokens["agent2"], max_queue=4096) as c2,
        ws(live, tokens["supervisor"], max_queue=4096) as c3,
    ):
        tasks = [
            asyncio.create_task(_collect(conn, live_events[who], stop))
            for who, conn in zip(PEOPLE, (c1, c2, c3), strict=True)
        ]
        ids = await _traffic(live, t)
        replayed = {who: await _replay(live, tokens[who]) for who in PEOPLE}

        async def caught_up() -> bool:
            return all(
                {e["seq"] for e in replayed[w]} <= {e["seq"] for e in live_events[w]}
                for w in PEOPLE
            )

        await wait_for(caught_up, within=TIMEOUT)
        await asyncio.sleep(0.3)  # anything extra that was going to arrive, arrives
        stop.set()
        await asyncio.gather(*tasks)

    for who in PEOPLE:
        # Live and replay apply the same rule.
        assert [e["seq"] for e in live_events[who]] == [e["seq"] for e in replayed[who]], who
        await _check(who, t.clients[who], replayed[who])

    def tickets(who: str) -> set[str | None]:
        return {_ticket_of(e) for e in replayed[who]}

    # The ticket still in the greeting menu: REST hides it from agents, and so does the WS.
    for who in ("agent", "agent2"):
        r = await t.clients[who].get(f"/api/v1/tickets/{ids['menu']}")
        assert r.status_code == 404
        assert ids["menu"] not in tickets(who), who
    assert ids["menu"] in tickets("supervisor")
    menu_bodies = [
        e["data"].get("body")
        for e in replayed["supervisor"]
        if e["type"] == "message.new" and str(e["data"]["ticket_id"]) == ids["menu"]
    ]
    assert "quero saber do meu pedido" in menu_bodies
    # Each agent sees its department's ticket and not the other's.
    assert ids["lab"] in tickets("agent") and ids["sales"] not in tickets("agent")
    assert ids["sales"] in tickets("agent2") and ids["lab"] not in tickets("agent2")
