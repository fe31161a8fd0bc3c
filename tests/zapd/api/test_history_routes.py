"""History routes: a ticket's assignments, a message's delivery statuses, and departments
paged like every list — over real HTTP and through the typed client."""

from __future__ import annotations

import uuid

from shared.client import ZapClient
from shared.enums import MessageStatus
from tests.zapd.api.conftest import PASSWORD, Live
from tests.zapd.api.test_conversation import wait_for
from tests.zapd.api.test_release import routed_and_taken
from zapd.connectors.sandbox import AckTiming


async def test_assignment_history_follows_who_held_the_ticket(live: Live) -> None:
    t = await live.tenant()
    _sid, ticket_id = await routed_and_taken(live, t)  # accepted by the Lab agent
    r = await t.agent.post(
        f"/api/v1/tickets/{ticket_id}/transfer",
        json={"user_id": str(t.users["agent2"]), "department_id": str(t.sales_id)},
    )
    assert r.status_code == 200, r.text
    r = await t.supervisor.get(f"/api/v1/tickets/{ticket_id}/assignments", params={"order": "asc"})
    assert r.status_code == 200, r.text
    rows = r.json()["items"]
    assert [x["user_id"] for x in rows] == [str(t.users["agent"]), str(t.users["agent2"])]
    assert rows[0]["ended_at"] is not None and rows[1]["ended_at"] is None
    assert rows[0]["department_id"] == str(t.lab_id)
    assert rows[1]["department_id"] == str(t.sales_id)
    assert rows[0]["reason"] == "accept"
    # Visibility is the ticket's: the Lab agent no longer sees it, the new holder does.
    r = await t.agent.get(f"/api/v1/tickets/{ticket_id}/assignments")
    assert r.status_code == 404 and r.json()["error"] == "ERR_NOT_FOUND"
    r = await t.clients["agent2"].get(
        f"/api/v1/tickets/{ticket_id}/assignments", params={"limit": 1, "order": "asc"}
    )
    assert r.status_code == 200 and len(r.json()["items"]) == 1 and r.json()["next_cursor"]
    other = await live.tenant("Other")
    assert (await other.admin.get(f"/api/v1/tickets/{ticket_id}/assignments")).status_code == 404
    r = await t.admin.get(f"/api/v1/tickets/{uuid.uuid4()}/assignments")
    assert r.status_code == 404

    async with ZapClient(live.url) as zap:
        await zap.login(t.emails["supervisor"], PASSWORD)
        page = await zap.list_ticket_assignments(uuid.UUID(ticket_id), order="asc")
        assert [a.user_id for a in page.items] == [t.users["agent"], t.users["agent2"]]


async def test_status_history_of_a_message(live: Live) -> None:
    live.daemon.sandbox.timing = AckTiming(sent=0.01, delivered=0.02, read=0.03, jitter=0.0)
    t = await live.tenant()
    _sid, ticket_id = await routed_and_taken(live, t)
    r = await t.agent.post("/api/v1/messages", json={"ticket_id": ticket_id, "body": "Olá!"})
    assert r.status_code == 201, r.text
    message_id = r.json()["id"]

    async def read() -> list[int] | None:
        r = await t.agent.get(
            f"/api/v1/messages/{message_id}/status-history", params={"order": "asc"}
        )
        assert r.status_code == 200, r.text
        got = [x["status"] for x in r.json()["items"]]
        return got if got and got[-1] == MessageStatus.READ else None

    statuses = await wait_for(read)
    assert statuses == sorted(statuses) and MessageStatus.SENT in statuses
    # Who may not see the ticket gets 404, as for a message that does not exist.
    r = await t.clients["agent2"].get(f"/api/v1/messages/{message_id}/status-history")
    assert r.status_code == 404 and r.json()["error"] == "ERR_NOT_FOUND"
    r = await t.agent.get(f"/api/v1/messages/{uuid.uuid4()}/status-history")
    assert r.status_code == 404

    async with ZapClient(live.url) as zap:
        await zap.login(t.emails["agent"], PASSWORD)
        page = await zap.list_message_status_history(uuid.UUID(message_id), order="asc")
        assert [int(s.status) for s in page.items] == statuses


async def test_departments_page_like_every_list(live: Live) -> None:
    t = await live.tenant()
    for name in ("Financeiro", "Pós-venda", "Suporte"):
        r = await t.admin.post("/api/v1/departments", json={"name": name})
        assert r.status_code == 201, r.text
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 2, "order": "asc"}
        if cursor:
            params["cursor"] = cursor
        r = await t.agent.get("/api/v1/departments", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= 2
        seen += [d["name"] for d in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == ["Laboratório", "Comercial", "Financeiro", "Pós-venda", "Suporte"]
    r = await t.agent.get("/api/v1/departments", params={"limit": 0})
    assert r.status_code == 422
    # The typed client still gives the whole menu, in menu order.
    async with ZapClient(live.url) as zap:
        await zap.login(t.emails["agent"], PASSWORD)
        names = [d.name for d in await zap.list_departments()]
    assert names[:2] == ["Laboratório", "Comercial"] and len(names) == 5
