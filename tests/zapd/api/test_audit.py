"""The audit log over real HTTP: filters, time ranges, pagination, roles, tenancy, bad input."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.zapd.api import seed
from tests.zapd.api.conftest import Live, Tenant

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


async def _rows(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    r = await client.get("/api/v1/audit", params={"limit": 200, **params})
    assert r.status_code == 200, r.text
    assert r.json()["next_cursor"] is None
    return list(r.json()["items"])


async def _actions(client: httpx.AsyncClient, **params: Any) -> list[str]:
    return [row["action"] for row in await _rows(client, **params)]


async def _history(live: Live, t: Tenant) -> dict[str, uuid.UUID]:
    """Make three changes through the API and seed four ticket-ish rows at known times."""
    r = await t.admin.post("/api/v1/departments", json={"name": "Financeiro"})
    dep = uuid.UUID(r.json()["id"])
    r = await t.admin.patch(f"/api/v1/departments/{dep}", json={"menu_order": 7})
    assert r.status_code == 200
    r = await t.admin.post("/api/v1/sessions", json={"name": "Loja", "engine": 0})
    session = uuid.UUID(r.json()["id"])
    ticket = uuid.uuid4()
    agent, sup, admin = t.users["agent"], t.users["supervisor"], t.users["admin"]
    for action, user, days in (
        ("ticket.accept", agent, 0),
        ("ticket.transfer", agent, 1),
        ("ticket.close", sup, 2),
    ):
        await seed.audit_row(
            live,
            t.company_id,
            action,
            "ticket",
            user_id=user,
            entity_id=ticket,
            created_at=T0 + timedelta(days=days),
        )
    # Shares the "ticket" prefix but not the "ticket." one.
    await seed.audit_row(
        live, t.company_id, "tickets.export", "export", user_id=admin, created_at=T0 + timedelta(3)
    )
    return {"department": dep, "session": session, "ticket": ticket}


ALL = [
    "tickets.export",
    "ticket.close",
    "ticket.transfer",
    "ticket.accept",
    "session.create",
    "department.update",
    "department.create",
]


async def test_filters_and_time_ranges(live: Live) -> None:
    t = await live.tenant()
    ids = await _history(live, t)
    a = t.admin
    assert await _actions(a) == ALL  # newest first
    assert await _actions(a, order="asc") == ALL[::-1]

    row = (await _rows(a, action="department.update"))[0]
    assert row["user_id"] == str(t.users["admin"]) and row["ip"] == "127.0.0.1"
    assert row["company_id"] == str(t.company_id) and row["entity_type"] == "department"
    assert row["entity_id"] == str(ids["department"])
    assert row["data"]["changes"]["menu_order"] == [3, 7]
    assert row["created_at"].endswith(("Z", "+00:00"))

    assert await _actions(a, user_id=str(t.users["agent"])) == ["ticket.transfer", "ticket.accept"]
    assert await _actions(a, user_id=str(t.users["supervisor"])) == ["ticket.close"]
    assert await _actions(a, user_id=str(uuid.uuid4())) == []
    assert await _actions(a, action="ticket.accept") == ["ticket.accept"]
    assert await _actions(a, action="ticket") == []  # exact unless written as a prefix
    assert await _actions(a, action="ticket.*") == [
        "ticket.close",
        "ticket.transfer",
        "ticket.accept",
    ]
    assert await _actions(a, action="department.*") == ["department.update", "department.create"]
    assert await _actions(a, action="tickets.*") == ["tickets.export"]
    assert await _actions(a, entity_type="session") == ["session.create"]
    assert await _actions(a, entity_id=str(ids["session"])) == ["session.create"]
    assert await _actions(a, entity_type="ticket", entity_id=str(ids["ticket"])) == [
        "ticket.close",
        "ticket.transfer",
        "ticket.accept",
    ]
    assert await _actions(a, entity_type="department", entity_id=str(ids["ticket"])) == []

    day1 = (T0 + timedelta(days=1)).isoformat()
    day3 = (T0 + timedelta(days=3)).isoformat()
    # since is inclusive, until exclusive.
    assert await _actions(a, since=day1, until=day3) == ["ticket.close", "ticket.transfer"]
    assert await _actions(a, until=day1) == ["ticket.accept"]
    assert await _actions(a, since="2024-01-02T09:00:00-03:00", until="2024-01-03T12:00:00Z") == [
        "ticket.transfer"
    ]
    assert await _actions(a, since=day3, action="ticket.*") == []
    # The API-made rows carry the real clock: anything since 2025 is exactly those.
    assert await _actions(a, since="2025-01-01T00:00:00Z") == ALL[4:]
    assert await _actions(a, since=day1, user_id=str(t.users["agent"])) == ["ticket.transfer"]


async def test_pages_walk_every_row_once(live: Live) -> None:
    t = await live.tenant()
    await _history(live, t)
    for order, expected in (("desc", ALL), ("asc", ALL[::-1])):
        seen: list[str] = []
        ids: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 3, "order": order}
            if cursor:
                params["cursor"] = cursor
            page = (await t.admin.get("/api/v1/audit", params=params)).json()
            seen += [row["action"] for row in page["items"]]
            ids += [row["id"] for row in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == expected and len(set(ids)) == len(ids)
    r = await t.admin.get("/api/v1/audit", params={"limit": 2, "action": "ticket.*"})
    page = r.json()
    assert [x["action"] for x in page["items"]] == ["ticket.close", "ticket.transfer"]
    r = await t.admin.get(
        "/api/v1/audit", params={"limit": 2, "action": "ticket.*", "cursor": page["next_cursor"]}
    )
    assert [x["action"] for x in r.json()["items"]] == ["ticket.accept"]
    assert r.json()["next_cursor"] is None


async def test_roles_and_tenancy(live: Live) -> None:
    t = await live.tenant()
    other = await live.tenant("Other")
    await _history(live, t)
    await other.admin.post("/api/v1/departments", json={"name": "Outro"})
    await seed.audit_row(live, None, "company.create", "company", created_at=T0)

    for client in (t.supervisor, t.agent, t.clients["agent2"]):
        r = await client.get("/api/v1/audit")
        assert r.status_code == 403 and r.json()["error"] == "ERR_FORBIDDEN"
    assert await _actions(other.admin) == ["department.create"]
    r = await other.admin.get("/api/v1/audit", params={"company_id": str(t.company_id)})
    assert r.status_code == 404
    # The other company's rows stay out even when filtering on this company's ids.
    assert await _actions(other.admin, user_id=str(t.users["admin"])) == []
    assert await _actions(t.admin, user_id=str(other.users["admin"])) == []

    assert live.root is not None
    every = await _rows(live.root)
    companies = {row["company_id"] for row in every}
    assert companies == {str(t.company_id), str(other.company_id), None}
    assert len(every) == len(ALL) + 2
    assert await _actions(live.root, company_id=str(t.company_id)) == ALL
    assert await _actions(live.root, company_id=str(other.company_id)) == ["department.create"]
    assert await _actions(live.root, action="company.*") == ["company.create"]


async def test_bad_queries_are_422(live: Live) -> None:
    t = await live.tenant()
    await _history(live, t)
    for bad in (
        {"since": "2024-01-01T10:00:00"},  # naive: which zone?
        {"until": "2024-01-01T10:00:00"},
        {"since": "2024-01-01"},
        {"since": "yesterday"},
        {"since": "2024-01-02T00:00:00Z", "until": "2024-01-01T00:00:00Z"},
        {"since": "2024-01-01T00:00:00Z", "until": "2024-01-01T00:00:00Z"},
        {"cursor": "!!!"},
        {"cursor": "AAAA"},
        {"cursor": "x" * 65},
        {"limit": 0},
        {"limit": 201},
        {"order": "newest"},
        {"action": "ticket*"},
        {"action": "ticket.*.*"},
        {"action": "Ticket.Close"},
        {"action": "%"},
        {"action": "x" * 65},
        {"user_id": "admin"},
        {"entity_id": "123"},
        {"entity_type": "x" * 65},
    ):
        r = await t.admin.get("/api/v1/audit", params=bad)
        assert r.status_code == 422, (bad, r.text)
        body = r.json()
        assert body["error"] in ("ERR_VALIDATION", "ERR_BAD_CURSOR"), body
        assert body["message"] and "Traceback" not in r.text
    r = await t.admin.get("/api/v1/audit", params={"cursor": "!!!"})
    assert r.json()["error"] == "ERR_BAD_CURSOR"
