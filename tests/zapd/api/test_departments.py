"""Departments over real HTTP: CRUD, roles, tenancy, validation, audit and events."""

from __future__ import annotations

from sqlalchemy import select

from tests.zapd.api.conftest import Live
from zapd.db.models import AuditLog, Event


async def test_admin_creates_and_everyone_reads(live: Live) -> None:
    t = await live.tenant()
    r = await t.admin.post(
        "/api/v1/departments",
        json={
            "name": "Pós-venda & Suporte",
            "keywords": ["suporte", " ajuda "],
            "business_hours": {"mon": [["08:00", "18:00"]]},
            "timezone": "America/Sao_Paulo",
            "response_timeout_seconds": 600,
        },
    )
    assert r.status_code == 201, r.text
    dep = r.json()
    assert dep["slug"] == "pos-venda-suporte" and dep["menu_order"] == 3
    assert dep["keywords"] == ["suporte", "ajuda"]
    listed = await t.agent.get("/api/v1/departments", params={"order": "asc"})
    names = [d["name"] for d in listed.json()["items"]]
    assert names == ["Laboratório", "Comercial", "Pós-venda & Suporte"]
    r = await t.agent.post("/api/v1/departments", json={"name": "X"})
    assert r.status_code == 403 and r.json()["error"] == "ERR_FORBIDDEN"
    r = await t.supervisor.patch(f"/api/v1/departments/{dep['id']}", json={"name": "Y"})
    assert r.status_code == 403


async def test_update_delete_audit_and_events(live: Live) -> None:
    t = await live.tenant()
    r = await t.admin.patch(f"/api/v1/departments/{t.lab_id}", json={"menu_order": 9})
    assert r.status_code == 200 and r.json()["menu_order"] == 9
    assert r.json()["name"] == "Laboratório"  # untouched fields stay
    r = await t.admin.delete(f"/api/v1/departments/{t.sales_id}")
    assert r.status_code == 204
    assert (await t.admin.get(f"/api/v1/departments/{t.sales_id}")).status_code == 404
    async with live.kernel.read() as db:
        rows = (
            await db.scalars(
                select(AuditLog).where(AuditLog.company_id == t.company_id).order_by(AuditLog.id)
            )
        ).all()
        assert [a.action for a in rows] == ["department.update", "department.delete"]
        assert rows[0].data["changes"] == {"menu_order": [1, 9]}
        assert rows[0].user_id == t.users["admin"] and rows[0].ip == "127.0.0.1"
        seqs = (
            await db.scalars(
                select(Event.seq).where(Event.company_id == t.company_id).order_by(Event.seq)
            )
        ).all()
        assert list(seqs) == [1, 2]


async def test_bad_input_changes_nothing(live: Live) -> None:
    t = await live.tenant()
    bad = [
        {"name": ""},
        {"name": "A", "slug": "Not A Slug"},
        {"name": "A", "business_hours": {"funday": [["08:00", "18:00"]]}},
        {"name": "A", "business_hours": {"mon": [["08:00", "08:00"]]}},
        {"name": "A", "business_hours": {"mon": [["24:00", "08:00"]]}},
        {"name": "A", "business_hours": {"mon": [["8h", "18h"]]}},
        {"name": "A", "timezone": "Mars/Olympus"},
        {"name": "A", "response_timeout_seconds": 1},
        {"name": "A", "unknown_field": 1},
        {"name": "A", "fallback_department_id": "not-a-uuid"},
        {"name": "!!!"},
    ]
    for body in bad:
        r = await t.admin.post("/api/v1/departments", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"].startswith("ERR_") and "Traceback" not in r.text
    r = await t.admin.post("/api/v1/departments", json={"name": "Laboratório"})
    assert r.status_code == 409 and r.json()["error"] == "ERR_CONFLICT"
    r = await t.admin.post(
        "/api/v1/departments", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert len((await t.admin.get("/api/v1/departments")).json()["items"]) == 2


async def test_overnight_hours_are_accepted(live: Live) -> None:
    t = await live.tenant()
    hours = {"mon": [["08:00", "12:00"], ["18:00", "08:00"]], "fri": [["22:00", "06:00"]]}
    r = await t.admin.post("/api/v1/departments", json={"name": "Plantão", "business_hours": hours})
    assert r.status_code == 201, r.text
    assert r.json()["business_hours"] == hours
    got = (await t.admin.get(f"/api/v1/departments/{r.json()['id']}")).json()
    assert got["business_hours"] == hours


async def test_other_company_ids_answer_404(live: Live) -> None:
    a = await live.tenant("A")
    b = await live.tenant("B")
    for method, path, body in [
        ("GET", f"/api/v1/departments/{b.lab_id}", None),
        ("PATCH", f"/api/v1/departments/{b.lab_id}", {"name": "hack"}),
        ("DELETE", f"/api/v1/departments/{b.lab_id}", None),
    ]:
        r = await a.admin.request(method, path, json=body)
        assert r.status_code == 404, (method, path)
    r = await a.admin.post(
        "/api/v1/departments", json={"name": "X", "company_id": str(b.company_id)}
    )
    assert r.status_code == 404
    r = await a.admin.post(
        "/api/v1/departments", json={"name": "X", "fallback_department_id": str(b.lab_id)}
    )
    assert r.status_code == 404
    assert len((await b.admin.get("/api/v1/departments")).json()["items"]) == 2


async def test_global_admin_acts_on_a_named_company(live: Live) -> None:
    t = await live.tenant()
    assert live.root is not None
    r = await live.root.post("/api/v1/departments", json={"name": "Financeiro"})
    assert r.status_code == 400 and r.json()["error"] == "ERR_COMPANY_REQUIRED"
    r = await live.root.post(
        "/api/v1/departments", json={"name": "Financeiro", "company_id": str(t.company_id)}
    )
    assert r.status_code == 201
    assert len((await t.agent.get("/api/v1/departments")).json()["items"]) == 3
