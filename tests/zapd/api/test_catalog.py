"""Categories, tags and quick replies over real HTTP: roles, tenancy, validation, audit."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from tests.zapd.api.conftest import Live
from zapd.db.models import AuditLog, Category, Event, QuickReply, Tag

CAT = "/api/v1/categories"
TAG = "/api/v1/tags"
QR = "/api/v1/quick-replies"


async def _audit(live: Live, company_id: Any, prefix: str) -> list[AuditLog]:
    async with live.kernel.read() as db:
        rows = await db.scalars(
            select(AuditLog)
            .where(AuditLog.company_id == company_id, AuditLog.action.startswith(prefix))
            .order_by(AuditLog.id)
        )
        return list(rows.all())


async def _count(live: Live, model: Any, company_id: Any) -> int:
    async with live.kernel.read() as db:
        n = await db.scalar(
            select(func.count()).select_from(model).where(model.company_id == company_id)
        )
        return int(n or 0)


async def test_categories_crud_roles_and_audit(live: Live) -> None:
    t = await live.tenant()
    r = await t.admin.post(CAT, json={"name": " Resolvido ", "description": "Caso encerrado"})
    assert r.status_code == 201, r.text
    cat = r.json()
    assert cat["name"] == "Resolvido" and cat["active"] is True
    assert (await t.admin.post(CAT, json={"name": "Sem retorno"})).status_code == 201
    # Every role reads; only admins write.
    r = await t.agent.get(CAT)
    assert [c["name"] for c in r.json()] == ["Resolvido", "Sem retorno"]
    assert (await t.agent.get(f"{CAT}/{cat['id']}")).json()["description"] == "Caso encerrado"
    for who in (t.agent, t.supervisor):
        r = await who.post(CAT, json={"name": "X"})
        assert r.status_code == 403 and r.json()["error"] == "ERR_FORBIDDEN"
        assert (await who.patch(f"{CAT}/{cat['id']}", json={"name": "Y"})).status_code == 403
        assert (await who.delete(f"{CAT}/{cat['id']}")).status_code == 403
    # Names are unique per company, whatever the case.
    for name in ("Resolvido", "resolvido"):
        r = await t.admin.post(CAT, json={"name": name})
        assert r.status_code == 409 and r.json()["error"] == "ERR_CONFLICT", name
    r = await t.admin.patch(f"{CAT}/{cat['id']}", json={"name": "Sem retorno"})
    assert r.status_code == 409
    r = await t.admin.patch(f"{CAT}/{cat['id']}", json={"active": False, "description": None})
    assert r.status_code == 200
    assert r.json()["active"] is False and r.json()["description"] is None
    assert r.json()["name"] == "Resolvido"
    assert [c["name"] for c in (await t.agent.get(CAT, params={"active": True})).json()] == [
        "Sem retorno"
    ]
    assert (await t.admin.delete(f"{CAT}/{cat['id']}")).status_code == 204
    assert (await t.admin.get(f"{CAT}/{cat['id']}")).status_code == 404
    rows = await _audit(live, t.company_id, "category.")
    assert [a.action for a in rows] == [
        "category.create",
        "category.create",
        "category.update",
        "category.delete",
    ]
    assert rows[2].data["changes"] == {
        "active": [True, False],
        "description": ["Caso encerrado", None],
    }
    assert rows[0].user_id == t.users["admin"]
    async with live.kernel.read() as db:
        types = (
            await db.scalars(
                select(Event.type).where(Event.company_id == t.company_id).order_by(Event.seq)
            )
        ).all()
    assert list(types) == ["category.update"] * 4


async def test_tags_crud_roles_and_colors(live: Live) -> None:
    t = await live.tenant()
    r = await t.supervisor.post(TAG, json={"name": "VIP", "color": "#FFAA00"})
    assert r.status_code == 201, r.text
    vip = r.json()
    assert vip["color"] == "#ffaa00"
    r = await t.admin.post(TAG, json={"name": "Inadimplente"})
    assert r.status_code == 201 and r.json()["color"] is None
    r = await t.agent.post(TAG, json={"name": "Novo"})
    assert r.status_code == 403
    assert (await t.agent.patch(f"{TAG}/{vip['id']}", json={"color": "#000000"})).status_code == 403
    assert (await t.agent.delete(f"{TAG}/{vip['id']}")).status_code == 403
    assert [x["name"] for x in (await t.agent.get(TAG)).json()] == ["Inadimplente", "VIP"]
    assert (await t.supervisor.post(TAG, json={"name": "vip"})).status_code == 409
    r = await t.supervisor.patch(f"{TAG}/{vip['id']}", json={"color": None, "name": "Cliente VIP"})
    assert r.status_code == 200 and r.json()["color"] is None and r.json()["name"] == "Cliente VIP"
    assert (await t.supervisor.delete(f"{TAG}/{vip['id']}")).status_code == 204
    assert [a.action for a in await _audit(live, t.company_id, "tag.")] == [
        "tag.create",
        "tag.create",
        "tag.update",
        "tag.delete",
    ]


async def test_quick_replies_visibility_search_and_uniqueness(live: Live) -> None:
    t = await live.tenant()
    agent2 = t.clients["agent2"]
    r = await t.admin.post(QR, json={"shortcut": "/ola", "body": "Olá! Como posso ajudar?"})
    assert r.status_code == 201, r.text
    wide = r.json()
    assert wide["shortcut"] == "ola" and wide["department_id"] is None
    assert wide["created_by_id"] == str(t.users["admin"])
    lab = (
        await t.admin.post(
            QR,
            json={
                "shortcut": "exame",
                "body": "Seu exame fica pronto em 2 dias.",
                "department_id": str(t.lab_id),
            },
        )
    ).json()
    sales = (
        await t.admin.post(
            QR,
            json={
                "shortcut": "orcamento",
                "body": "Segue o orçamento.",
                "department_id": str(t.sales_id),
            },
        )
    ).json()
    # The same shortcut may exist once company-wide and once per department.
    r = await t.admin.post(
        QR, json={"shortcut": "ola", "body": "Olá, laboratório!", "department_id": str(t.lab_id)}
    )
    assert r.status_code == 201
    lab_ola = r.json()
    for body in (
        {"shortcut": "ola", "body": "de novo"},
        {"shortcut": "/ola", "body": "de novo"},
        {"shortcut": "exame", "body": "de novo", "department_id": str(t.lab_id)},
    ):
        r = await t.admin.post(QR, json=body)
        assert r.status_code == 409 and r.json()["error"] == "ERR_CONFLICT", body
    # Moving a reply onto a taken (department, shortcut) is a conflict too.
    r = await t.admin.patch(f"{QR}/{lab_ola['id']}", json={"department_id": None})
    assert r.status_code == 409
    r = await t.admin.patch(f"{QR}/{sales['id']}", json={"shortcut": "exame"})
    assert r.status_code == 200  # "exame" is free in Comercial

    def ids(resp: Any) -> set[str]:
        assert resp.status_code == 200, resp.text
        return {x["id"] for x in resp.json()}

    assert ids(await t.agent.get(QR)) == {wide["id"], lab["id"], lab_ola["id"]}
    assert ids(await agent2.get(QR)) == {wide["id"], sales["id"]}
    assert ids(await t.supervisor.get(QR)) == {wide["id"], lab["id"], lab_ola["id"], sales["id"]}
    assert ids(await t.agent.get(QR, params={"q": "/ol"})) == {wide["id"], lab_ola["id"]}
    assert ids(await t.agent.get(QR, params={"q": "OL"})) == {wide["id"], lab_ola["id"]}
    assert ids(await t.agent.get(QR, params={"q": "ex"})) == {lab["id"]}
    assert ids(await t.agent.get(QR, params={"q": "%"})) == set()
    assert ids(await t.supervisor.get(QR, params={"department_id": str(t.sales_id)})) == {
        wide["id"],
        sales["id"],
    }
    # An agent cannot see another department's reply; only admins write.
    assert (await t.agent.get(f"{QR}/{sales['id']}")).status_code == 404
    assert (await agent2.get(f"{QR}/{sales['id']}")).status_code == 200
    for who in (t.agent, t.supervisor):
        assert (await who.post(QR, json={"shortcut": "x", "body": "x"})).status_code == 403
        assert (await who.patch(f"{QR}/{wide['id']}", json={"body": "y"})).status_code == 403
        assert (await who.delete(f"{QR}/{wide['id']}")).status_code == 403
    r = await t.admin.patch(f"{QR}/{wide['id']}", json={"body": "Oi!", "shortcut": "/oi"})
    assert r.status_code == 200 and r.json()["shortcut"] == "oi" and r.json()["body"] == "Oi!"
    assert (await t.admin.delete(f"{QR}/{lab['id']}")).status_code == 204
    assert ids(await t.agent.get(QR)) == {wide["id"], lab_ola["id"]}
    actions = [a.action for a in await _audit(live, t.company_id, "quick_reply.")]
    assert actions == ["quick_reply.create"] * 4 + ["quick_reply.update"] * 2 + [
        "quick_reply.delete"
    ]
    async with live.kernel.read() as db:
        ev = (
            await db.scalars(
                select(Event)
                .where(Event.company_id == t.company_id, Event.type == "quick_reply.update")
                .order_by(Event.seq)
            )
        ).all()
    assert [e.department_id for e in ev[:3]] == [None, t.lab_id, t.sales_id]


async def test_bad_input_is_422_and_changes_nothing(live: Live) -> None:
    t = await live.tenant()
    tag = (await t.admin.post(TAG, json={"name": "VIP"})).json()
    cat = (await t.admin.post(CAT, json={"name": "Resolvido"})).json()
    reply = (await t.admin.post(QR, json={"shortcut": "oi", "body": "Oi"})).json()
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", CAT, {}),
        ("POST", CAT, {"name": ""}),
        ("POST", CAT, {"name": "   "}),
        ("POST", CAT, {"name": "x" * 121}),
        ("POST", CAT, {"name": "A", "description": "x" * 2001}),
        ("POST", CAT, {"name": "A", "colour": "red"}),
        ("POST", CAT, {"name": "A", "active": "maybe"}),
        ("PATCH", f"{CAT}/{cat['id']}", {"name": None}),
        ("PATCH", f"{CAT}/{cat['id']}", {"active": None}),
        ("PATCH", f"{CAT}/{cat['id']}", {"name": "x" * 121}),
        ("PATCH", f"{CAT}/{cat['id']}", {"id": cat["id"]}),
        ("POST", TAG, {"name": "A", "color": "red"}),
        ("POST", TAG, {"name": "A", "color": "#12345"}),
        ("POST", TAG, {"name": "A", "color": "#1234567"}),
        ("POST", TAG, {"name": "A", "color": "#GGGGGG"}),
        ("POST", TAG, {"name": "A", "color": "123456"}),
        ("POST", TAG, {"name": "x" * 81}),
        ("POST", TAG, {"name": "A", "extra": 1}),
        ("PATCH", f"{TAG}/{tag['id']}", {"color": "blue"}),
        ("PATCH", f"{TAG}/{tag['id']}", {"name": None}),
        ("POST", QR, {"shortcut": "Oi", "body": "x"}),
        ("POST", QR, {"shortcut": "o i", "body": "x"}),
        ("POST", QR, {"shortcut": "/", "body": "x"}),
        ("POST", QR, {"shortcut": "//oi", "body": "x"}),
        ("POST", QR, {"shortcut": "olá", "body": "x"}),
        ("POST", QR, {"shortcut": "a" * 65, "body": "x"}),
        ("POST", QR, {"shortcut": "/" + "a" * 65, "body": "x"}),
        ("POST", QR, {"shortcut": "ok", "body": ""}),
        ("POST", QR, {"shortcut": "ok", "body": "x" * 4097}),
        ("POST", QR, {"shortcut": "ok"}),
        ("POST", QR, {"shortcut": "ok", "body": "x", "department_id": "lab"}),
        ("POST", QR, {"shortcut": "ok", "body": "x", "unknown": True}),
        ("PATCH", f"{QR}/{reply['id']}", {"shortcut": None}),
        ("PATCH", f"{QR}/{reply['id']}", {"body": None}),
        ("PATCH", f"{QR}/{reply['id']}", {"shortcut": "NOPE"}),
        ("GET", f"{QR}?q={'a' * 66}", {}),
        ("GET", f"{CAT}/not-a-uuid", {}),
        ("GET", f"{CAT}?active=maybe", {}),
    ]
    for method, path, body in cases:
        r = await t.admin.request(method, path, json=body if method != "GET" else None)
        assert r.status_code == 422, (method, path, body, r.text)
        doc = r.json()
        assert doc["error"] == "ERR_VALIDATION" and doc["message"], doc
        assert "Traceback" not in r.text
    # An id naming no department of the company: 404, like any foreign id.
    for method, path, body in [
        ("POST", QR, {"shortcut": "ok", "body": "x", "department_id": str(t.company_id)}),
        ("PATCH", f"{QR}/{reply['id']}", {"department_id": str(tag["id"])}),
    ]:
        r = await t.admin.request(method, path, json=body)
        assert r.status_code == 404 and r.json()["error"] == "ERR_NOT_FOUND", (path, r.text)
    r = await t.admin.post(TAG, content=b"{oops", headers={"content-type": "application/json"})
    assert r.status_code == 422
    # A 64-character shortcut (plus an optional "/") is fine.
    r = await t.admin.post(QR, json={"shortcut": "/" + "a" * 64, "body": "x"})
    assert r.status_code == 201 and r.json()["shortcut"] == "a" * 64
    assert await _count(live, Category, t.company_id) == 1
    assert await _count(live, Tag, t.company_id) == 1
    assert await _count(live, QuickReply, t.company_id) == 2
    async with live.kernel.read() as db:
        cat_row = await db.get(Category, uuid.UUID(cat["id"]))
        assert cat_row is not None and cat_row.name == "Resolvido" and cat_row.active
        tag_row = await db.get(Tag, uuid.UUID(tag["id"]))
        assert tag_row is not None and tag_row.name == "VIP" and tag_row.color is None
        reply_row = await db.get(QuickReply, uuid.UUID(reply["id"]))
        assert reply_row is not None and reply_row.shortcut == "oi" and reply_row.body == "Oi"
    assert [a.action for a in await _audit(live, t.company_id, "")] == [
        "tag.create",
        "category.create",
        "quick_reply.create",
        "quick_reply.create",
    ]


async def test_other_company_ids_answer_404(live: Live) -> None:
    a = await live.tenant("A")
    b = await live.tenant("B")
    b_cat = (await b.admin.post(CAT, json={"name": "Resolvido"})).json()
    b_tag = (await b.admin.post(TAG, json={"name": "VIP"})).json()
    b_qr = (await b.admin.post(QR, json={"shortcut": "oi", "body": "Oi"})).json()
    for base, row, patch in (
        (CAT, b_cat, {"name": "hack"}),
        (TAG, b_tag, {"name": "hack"}),
        (QR, b_qr, {"body": "hack"}),
    ):
        for method, body in (("GET", None), ("PATCH", patch), ("DELETE", None)):
            r = await a.admin.request(method, f"{base}/{row['id']}", json=body)
            assert r.status_code == 404 and r.json()["error"] == "ERR_NOT_FOUND", (base, method)
        assert (await a.agent.get(f"{base}/{row['id']}")).status_code == 404
        # Naming another company on create is a 404 too.
        body = {"name": "X", "company_id": str(b.company_id)}
        if base == QR:
            body = {"shortcut": "x", "body": "x", "company_id": str(b.company_id)}
        assert (await a.admin.post(base, json=body)).status_code == 404
    # Another company's department is neither a reference nor a filter: 404 both.
    r = await a.admin.post(QR, json={"shortcut": "x", "body": "x", "department_id": str(b.lab_id)})
    assert r.status_code == 404
    a_qr = (await a.admin.post(QR, json={"shortcut": "y", "body": "y"})).json()
    r = await a.admin.patch(f"{QR}/{a_qr['id']}", json={"department_id": str(b.lab_id)})
    assert r.status_code == 404
    r = await a.admin.get(QR, params={"department_id": str(b.lab_id)})
    assert r.status_code == 404
    r = await a.admin.get(CAT, params={"company_id": str(b.company_id)})
    assert r.status_code == 404
    # Listings never leak across companies; B's rows are untouched.
    assert (await a.agent.get(CAT)).json() == []
    assert (await a.agent.get(TAG)).json() == []
    assert [x["id"] for x in (await a.agent.get(QR)).json()] == [a_qr["id"]]
    assert (await b.admin.get(f"{CAT}/{b_cat['id']}")).json()["name"] == "Resolvido"
    assert (await b.admin.get(f"{TAG}/{b_tag['id']}")).json()["name"] == "VIP"
    assert (await b.admin.get(f"{QR}/{b_qr['id']}")).json()["body"] == "Oi"


async def test_global_admin_names_the_company(live: Live) -> None:
    t = await live.tenant()
    assert live.root is not None
    r = await live.root.post(TAG, json={"name": "VIP"})
    assert r.status_code == 400 and r.json()["error"] == "ERR_COMPANY_REQUIRED"
    cid = str(t.company_id)
    assert (await live.root.post(TAG, json={"name": "VIP", "company_id": cid})).status_code == 201
    assert (await live.root.post(CAT, json={"name": "Ok", "company_id": cid})).status_code == 201
    r = await live.root.post(
        QR,
        json={"shortcut": "oi", "body": "Oi", "department_id": str(t.lab_id), "company_id": cid},
    )
    assert r.status_code == 201
    assert [x["name"] for x in (await t.agent.get(TAG)).json()] == ["VIP"]
    assert len((await t.agent.get(QR)).json()) == 1
    r = await live.root.get(TAG, params={"company_id": cid})
    assert [x["name"] for x in r.json()] == ["VIP"]
