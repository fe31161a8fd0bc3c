"""Tickets read side over real HTTP: visibility, filters, pagination, messages, tenancy."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from shared.enums import MessageDirection, Priority, TicketStatus
from tests.zapd.api import seed
from tests.zapd.api.conftest import Live, Tenant


@dataclass
class World:
    """One tenant's tickets, named by who should see them."""

    t: Tenant
    session_id: uuid.UUID
    other_session_id: uuid.UUID
    clients: dict[str, uuid.UUID]
    tickets: dict[str, uuid.UUID]


async def _world(live: Live) -> World:
    t = await live.tenant()
    s1 = await seed.session(live, t.company_id, "Principal")
    s2 = await seed.session(live, t.company_id, "Filial")
    clients = {
        "ana": await seed.client(live, t.company_id, "+5511987654321", "Ana Souza"),
        "bruno": await seed.client(live, t.company_id, "+5521912345678", None, "Bruno WA"),
        "carla": await seed.client(live, t.company_id, "+5531999990000", "Carla Lima"),
        "davi": await seed.client(live, t.company_id, "+5541988887777", "Davi 100%_off"),
    }
    agent, agent2 = t.users["agent"], t.users["agent2"]
    specs: list[tuple[str, str, dict[str, Any]]] = [
        ("lab_pending", "ana", {"department_id": t.lab_id}),
        (
            "lab_open_mine",
            "bruno",
            {"department_id": t.lab_id, "assignee_id": agent, "status": TicketStatus.OPEN},
        ),
        (
            "sales_mine",
            "carla",
            {"department_id": t.sales_id, "assignee_id": agent, "status": TicketStatus.OPEN},
        ),
        ("sales_pending", "ana", {"department_id": t.sales_id, "session": s2}),
        (
            "sales_agent2",
            "bruno",
            {
                "department_id": t.sales_id,
                "assignee_id": agent2,
                "status": TicketStatus.OPEN,
                "session": s2,
                "priority": Priority.URGENT,
            },
        ),
        ("lab_closed", "carla", {"department_id": t.lab_id, "status": TicketStatus.CLOSED}),
        ("in_menu", "davi", {}),
    ]
    tickets: dict[str, uuid.UUID] = {}
    for key, who, kw in specs:
        session = kw.pop("session", s1)
        tickets[key] = await seed.ticket(live, t.company_id, session, clients[who], **kw)
    return World(t, s1, s2, clients, tickets)


async def _ids(client: httpx.AsyncClient, **params: Any) -> list[str]:
    r = await client.get("/api/v1/tickets", params={"limit": 200, **params})
    assert r.status_code == 200, r.text
    assert r.json()["next_cursor"] is None
    return [item["id"] for item in r.json()["items"]]


def _keys(w: World, ids: list[str]) -> set[str]:
    names = {str(v): k for k, v in w.tickets.items()}
    return {names[i] for i in ids}


async def test_visibility_matrix(live: Live) -> None:
    w = await _world(live)
    t = w.t
    everything = set(w.tickets)
    assert _keys(w, await _ids(t.supervisor)) == everything
    assert _keys(w, await _ids(t.admin)) == everything
    agent_sees = {"lab_pending", "lab_open_mine", "sales_mine", "lab_closed"}
    assert _keys(w, await _ids(t.agent)) == agent_sees
    agent2_sees = {"sales_pending", "sales_agent2", "sales_mine"}
    assert _keys(w, await _ids(t.clients["agent2"])) == agent2_sees

    for key, tid in w.tickets.items():
        for who, sees in (("agent", agent_sees), ("agent2", agent2_sees)):
            client = t.clients[who]
            r = await client.get(f"/api/v1/tickets/{tid}")
            m = await client.get(f"/api/v1/tickets/{tid}/messages")
            if key in sees:
                assert r.status_code == 200 and m.status_code == 200, (who, key)
            else:
                assert r.status_code == 404 and m.status_code == 404, (who, key)
                assert r.json()["error"] == "ERR_NOT_FOUND"
        assert (await t.supervisor.get(f"/api/v1/tickets/{tid}")).status_code == 200

    # Filters never widen what an agent sees.
    r = await t.agent.get("/api/v1/tickets", params={"department_id": str(t.sales_id)})
    assert _keys(w, [i["id"] for i in r.json()["items"]]) == {"sales_mine"}
    r = await t.agent.get("/api/v1/tickets", params={"assignee_id": str(t.users["agent2"])})
    assert r.json()["items"] == []


async def test_ticket_detail_shape(live: Live) -> None:
    w = await _world(live)
    t = w.t
    r = await t.agent.get(f"/api/v1/tickets/{w.tickets['sales_mine']}")
    body = r.json()
    assert body["id"] == str(w.tickets["sales_mine"]) and body["number"] == 3
    assert body["client"] == {
        "id": str(w.clients["carla"]),
        "name": "Carla Lima",
        "profile_name": None,
        "phone": "+5531999990000",
    }
    assert body["department"] == {"id": str(t.sales_id), "name": "Comercial"}
    assert body["assignee"] == {"id": str(t.users["agent"]), "name": "Agent"}
    assert body["status"] == int(TicketStatus.OPEN) and body["flow_state"] == 0
    assert body["priority"] == int(Priority.NORMAL) and body["unread_count"] == 0
    assert body["session_id"] == str(w.session_id) and body["chat_id"]
    assert body["created_at"].endswith(("Z", "+00:00")) and body["closed_at"] is None
    r = await t.supervisor.get(f"/api/v1/tickets/{w.tickets['in_menu']}")
    assert r.json()["department"] is None and r.json()["assignee"] is None
    r = await t.supervisor.get(f"/api/v1/tickets/{w.tickets['lab_open_mine']}")
    assert r.json()["client"]["name"] is None and r.json()["client"]["profile_name"] == "Bruno WA"
    for bad in ("not-a-uuid", "123"):
        r = await t.admin.get(f"/api/v1/tickets/{bad}")
        assert r.status_code == 422 and "Traceback" not in r.text
    assert (await t.admin.get(f"/api/v1/tickets/{uuid.uuid4()}")).status_code == 404


async def test_filters(live: Live) -> None:
    w = await _world(live)
    t, sup = w.t, w.t.supervisor

    async def keys(client: httpx.AsyncClient = sup, **params: Any) -> set[str]:
        return _keys(w, await _ids(client, **params))

    assert await keys(status=2) == {"lab_closed"}
    assert await keys(status=[0, 1]) == set(w.tickets) - {"lab_closed"}
    assert await keys(status=[1]) == {"lab_open_mine", "sales_mine", "sales_agent2"}
    assert await keys(department_id=str(t.lab_id)) == {"lab_pending", "lab_open_mine", "lab_closed"}
    assert await keys(department_id=str(t.lab_id), status=0) == {"lab_pending"}
    assert await keys(assignee_id=str(t.users["agent"])) == {"lab_open_mine", "sales_mine"}
    assert await keys(t.agent, assignee_id="me") == {"lab_open_mine", "sales_mine"}
    assert await keys(t.clients["agent2"], assignee_id="me") == {"sales_agent2"}
    assert await keys(assignee_id="me") == set()
    assert await keys(assignee_id="none") == {
        "lab_pending",
        "sales_pending",
        "lab_closed",
        "in_menu",
    }
    assert await keys(client_id=str(w.clients["ana"])) == {"lab_pending", "sales_pending"}
    assert await keys(session_id=str(w.other_session_id)) == {"sales_pending", "sales_agent2"}
    # q: words of the client name or WhatsApp profile name (any case or accent, each
    # word a prefix), or phone digits.
    assert await keys(q="ana") == {"lab_pending", "sales_pending"}
    assert await keys(q="ÁN") == {"lab_pending", "sales_pending"}
    assert await keys(q="SOUZA") == {"lab_pending", "sales_pending"}
    assert await keys(q="bruno wa") == {"lab_open_mine", "sales_agent2"}
    assert await keys(q="98765") == {"lab_pending", "sales_pending"}
    assert await keys(q="+55 (31) 99999") == {"sales_mine", "lab_closed"}
    assert await keys(q="100%_") == {"in_menu"}  # punctuation separates words
    assert await keys(q="off") == {"in_menu"}
    assert await keys(q="%") == set()  # no word, no wildcard: nothing
    assert await keys(q="zzz") == set()
    assert await keys(t.agent, q="ana") == {"lab_pending"}
    assert await keys(q="ana", status=0, session_id=str(w.session_id)) == {"lab_pending"}
    # number: the per-company "#N"; an agent finds it only where they may see the ticket.
    got = await sup.get(f"/api/v1/tickets/{w.tickets['lab_pending']}")
    number = got.json()["number"]
    assert await keys(number=number) == {"lab_pending"}
    assert await keys(t.agent, number=number) == {"lab_pending"}
    assert await keys(t.clients["agent2"], number=number) == set()
    assert await keys(number=number, status=1) == set()
    assert await keys(number=10**9) == set()

    for bad in (
        {"status": 7},
        {"status": "open"},
        {"assignee_id": "bob"},
        {"department_id": "x"},
        {"client_id": "1"},
        {"q": "x" * 101},
        {"number": 0},
        {"number": "#1"},
        {"limit": 201},
        {"order": "sideways"},
        {"cursor": "not!a!cursor"},
    ):
        r = await sup.get("/api/v1/tickets", params=bad)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["error"].startswith("ERR_") and "Traceback" not in r.text


async def test_ticket_listing_pages(live: Live) -> None:
    w = await _world(live)
    expected = sorted(str(v) for v in w.tickets.values())  # UUIDv7: creation order
    for order in ("asc", "desc"):
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 2, "order": order}
            if cursor:
                params["cursor"] = cursor
            page = (await w.t.supervisor.get("/api/v1/tickets", params=params)).json()
            pages += 1
            seen += [i["id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert pages == 4
        assert seen == (expected if order == "asc" else expected[::-1])


async def _walk(
    client: httpx.AsyncClient, ticket_id: uuid.UUID, order: str, limit: int
) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": limit, "order": order}
        if cursor:
            params["cursor"] = cursor
        r = await client.get(f"/api/v1/tickets/{ticket_id}/messages", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= limit
        pages += 1
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items, pages


async def test_messages_pages_in_both_orders(live: Live) -> None:
    w = await _world(live)
    t = w.t
    tid = w.tickets["lab_open_mine"]
    ids = [str(i) for i in await seed.messages(live, tid, 23)]
    # A note by the agent, and messages of another ticket that must not show up.
    note = await seed.messages(live, tid, 1, is_note=True, author_id=t.users["agent"])
    ids.append(str(note[0]))
    await seed.messages(live, w.tickets["lab_pending"], 4)

    asc, pages = await _walk(t.agent, tid, "asc", 5)
    assert pages == 5
    assert [m["id"] for m in asc] == ids  # in order, no duplicate, no gap
    desc, pages = await _walk(t.agent, tid, "desc", 5)
    assert [m["id"] for m in desc] == ids[::-1]
    default = (await t.agent.get(f"/api/v1/tickets/{tid}/messages")).json()
    assert [m["id"] for m in default["items"]] == ids[::-1]  # newest first by default
    assert default["next_cursor"] is None
    exact, pages = await _walk(t.agent, tid, "asc", 24)
    assert pages == 1 and len(exact) == 24

    first, last = asc[0], asc[-1]
    assert first["body"] == "mensagem 0" and first["direction"] == int(MessageDirection.INBOUND)
    assert first["type"] == 0 and first["status"] == 6 and first["is_note"] is False
    assert first["wa_message_id"].startswith("wamid.") and first["ticket_id"] == str(tid)
    assert first["author_id"] is None and first["media_id"] is None
    assert first["quoted_message_id"] is None and first["created_at"]
    assert asc[1]["direction"] == int(MessageDirection.OUTBOUND) and asc[1]["status"] == 2
    assert last["is_note"] is True and last["author_id"] == str(t.users["agent"])

    for bad in ({"cursor": "%%%"}, {"cursor": "abc"}, {"limit": 0}, {"order": "x"}):
        r = await t.agent.get(f"/api/v1/tickets/{tid}/messages", params=bad)
        assert r.status_code == 422, bad
    r = await t.agent.get(f"/api/v1/tickets/{tid}/messages", params={"cursor": "abc"})
    assert r.json()["error"] == "ERR_BAD_CURSOR"
    r = await t.agent.get(f"/api/v1/tickets/{w.tickets['sales_agent2']}/messages")
    assert r.status_code == 404


async def test_other_company_gets_404(live: Live) -> None:
    w = await _world(live)
    other = await live.tenant("Other")
    tid = w.tickets["lab_pending"]
    await seed.messages(live, tid, 2)
    for client in (other.admin, other.supervisor, other.agent):
        assert (await client.get(f"/api/v1/tickets/{tid}")).status_code == 404
        assert (await client.get(f"/api/v1/tickets/{tid}/messages")).status_code == 404
        assert await _ids(client) == []
        assert await _ids(client, client_id=str(w.clients["ana"])) == []
    r = await other.admin.get("/api/v1/tickets", params={"company_id": str(w.t.company_id)})
    assert r.status_code == 404
    # The global admin sees every company, or the one named.
    assert live.root is not None
    assert len(await _ids(live.root)) == 7
    assert len(await _ids(live.root, company_id=str(w.t.company_id))) == 7
    assert await _ids(live.root, company_id=str(other.company_id)) == []
    r = await live.root.get(f"/api/v1/tickets/{tid}/messages")
    assert len(r.json()["items"]) == 2
