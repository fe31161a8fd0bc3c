"""Clients over real HTTP: create with phone rules, search, pagination, edits, tags."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from shared.enums import ClientIdentityKind
from tests.zapd.api.conftest import Live, Tenant
from zapd.db.models import AuditLog, Client, ClientIdentity, Event

CL = "/api/v1/clients"


async def _add(t: Tenant, phone: str, **fields: Any) -> dict[str, Any]:
    r = await t.agent.post(CL, json={"phone": phone, **fields})
    assert r.status_code == 201, r.text
    doc: dict[str, Any] = r.json()
    return doc


async def _audit(live: Live, company_id: Any, prefix: str = "client.") -> list[AuditLog]:
    async with live.kernel.read() as db:
        rows = await db.scalars(
            select(AuditLog)
            .where(AuditLog.company_id == company_id, AuditLog.action.startswith(prefix))
            .order_by(AuditLog.id)
        )
        return list(rows.all())


async def _client_count(live: Live, company_id: Any) -> int:
    async with live.kernel.read() as db:
        n = await db.scalar(
            select(func.count()).select_from(Client).where(Client.company_id == company_id)
        )
        return int(n or 0)


async def test_create_normalizes_phone_and_records_identities(live: Live) -> None:
    t = await live.tenant()
    c = await _add(
        t,
        "(11) 98123-4567",
        name="João da Silva",
        email="Joao@Example.com",
        custom_fields={"plano": "ouro", "pontos": 120, "ativo": True, "saldo": 10.5},
    )
    assert c["phone"] == "+5511981234567" and c["name"] == "João da Silva"
    assert c["blocked"] is False and c["tag_ids"] == []
    assert c["custom_fields"] == {"plano": "ouro", "pontos": 120, "ativo": True, "saldo": 10.5}
    assert c["email"].lower() == "joao@example.com"
    landline = await _add(t, "11 3456-7890")
    assert landline["phone"] == "+551134567890"
    async with live.kernel.read() as db:
        ids = (
            await db.execute(
                select(ClientIdentity.client_id, ClientIdentity.kind, ClientIdentity.value)
                .where(ClientIdentity.company_id == t.company_id)
                .order_by(ClientIdentity.client_id, ClientIdentity.kind)
            )
        ).all()
    assert [(str(a), k, v) for a, k, v in ids] == [
        (c["id"], ClientIdentityKind.PHONE, "+5511981234567"),
        (c["id"], ClientIdentityKind.PHONE_ALT, "+551181234567"),
        (landline["id"], ClientIdentityKind.PHONE, "+551134567890"),
    ]
    rows = await _audit(live, t.company_id)
    assert [a.action for a in rows] == ["client.create", "client.create"]
    assert rows[0].user_id == t.users["agent"]
    assert rows[0].data["changes"]["phone"] == [None, "+5511981234567"]
    async with live.kernel.read() as db:
        events = (
            await db.scalars(
                select(Event).where(Event.company_id == t.company_id).order_by(Event.seq)
            )
        ).all()
    assert [(e.type, e.data["action"], e.department_id) for e in events] == [
        ("client.update", "create", None)
    ] * 2
    assert events[0].data["id"] == c["id"]
    got = (await t.clients["agent2"].get(f"{CL}/{c['id']}")).json()
    assert got["id"] == c["id"] and got["phone"] == "+5511981234567"


async def test_duplicate_phones_conflict_in_every_spelling(live: Live) -> None:
    t = await live.tenant()
    old = await _add(t, "+55 11 8123-4567")  # the pre-2016 form is stored canonically
    assert old["phone"] == "+5511981234567"
    for phone in ("+55 11 98123-4567", "5511981234567", "(11) 8123-4567", "+551181234567"):
        r = await t.agent.post(CL, json={"phone": phone})
        assert r.status_code == 409 and r.json()["error"] == "ERR_CONFLICT", phone
        assert old["id"] in r.json()["message"]
    await _add(t, "+55 21 98765-4321")
    r = await t.agent.post(CL, json={"phone": "+55 21 8765-4321"})
    assert r.status_code == 409
    # A client known only by an identity (e.g. created from a LID contact) also collides.
    async with live.kernel.tx() as db:
        ghost = Client(company_id=t.company_id, phone=None, lid="123456789@lid")
        db.add(ghost)
        await db.flush()
        db.add(
            ClientIdentity(
                company_id=t.company_id,
                client_id=ghost.id,
                kind=ClientIdentityKind.PHONE_ALT,
                value="+551176543210",
            )
        )
    r = await t.agent.post(CL, json={"phone": "11 97654-3210"})
    assert r.status_code == 409 and str(ghost.id) in r.json()["message"]
    # Another company may have the same number.
    other = await live.tenant("Outra")
    assert (await other.agent.post(CL, json={"phone": "+5511981234567"})).status_code == 201
    assert await _client_count(live, t.company_id) == 3


async def test_bad_input_is_422_and_changes_nothing(live: Live) -> None:
    t = await live.tenant()
    c = await _add(t, "+5511912345678", name="Ana")
    tag = (await t.admin.post("/api/v1/tags", json={"name": "VIP"})).json()
    path = f"{CL}/{c['id']}"
    cases: list[tuple[str, str, Any]] = [
        ("POST", CL, {"phone": "abc"}),
        ("POST", CL, {"phone": "123"}),
        ("POST", CL, {"phone": ""}),
        ("POST", CL, {"phone": "   "}),
        ("POST", CL, {"phone": "+55 11 91234-5678 ramal 2"}),
        ("POST", CL, {"phone": "9" * 41}),
        ("POST", CL, {}),
        ("POST", CL, {"phone": 5511912345678}),
        ("POST", CL, {"phone": "+5511900000002", "name": "x" * 201}),
        ("POST", CL, {"phone": "+5511900000002", "name": "  "}),
        ("POST", CL, {"phone": "+5511900000002", "email": "not-an-email"}),
        ("POST", CL, {"phone": "+5511900000002", "email": "a@"}),
        ("POST", CL, {"phone": "+5511900000002", "notes": "x" * 10_001}),
        ("POST", CL, {"phone": "+5511900000002", "blocked": True}),
        ("POST", CL, {"phone": "+5511900000002", "wa_user_id": "x@s.whatsapp.net"}),
        ("POST", CL, {"phone": "+5511900000002", "custom_fields": {"a": {"b": 1}}}),
        ("POST", CL, {"phone": "+5511900000002", "custom_fields": {"a": [1]}}),
        ("POST", CL, {"phone": "+5511900000002", "custom_fields": {"a": None}}),
        ("POST", CL, {"phone": "+5511900000002", "custom_fields": {"": 1}}),
        ("POST", CL, {"phone": "+5511900000002", "custom_fields": {"k" * 65: 1}}),
        ("POST", CL, {"phone": "+5511900000002", "custom_fields": {"a": "x" * 1001}}),
        ("POST", CL, {"phone": "+5511900000002", "custom_fields": {str(i): i for i in range(51)}}),
        ("POST", CL, {"phone": "+5511900000002", "custom_fields": ["a"]}),
        ("PATCH", path, {"phone": "+5511900000003"}),
        ("PATCH", path, {"email": "nope"}),
        ("PATCH", path, {"name": "x" * 201}),
        ("PATCH", path, {"custom_fields": None}),
        ("PATCH", path, {"custom_fields": {"a": {"nested": True}}}),
        ("PATCH", path, {"blocked": None}),
        ("PATCH", path, {"blocked": "sometimes"}),
        ("PATCH", path, {"profile_name": "x"}),
        ("PUT", f"{path}/tags", {"tag_ids": "all"}),
        ("PUT", f"{path}/tags", {"tag_ids": ["not-a-uuid"]}),
        ("PUT", f"{path}/tags", {"tag_ids": [str(uuid.uuid4()) for _ in range(51)]}),
        ("PUT", f"{path}/tags", {"tag_ids": [tag["id"]], "extra": 1}),
        ("PUT", f"{path}/tags", {}),
        ("GET", f"{CL}?q={'a' * 201}", None),
        ("GET", f"{CL}?blocked=perhaps", None),
        ("GET", f"{CL}?tag_id=vip", None),
        ("GET", f"{CL}?limit=0", None),
        ("GET", f"{CL}?limit=201", None),
        ("GET", f"{CL}?order=sideways", None),
        ("GET", f"{CL}?cursor=%21%21%21", None),
        ("GET", f"{CL}/123", None),
    ]
    for method, url, body in cases:
        r = await t.admin.request(method, url, json=body)
        assert r.status_code == 422, (method, url, body, r.text)
        doc = r.json()
        assert doc["error"] in ("ERR_VALIDATION", "ERR_BAD_CURSOR") and doc["message"], doc
        assert "Traceback" not in r.text
    r = await t.admin.put(f"{path}/tags", json={"tag_ids": [str(uuid.uuid4())]})
    assert r.status_code == 404 and r.json()["error"] == "ERR_NOT_FOUND"  # no such tag
    r = await t.agent.post(CL, json={"phone": "abc"})
    assert "invalid phone" in r.json()["message"]
    r = await t.agent.post(CL, content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert await _client_count(live, t.company_id) == 1
    got = (await t.agent.get(path)).json()
    assert got["name"] == "Ana" and got["email"] is None and got["custom_fields"] == {}
    assert got["blocked"] is False and got["tag_ids"] == []
    assert [a.action for a in await _audit(live, t.company_id)] == ["client.create"]


async def test_edit_block_and_roles(live: Live) -> None:
    t = await live.tenant()
    c = await _add(t, "+5511912345678", name="Ana", custom_fields={"a": 1})
    path = f"{CL}/{c['id']}"
    r = await t.agent.patch(
        path, json={"name": "Ana Souza", "email": "ana@example.com", "notes": "Prefere manhã"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Ana Souza" and r.json()["custom_fields"] == {"a": 1}
    r = await t.agent.patch(path, json={"custom_fields": {"b": "x"}, "email": None})
    assert r.json()["custom_fields"] == {"b": "x"} and r.json()["email"] is None
    # Agents may not block.
    r = await t.agent.patch(path, json={"blocked": True})
    assert r.status_code == 403 and r.json()["error"] == "ERR_FORBIDDEN"
    r = await t.agent.patch(path, json={"blocked": True, "name": "Sneaky"})
    assert r.status_code == 403
    got = (await t.agent.get(path)).json()
    assert got["blocked"] is False and got["name"] == "Ana Souza"
    r = await t.supervisor.patch(path, json={"blocked": True})
    assert r.status_code == 200 and r.json()["blocked"] is True
    r = await t.supervisor.patch(path, json={"blocked": True})  # no change, no audit
    assert r.status_code == 200
    assert [x["id"] for x in (await t.agent.get(CL, params={"blocked": True})).json()["items"]] == [
        c["id"]
    ]
    assert (await t.agent.get(CL, params={"blocked": False})).json()["items"] == []
    r = await t.admin.patch(path, json={"blocked": False, "notes": None})
    assert r.status_code == 200 and r.json()["blocked"] is False and r.json()["notes"] is None
    rows = await _audit(live, t.company_id)
    assert [a.action for a in rows] == [
        "client.create",
        "client.update",
        "client.update",
        "client.block",
        "client.update",
        "client.unblock",
    ]
    assert rows[1].data["changes"] == {
        "email": [None, "ana@example.com"],
        "name": ["Ana", "Ana Souza"],
        "notes": [None, "Prefere manhã"],
    }
    assert rows[2].data["changes"] == {
        "custom_fields": [{"a": 1}, {"b": "x"}],
        "email": ["ana@example.com", None],
    }
    assert rows[3].data["changes"] == {"blocked": [False, True]}
    assert rows[3].user_id == t.users["supervisor"]
    assert rows[5].user_id == t.users["admin"]
    async with live.kernel.read() as db:
        actions = (
            await db.scalars(
                select(Event.data).where(Event.company_id == t.company_id).order_by(Event.seq)
            )
        ).all()
    assert [d["action"] for d in actions] == [
        "create",
        "update",
        "update",
        "block",
        "update",
        "unblock",
    ]


async def test_client_tags(live: Live) -> None:
    t = await live.tenant()
    other = await live.tenant("Outra")
    vip = (await t.supervisor.post("/api/v1/tags", json={"name": "VIP"})).json()["id"]
    late = (await t.supervisor.post("/api/v1/tags", json={"name": "Atrasado"})).json()["id"]
    foreign = (await other.supervisor.post("/api/v1/tags", json={"name": "VIP"})).json()["id"]
    a = await _add(t, "+5511912345678")
    b = await _add(t, "+5511912345679")
    r = await t.agent.put(f"{CL}/{a['id']}/tags", json={"tag_ids": [vip, late, vip]})
    assert r.status_code == 200, r.text
    assert r.json()["tag_ids"] == [vip, late]
    assert (await t.agent.get(f"{CL}/{a['id']}")).json()["tag_ids"] == [vip, late]
    await t.agent.put(f"{CL}/{b['id']}/tags", json={"tag_ids": [late]})
    r = await t.agent.get(CL, params={"tag_id": vip})
    assert [x["id"] for x in r.json()["items"]] == [a["id"]]
    r = await t.agent.get(CL, params={"tag_id": late, "order": "asc"})
    assert [x["id"] for x in r.json()["items"]] == [a["id"], b["id"]]
    assert r.json()["items"][0]["tag_ids"] == [vip, late]
    # Tags of another company: 404 (like any foreign id), and nothing changes.
    r = await t.agent.put(f"{CL}/{a['id']}/tags", json={"tag_ids": [late, foreign]})
    assert r.status_code == 404 and r.json()["error"] == "ERR_NOT_FOUND"
    assert (await t.agent.get(f"{CL}/{a['id']}")).json()["tag_ids"] == [vip, late]
    assert (await t.agent.get(CL, params={"tag_id": foreign})).status_code == 404
    r = await t.agent.put(f"{CL}/{a['id']}/tags", json={"tag_ids": [late]})
    assert r.json()["tag_ids"] == [late]
    r = await t.agent.put(f"{CL}/{a['id']}/tags", json={"tag_ids": [late]})  # no-op
    assert r.status_code == 200
    r = await t.agent.put(f"{CL}/{a['id']}/tags", json={"tag_ids": []})
    assert r.status_code == 200 and r.json()["tag_ids"] == []
    # Deleting a tag takes it off every client.
    assert (await t.supervisor.delete(f"/api/v1/tags/{late}")).status_code == 204
    assert (await t.agent.get(f"{CL}/{b['id']}")).json()["tag_ids"] == []
    rows = await _audit(live, t.company_id, "client.tags")
    # a: set, b: set, a: trimmed, (a: no-op, no row), a: cleared.
    assert [str(x.entity_id) for x in rows] == [a["id"], b["id"], a["id"], a["id"]]
    assert rows[0].data["changes"] == {"tag_ids": [[], sorted([vip, late])]}
    assert rows[0].data["added"] == [vip, late] and rows[0].user_id == t.users["agent"]
    assert rows[2].data["removed"] == [vip]
    assert rows[3].data["changes"] == {"tag_ids": [[late], []]}


async def test_search_by_name_and_phone(live: Live) -> None:
    t = await live.tenant()
    joao = await _add(t, "+5511912345678", name="João da Silva")
    maria = await _add(t, "+55 21 98765-4321", name="Maria Conceição")
    ana = await _add(t, "+55 31 3333-4444", name="ANA PAULA")
    async with live.kernel.tx() as db:
        ze = Client(company_id=t.company_id, phone=None, profile_name="Zé Ninguém 100%")
        db.add(ze)
        await db.flush()
        ze_id = str(ze.id)
    # Decomposed (NFD) accents in stored names fold too.
    nfd = await _add(t, "+5511912340000", name="Jose\u0301 Antônio")

    async def found(q: str) -> set[str]:
        r = await t.agent.get(CL, params={"q": q})
        assert r.status_code == 200, r.text
        return {x["id"] for x in r.json()["items"]}

    assert await found("joao") == {joao["id"]}
    assert await found("JOÃO") == {joao["id"]}
    assert await found("silva") == {joao["id"]}
    assert await found("conceicao") == {maria["id"]}
    assert await found("Conceição") == {maria["id"]}
    assert await found("ana paula") == {ana["id"]}
    assert await found("ninguem") == {ze_id}
    assert await found("jose antonio") == {nfd["id"]}
    assert await found("José") == {nfd["id"]}
    assert await found("100%") == {ze_id}
    assert await found("%") == set()  # not a wildcard; names are searched by their words
    assert await found("_") == set()
    assert await found("91234") == {joao["id"], nfd["id"]}
    assert await found("+55 11 91234-5678") == {joao["id"]}
    assert await found("(21) 98765") == {maria["id"]}
    assert await found("8765-4321") == {maria["id"]}
    assert await found("21 8765-4321") == {maria["id"]}  # old 8-digit form, via identity
    assert await found("3333") == {ana["id"]}
    assert await found("xyz") == set()
    assert await found("   ") == {joao["id"], maria["id"], ana["id"], ze_id, nfd["id"]}
    r = await t.agent.get(CL, params={"q": "joao", "blocked": True})
    assert r.json()["items"] == []


async def test_pagination_walk_without_dupes_or_gaps(live: Live) -> None:
    t = await live.tenant()
    created = [(await _add(t, f"+55 11 97000-{i:04d}"))["id"] for i in range(7)]
    for order, expected in (("asc", created), ("desc", created[::-1])):
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 3, "order": order}
            if cursor:
                params["cursor"] = cursor
            r = await t.agent.get(CL, params=params)
            assert r.status_code == 200, r.text
            page = r.json()
            seen += [x["id"] for x in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == expected and pages == 3, order
    r = await t.agent.get(CL, params={"q": "97000", "limit": 5, "order": "asc"})
    assert [x["id"] for x in r.json()["items"]] == created[:5]
    r = await t.agent.get(
        CL, params={"q": "97000", "limit": 5, "order": "asc", "cursor": r.json()["next_cursor"]}
    )
    assert [x["id"] for x in r.json()["items"]] == created[5:]
    assert r.json()["next_cursor"] is None


async def test_other_company_ids_answer_404(live: Live) -> None:
    a = await live.tenant("A")
    b = await live.tenant("B")
    theirs = await _add(b, "+5511912345678", name="Cliente B")
    path = f"{CL}/{theirs['id']}"
    for who in (a.admin, a.supervisor, a.agent):
        for method, url, body in (
            ("GET", path, None),
            ("PATCH", path, {"name": "hack"}),
            ("PUT", f"{path}/tags", {"tag_ids": []}),
        ):
            r = await who.request(method, url, json=body)
            assert r.status_code == 404 and r.json()["error"] == "ERR_NOT_FOUND", (method, url)
    r = await a.supervisor.patch(path, json={"blocked": True})
    assert r.status_code == 404
    r = await a.agent.post(CL, json={"phone": "+5511999990000", "company_id": str(b.company_id)})
    assert r.status_code == 404
    r = await a.admin.get(CL, params={"company_id": str(b.company_id)})
    assert r.status_code == 404
    # The same phone is free in A; A's listing never shows B's clients.
    mine = await _add(a, "+5511912345678")
    r = await a.agent.get(CL, params={"q": "91234"})
    assert [x["id"] for x in r.json()["items"]] == [mine["id"]]
    got = (await b.agent.get(path)).json()
    assert got["name"] == "Cliente B" and got["blocked"] is False
    assert [x.action for x in await _audit(live, b.company_id)] == ["client.create"]


async def test_global_admin_names_the_company(live: Live) -> None:
    t = await live.tenant()
    assert live.root is not None
    r = await live.root.post(CL, json={"phone": "+5511912345678"})
    assert r.status_code == 400 and r.json()["error"] == "ERR_COMPANY_REQUIRED"
    r = await live.root.post(CL, json={"phone": "+5511912345678", "company_id": str(t.company_id)})
    assert r.status_code == 201 and r.json()["company_id"] == str(t.company_id)
    r = await live.root.patch(f"{CL}/{r.json()['id']}", json={"blocked": True})
    assert r.status_code == 200 and r.json()["blocked"] is True
    r = await live.root.get(CL, params={"company_id": str(t.company_id)})
    assert len(r.json()["items"]) == 1
