"""Companies over real HTTP: CNPJ rules, roles, tenancy, settings, disabling, deletion."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from sqlalchemy import func, select

from shared.enums import Role
from shared.errors import CloseCode
from tests.zapd.api.conftest import PASSWORD, Live, new_cnpj
from tests.zapd.api.test_conversation import connected_session
from zapd.db.models import (
    AuditLog,
    Client,
    Company,
    Event,
    Message,
    Ticket,
    User,
    WebhookEvent,
)
from zapd.kernel.principal import Principal

VALID_CNPJ = "11.222.333/0001-81"


def fmt(cnpj: str) -> str:
    return f"{cnpj[:2]}.{cnpj[2:5]}.{cnpj[5:8]}/{cnpj[8:12]}-{cnpj[12:]}"


async def _count_companies(live: Live) -> int:
    async with live.kernel.read() as db:
        return int(await db.scalar(select(func.count()).select_from(Company)) or 0)


async def test_global_admin_creates_and_reads(live: Live) -> None:
    assert live.root is not None
    r = await live.root.post(
        "/api/v1/companies",
        json={
            "name": "  Clínica Vida  ",
            "cnpj": VALID_CNPJ,
            "timezone": "America/Manaus",
            "locale": "en",
            "settings": {"menu_max_attempts": 5},
        },
    )
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["name"] == "Clínica Vida"
    assert c["cnpj"] == "11222333000181" and c["cnpj_formatted"] == VALID_CNPJ
    assert c["timezone"] == "America/Manaus" and c["locale"] == "en" and c["active"] is True
    assert c["settings"] == {
        "agent_name_prefix": True,
        "reopen_window_minutes": 15,
        "returning_client_days": 30,
        "menu_max_attempts": 5,
    }
    r = await live.root.post("/api/v1/companies", json={"name": "Padrão", "cnpj": new_cnpj()})
    assert r.status_code == 201
    assert r.json()["timezone"] == "America/Sao_Paulo" and r.json()["locale"] == "pt_BR"
    got = (await live.root.get(f"/api/v1/companies/{c['id']}")).json()
    assert got == c
    listed = (await live.root.get("/api/v1/companies", params={"q": "vida"})).json()
    assert [x["id"] for x in listed["items"]] == [c["id"]]
    listed = (await live.root.get("/api/v1/companies", params={"q": "11.222.333"})).json()
    assert [x["id"] for x in listed["items"]] == [c["id"]]
    async with live.kernel.read() as db:
        row = (
            await db.scalars(select(AuditLog).where(AuditLog.action == "company.create"))
        ).first()
        assert row is not None and row.entity_id == uuid.UUID(c["id"])
        assert row.data["changes"]["cnpj"] == [None, "11222333000181"]


async def test_bad_cnpj_and_bad_input_answer_422(live: Live) -> None:
    assert live.root is not None
    before = await _count_companies(live)
    bad_cnpjs = {
        "11.222.333/0001-82": "check digits",
        "11111111111111": "identical",
        "1122233300018": "14 characters",
        "112223330001811": "14 characters",
        "11.222.333/0001-8A": "must be digits",
        "12.ABC.345/01DE-36": "check digits",
        "12.ÀBC.345/01DE-35": "other than 0-9 and A-Z",
        "": "",
    }
    for cnpj, why in bad_cnpjs.items():
        r = await live.root.post("/api/v1/companies", json={"name": "X", "cnpj": cnpj})
        assert r.status_code == 422, (cnpj, r.text)
        body = r.json()
        assert body["error"] == "ERR_VALIDATION" and "Traceback" not in r.text
        assert why in body["message"] and "cnpj" in body["message"], body
    ok = new_cnpj()
    for extra in (
        {"timezone": "Mars/Olympus"},
        {"locale": "fr"},
        {"settings": {"unknown_key": True}},
        {"settings": {"menu_max_attempts": 0}},
        {"settings": {"reopen_window_minutes": -1}},
        {"settings": {"agent_name_prefix": "maybe"}},
        {"active": False},
        {"surprise": 1},
        {"name": "   "},
        {"name": "x" * 201},
    ):
        r = await live.root.post("/api/v1/companies", json={"name": "X", "cnpj": ok, **extra})
        assert r.status_code == 422, (extra, r.text)
        assert r.json()["error"] == "ERR_VALIDATION"
    assert await _count_companies(live) == before
    # The same CNPJ, written another way, is a duplicate.
    assert (
        await live.root.post("/api/v1/companies", json={"name": "A", "cnpj": ok})
    ).status_code == 201
    r = await live.root.post("/api/v1/companies", json={"name": "B", "cnpj": fmt(ok)})
    assert r.status_code == 409 and r.json()["error"] == "ERR_CNPJ_TAKEN"
    assert await _count_companies(live) == before + 1


async def test_alphanumeric_cnpj_is_accepted_formatted_and_searchable(live: Live) -> None:
    assert live.root is not None
    r = await live.root.post(
        "/api/v1/companies", json={"name": "Nova Era", "cnpj": "12.abc.345/01de-35"}
    )
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["cnpj"] == "12ABC34501DE35" and c["cnpj_formatted"] == "12.ABC.345/01DE-35"
    for q in ("12.ABC.345", "12abc345", "01DE-35"):
        listed = (await live.root.get("/api/v1/companies", params={"q": q})).json()
        assert [x["id"] for x in listed["items"]] == [c["id"]], q
    # The same CNPJ unmasked is a duplicate; a digits-only CNPJ still works beside it.
    r = await live.root.post("/api/v1/companies", json={"name": "Dup", "cnpj": "12ABC34501DE35"})
    assert r.status_code == 409 and r.json()["error"] == "ERR_CNPJ_TAKEN"
    r = await live.root.post("/api/v1/companies", json={"name": "Old", "cnpj": VALID_CNPJ})
    assert r.status_code == 201
    r = await live.root.patch(f"/api/v1/companies/{c['id']}", json={"cnpj": "A1B2C3D4E5F6" + "00"})
    assert r.status_code == 422 and "check digits" in r.json()["message"]


async def test_roles_and_company_admin_self_service(live: Live) -> None:
    assert live.root is not None
    t = await live.tenant()
    cid = t.company_id
    # Creating and deleting companies is for global admins only.
    for client in (t.admin, t.supervisor, t.agent):
        r = await client.post("/api/v1/companies", json={"name": "X", "cnpj": new_cnpj()})
        assert r.status_code == 403, r.text
        assert (await client.delete(f"/api/v1/companies/{cid}")).status_code == 403
    for client in (t.supervisor, t.agent):
        r = await client.patch(f"/api/v1/companies/{cid}", json={"name": "Hack"})
        assert r.status_code == 403 and r.json()["error"] == "ERR_FORBIDDEN"
    # Everyone reads their own company; the listing holds only it.
    for client in (t.admin, t.supervisor, t.agent):
        assert (await client.get(f"/api/v1/companies/{cid}")).status_code == 200
        page = (await client.get("/api/v1/companies")).json()
        assert [x["id"] for x in page["items"]] == [str(cid)] and page["next_cursor"] is None
    # A company admin changes name, zone, locale and settings (merged key by key)...
    r = await t.admin.patch(
        f"/api/v1/companies/{cid}",
        json={
            "name": "Acme Nova",
            "timezone": "America/Recife",
            "locale": "en",
            "settings": {"agent_name_prefix": False},
        },
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["name"] == "Acme Nova" and out["timezone"] == "America/Recife"
    assert out["settings"]["agent_name_prefix"] is False
    r = await t.admin.patch(
        f"/api/v1/companies/{cid}", json={"settings": {"returning_client_days": 7}}
    )
    assert r.json()["settings"]["agent_name_prefix"] is False
    assert r.json()["settings"]["returning_client_days"] == 7
    # ...but neither the CNPJ nor the active flag.
    for body in ({"cnpj": new_cnpj()}, {"active": False}, {"name": "Z", "active": True}):
        r = await t.admin.patch(f"/api/v1/companies/{cid}", json=body)
        assert r.status_code == 403, body
    for body in (
        {"timezone": "Nowhere/Land"},
        {"settings": {"menu_max_attempts": 11}},
        {"settings": {"nope": 1}},
        {"name": None},
        {"cnpj_formatted": "x"},
    ):
        r = await t.admin.patch(f"/api/v1/companies/{cid}", json=body)
        assert r.status_code == 422, body
    got = (await t.agent.get(f"/api/v1/companies/{cid}")).json()
    assert got["name"] == "Acme Nova" and got["active"] is True
    # The global admin changes the CNPJ; a taken one is a conflict.
    other = new_cnpj()
    r = await live.root.patch(f"/api/v1/companies/{cid}", json={"cnpj": fmt(other)})
    assert r.status_code == 200 and r.json()["cnpj"] == other
    r2 = await live.root.post("/api/v1/companies", json={"name": "B", "cnpj": new_cnpj()})
    r = await live.root.patch(f"/api/v1/companies/{r2.json()['id']}", json={"cnpj": other})
    assert r.status_code == 409 and r.json()["error"] == "ERR_CNPJ_TAKEN"
    r = await live.root.patch(f"/api/v1/companies/{cid}", json={"cnpj": "00000000000000"})
    assert r.status_code == 422
    async with live.kernel.read() as db:
        rows = (
            await db.scalars(
                select(AuditLog)
                .where(AuditLog.company_id == cid, AuditLog.action == "company.update")
                .order_by(AuditLog.id)
            )
        ).all()
        assert len(rows) == 3
        assert rows[0].user_id == t.users["admin"]
        assert rows[0].data["changes"]["name"][1] == "Acme Nova"
        assert rows[0].data["changes"]["locale"] == ["pt_BR", "en"]
        assert rows[1].data["changes"]["settings"][1]["returning_client_days"] == 7
        assert rows[2].user_id is not None and rows[2].data["changes"]["cnpj"][1] == other
        types = (await db.scalars(select(Event.type).where(Event.company_id == cid))).all()
        assert list(types) == ["company.update"] * 3


async def test_other_company_ids_answer_404(live: Live) -> None:
    a = await live.tenant("A")
    b_id = uuid.UUID((await _root_create(live, "B"))["id"])
    for client in (a.admin, a.agent):
        for method, body in (("GET", None), ("PATCH", {"name": "hack"}), ("DELETE", None)):
            r = await client.request(method, f"/api/v1/companies/{b_id}", json=body)
            assert r.status_code == 404, (method, r.text)
            assert r.json()["error"] == "ERR_NOT_FOUND"
    r = await a.admin.get(f"/api/v1/companies/{uuid.uuid4()}")
    assert r.status_code == 404
    async with live.kernel.read() as db:
        b = await db.get(Company, b_id)
        assert b is not None and b.name == "B"


async def _root_create(live: Live, name: str) -> dict[str, object]:
    assert live.root is not None
    r = await live.root.post("/api/v1/companies", json={"name": name, "cnpj": new_cnpj()})
    assert r.status_code == 201, r.text
    out: dict[str, object] = r.json()
    return out


async def test_disabling_a_company_locks_its_users_out(live: Live) -> None:
    assert live.root is not None
    t = await live.tenant()
    sub = live.daemon.hub.subscribe(
        Principal(user_id=t.users["agent"], company_id=t.company_id, role=Role.AGENT, name="a")
    )
    bystander = live.daemon.hub.subscribe(
        Principal(user_id=uuid.uuid4(), company_id=uuid.uuid4(), role=Role.AGENT, name="b")
    )
    r = await live.root.patch(f"/api/v1/companies/{t.company_id}", json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    for client in (t.admin, t.supervisor, t.agent):
        r = await client.get("/api/v1/auth/me")
        assert r.status_code == 401 and r.json()["error"] == "ERR_ACCOUNT_DISABLED"
    r = await live.client().post(
        "/api/v1/auth/login", json={"email": t.emails["agent"], "password": PASSWORD}
    )
    assert r.status_code == 401
    assert sub.closing.is_set() and sub.close_code == CloseCode.UNAUTHORIZED
    assert not bystander.closing.is_set()
    # The global admin still sees it, and turns it back on.
    assert (await live.root.get(f"/api/v1/companies/{t.company_id}")).status_code == 200
    r = await live.root.patch(f"/api/v1/companies/{t.company_id}", json={"active": True})
    assert r.status_code == 200
    assert (await t.agent.get("/api/v1/auth/me")).status_code == 200
    live.daemon.hub.unsubscribe(sub)
    live.daemon.hub.unsubscribe(bystander)


async def test_delete_refuses_a_company_with_history_unless_forced(live: Live) -> None:
    assert live.root is not None
    t = await live.tenant()
    empty = await _root_create(live, "Vazia")
    r = await live.root.delete(f"/api/v1/companies/{empty['id']}")
    assert r.status_code == 204
    assert (await live.root.get(f"/api/v1/companies/{empty['id']}")).status_code == 404
    async with live.kernel.tx() as db:
        client = Client(company_id=t.company_id, phone="+5511999990000")
        db.add(client)
        await db.flush()
        db.add(Ticket(company_id=t.company_id, number=1, client_id=client.id))
    r = await live.root.delete(f"/api/v1/companies/{t.company_id}")
    assert r.status_code == 409 and r.json()["error"] == "ERR_COMPANY_NOT_EMPTY"
    assert (await t.agent.get("/api/v1/auth/me")).status_code == 200
    sub = live.daemon.hub.subscribe(
        Principal(user_id=t.users["admin"], company_id=t.company_id, role=Role.ADMIN, name="a")
    )
    r = await live.root.delete(f"/api/v1/companies/{t.company_id}", params={"force": "true"})
    assert r.status_code == 204
    assert (await t.agent.get("/api/v1/auth/me")).status_code == 401
    assert sub.closing.is_set()
    live.daemon.hub.unsubscribe(sub)
    async with live.kernel.read() as db:
        assert await db.scalar(select(User.id).where(User.company_id == t.company_id)) is None
        assert await db.scalar(select(Ticket.id).where(Ticket.company_id == t.company_id)) is None
        rows = (await db.scalars(select(AuditLog).where(AuditLog.action == "company.delete"))).all()
        assert {r.entity_id for r in rows} == {uuid.UUID(str(empty["id"])), t.company_id}
        assert all(r.company_id is None for r in rows)
        forced = next(r for r in rows if r.entity_id == t.company_id)
        assert forced.data["force"] is True
        assert forced.data["changes"]["cnpj"][0] is not None


async def test_pagination_walks_every_company_once(live: Live) -> None:
    assert live.root is not None
    ids = [str((await _root_create(live, f"C{i}"))["id"]) for i in range(7)]
    for order in ("asc", "desc"):
        seen: list[str] = []
        cursor = None
        for _ in range(10):
            params = {"limit": "3", "order": order}
            if cursor:
                params["cursor"] = cursor
            page = (await live.root.get("/api/v1/companies", params=params)).json()
            seen += [x["id"] for x in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == (ids if order == "asc" else ids[::-1])
    r = await live.root.get("/api/v1/companies", params={"cursor": "!!bad!!"})
    assert r.status_code == 422
    r = await live.root.get("/api/v1/companies", params={"limit": "0"})
    assert r.status_code == 422
    page = (await live.root.get("/api/v1/companies", params={"active": "false"})).json()
    assert page["items"] == []


async def test_delete_under_traffic_stops_sessions_and_never_fails(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    """Deleting a company while its session receives messages: no 5xx, no deadlock,
    its session stops running, and another company's traffic goes on untouched."""
    caplog.set_level(logging.INFO)
    t = await live.tenant("Doomed")
    other = await live.tenant("Bystander")
    sid = await connected_session(live, t)
    other_sid = await connected_session(live, other)
    assert {uuid.UUID(sid), uuid.UUID(other_sid)} <= set(live.daemon.engines.running())
    statuses: list[tuple[str, int, str]] = []
    accepted = asyncio.Event()
    stop = asyncio.Event()
    other_ok: list[str] = []

    async def customer(n: int, session: str, mine: bool) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            wa_id = f"DEL-{n}-{i}-{'d' if mine else 'b'}"
            r = await live.root.post(
                f"/api/v1/sandbox/{session}/inbound",
                json={"from": f"+55119{72000000 + n}", "text": f"m {i}", "wa_message_id": wa_id},
            )
            statuses.append(("inbound" if mine else "other", r.status_code, r.text[:200]))
            if r.status_code == 201 and not mine:
                other_ok.append(wa_id)
            if sum(1 for s in statuses if s[1] == 201) >= 30:
                accepted.set()

    async def agent_reads() -> None:
        while not stop.is_set():
            r = await t.admin.get("/api/v1/tickets")
            statuses.append(("tickets", r.status_code, r.text[:200]))
            await asyncio.sleep(0.01)

    tasks = [asyncio.create_task(customer(n, sid, True)) for n in range(6)]
    tasks += [asyncio.create_task(customer(100 + n, other_sid, False)) for n in range(2)]
    tasks.append(asyncio.create_task(agent_reads()))
    await asyncio.wait_for(accepted.wait(), 60)
    r = await live.root.delete(f"/api/v1/companies/{t.company_id}", params={"force": "true"})
    deleted = r.status_code
    await asyncio.sleep(1.0)  # traffic keeps coming at the deleted company
    stop.set()
    await asyncio.gather(*tasks)

    assert deleted == 204, r.text
    errors = [s for s in statuses if s[1] >= 500]
    assert errors == [], errors[:5]
    allowed = {"inbound": {201, 404, 409}, "other": {201}, "tickets": {200, 401, 404}}
    odd = [s for s in statuses if s[1] not in allowed[s[0]]]
    assert odd == [], odd[:5]
    assert uuid.UUID(sid) not in live.daemon.engines.running()  # its session stopped
    assert uuid.UUID(other_sid) in live.daemon.engines.running()
    assert (await live.root.get(f"/api/v1/companies/{t.company_id}")).status_code == 404
    async with live.kernel.read() as db:
        for model in (WebhookEvent, Message, Ticket, Client):
            left = await db.scalar(
                select(func.count()).select_from(model).where(model.company_id == t.company_id)
            )
            assert left == 0, model
        stored = set(
            (
                await db.scalars(
                    select(Message.wa_message_id).where(Message.company_id == other.company_id)
                )
            ).all()
        )
    assert set(other_ok) <= stored  # the bystander lost nothing
    tracebacks = [r for r in caplog.records if r.name.startswith("zapd") and r.exc_info]
    assert tracebacks == [], [r.getMessage() for r in tracebacks][:5]
