"""Sessions over real HTTP: CRUD, secrets, roles, tenancy, validation, audit, events, logs."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import func, select

from shared.enums import Engine, LogLevel, SessionStatus
from shared.protocol.events import SESSION_STATUS
from tests.zapd.api import seed
from tests.zapd.api.conftest import Live
from zapd.db.models import AuditLog, Event, Message, WaSession

TOKEN = "EAAG-very-secret-token-1234567890"
CLOUD = {"phone_number_id": "109876543210", "access_token": TOKEN}


async def _audit(live: Live, company_id: uuid.UUID) -> list[AuditLog]:
    async with live.kernel.read() as db:
        rows = await db.scalars(
            select(AuditLog).where(AuditLog.company_id == company_id).order_by(AuditLog.id)
        )
        return list(rows)


async def _events(live: Live, company_id: uuid.UUID) -> list[Event]:
    async with live.kernel.read() as db:
        rows = await db.scalars(
            select(Event).where(Event.company_id == company_id).order_by(Event.seq)
        )
        return list(rows)


async def _count(live: Live, company_id: uuid.UUID) -> int:
    async with live.kernel.read() as db:
        n = await db.scalar(
            select(func.count()).select_from(WaSession).where(WaSession.company_id == company_id)
        )
        return int(n or 0)


async def test_create_cloud_session_masks_token_and_shows_secret_once(live: Live) -> None:
    t = await live.tenant()
    r = await t.admin.post(
        "/api/v1/sessions",
        json={
            "name": "Atendimento",
            "engine": int(Engine.CLOUD),
            "default_department_id": str(t.lab_id),
            "webhook_url": "https://hooks.acme.com.br/zap",
            "config": {**CLOUD, "app_secret": "app-secret-xyz"},
            "flow_config": {"greeting": "Olá! Escolha um setor:", "menu_tries": 3},
        },
    )
    assert r.status_code == 201, r.text
    created = r.json()
    sid = created["id"]
    assert created["engine"] == 2 and created["status"] == int(SessionStatus.DISCONNECTED)
    assert created["default_department_id"] == str(t.lab_id)
    assert created["webhook_secret"].startswith("whsec_") and len(created["webhook_secret"]) > 30
    assert created["has_webhook_secret"] is True
    assert created["config"] == {
        "phone_number_id": "109876543210",
        "access_token": "********",
        "app_secret": "********",
    }
    assert created["flow_config"]["menu_tries"] == 3
    assert TOKEN not in r.text and "app-secret-xyz" not in r.text

    # Later reads never carry the secret or the token.
    for client in (t.admin, t.supervisor, t.agent):
        one = await client.get(f"/api/v1/sessions/{sid}")
        assert one.status_code == 200
        body = one.json()
        assert "webhook_secret" not in body and body["has_webhook_secret"] is True
        assert body["config"]["access_token"] == "********"
        assert TOKEN not in one.text and created["webhook_secret"] not in one.text
        listing = await client.get("/api/v1/sessions")
        assert [s["id"] for s in listing.json()] == [sid]
        assert TOKEN not in listing.text and created["webhook_secret"] not in listing.text

    # The database holds the credentials sealed (zapd.secretbox); the audit log not at all.
    async with live.kernel.read() as db:
        row = await db.get(WaSession, uuid.UUID(sid))
        assert row is not None
        assert row.config["access_token"].startswith("enc:v1:")
        assert TOKEN not in str(row.config)
        assert live.daemon.secret_box.unseal(row.config)["access_token"] == TOKEN
        assert row.webhook_secret == created["webhook_secret"]
    audit = await _audit(live, t.company_id)
    assert [a.action for a in audit] == ["session.create"]
    assert audit[0].entity_id == uuid.UUID(sid) and audit[0].user_id == t.users["admin"]
    dumped = json.dumps(audit[0].data)
    assert TOKEN not in dumped and created["webhook_secret"] not in dumped
    assert audit[0].data["changes"]["name"] == [None, "Atendimento"]
    evs = await _events(live, t.company_id)
    assert [(e.type, e.data["action"], e.data["id"]) for e in evs] == [
        (SESSION_STATUS, "create", sid)
    ]
    assert evs[0].department_id is None and evs[0].user_id is None  # company-wide


async def test_sandbox_session_without_webhook_has_no_secret(live: Live) -> None:
    t = await live.tenant()
    r = await t.admin.post("/api/v1/sessions", json={"name": "Demo", "engine": 0})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["webhook_secret"] is None and body["has_webhook_secret"] is False
    assert body["config"] == {} and body["flow_config"] == {} and body["active"] is True
    assert body["phone"] is None and body["last_heartbeat_at"] is None


async def test_roles(live: Live) -> None:
    t = await live.tenant()
    sid = await seed.session(live, t.company_id, "Loja")
    for client in (t.supervisor, t.agent):
        r = await client.post("/api/v1/sessions", json={"name": "X", "engine": 0})
        assert r.status_code == 403 and r.json()["error"] == "ERR_FORBIDDEN"
        r = await client.patch(f"/api/v1/sessions/{sid}", json={"name": "Y"})
        assert r.status_code == 403
        r = await client.delete(f"/api/v1/sessions/{sid}")
        assert r.status_code == 403
    r = await t.agent.get(f"/api/v1/sessions/{sid}/logs")
    assert r.status_code == 403
    for client in (t.admin, t.supervisor):
        r = await client.get(f"/api/v1/sessions/{sid}/logs")
        assert r.status_code == 200 and r.json() == {"items": [], "next_cursor": None}
    assert (await t.agent.get(f"/api/v1/sessions/{sid}")).json()["name"] == "Loja"
    assert await _count(live, t.company_id) == 1
    assert await _audit(live, t.company_id) == []


async def test_bad_input_changes_nothing(live: Live) -> None:
    t = await live.tenant()
    other = await live.tenant("Other")
    base: dict[str, Any] = {"name": "A", "engine": 0}
    bad = [
        {"name": "A", "engine": 99},
        {"name": "A", "engine": "cloud"},
        {"name": "A"},
        {"name": "", "engine": 0},
        {"name": "   ", "engine": 0},
        {"name": "x" * 121, "engine": 0},
        {**base, "webhook_url": "ftp://x"},
        {**base, "webhook_url": "https://"},
        {**base, "webhook_url": "https://a.b/" + "x" * 2000},
        {**base, "webhook_url": "not a url"},
        {"name": "A", "engine": 2, "config": {"access_token": TOKEN}},
        {"name": "A", "engine": 2, "config": {"phone_number_id": "12ab", "access_token": "t"}},
        {"name": "A", "engine": 2, "config": {"phone_number_id": 123, "access_token": "t"}},
        {"name": "A", "engine": 2, "config": {"phone_number_id": "1"}},
        {"name": "A", "engine": 2, "config": {**CLOUD, "surprise": 1}},
        {"name": "A", "engine": 2},
        {**base, "unknown_field": 1},
        {**base, "webhook_secret": "mine"},
        {**base, "flow_config": {f"k{i}": i for i in range(51)}},
        {**base, "flow_config": {"": 1}},
        {**base, "config": {"bad key!": 1}},
        {**base, "flow_config": []},
        {**base, "default_department_id": "not-a-uuid"},
        # ids naming no department of the company: 404, like any foreign id
        {**base, "default_department_id": str(other.lab_id)},
        {**base, "default_department_id": str(uuid.uuid4())},
    ]
    for body in bad:
        r = await t.admin.post("/api/v1/sessions", json=body)
        foreign = body.get("default_department_id", "not-a-uuid") != "not-a-uuid"
        assert r.status_code == (404 if foreign else 422), (body, r.text)
        err = r.json()
        assert err["error"] == ("ERR_NOT_FOUND" if foreign else "ERR_VALIDATION")
        assert err["message"] and "Traceback" not in r.text
        assert TOKEN not in r.text
    assert await _count(live, t.company_id) == 0

    r = await t.admin.post("/api/v1/sessions", json={"name": "Loja", "engine": 1})
    assert r.status_code == 201
    r = await t.admin.post("/api/v1/sessions", json={"name": "Loja", "engine": 0})
    assert r.status_code == 409 and r.json()["error"] == "ERR_CONFLICT"
    # The same name in another company is fine.
    r = await other.admin.post("/api/v1/sessions", json={"name": "Loja", "engine": 0})
    assert r.status_code == 201
    assert await _count(live, t.company_id) == 1
    assert [a.action for a in await _audit(live, t.company_id)] == ["session.create"]


async def test_update_merges_config_and_manages_webhook_secret(live: Live) -> None:
    t = await live.tenant()
    r = await t.admin.post("/api/v1/sessions", json={"name": "Cloud", "engine": 2, "config": CLOUD})
    sid = r.json()["id"]
    assert r.json()["webhook_secret"] is None

    # Echoing the masked value back keeps the stored token; other keys change.
    r = await t.admin.patch(
        f"/api/v1/sessions/{sid}",
        json={
            "name": "Cloud Principal",
            "config": {"phone_number_id": "555", "access_token": "********"},
            "flow_config": {"menu_tries": 2},
            "default_department_id": str(t.sales_id),
            "active": False,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "Cloud Principal" and body["active"] is False
    assert body["config"] == {"phone_number_id": "555", "access_token": "********"}
    assert body["default_department_id"] == str(t.sales_id)
    assert body["webhook_secret"] is None
    async with live.kernel.read() as db:
        row = await db.get(WaSession, uuid.UUID(sid))
        assert row is not None
        assert live.daemon.secret_box.unseal(row.config) == {
            "phone_number_id": "555",
            "access_token": TOKEN,
        }

    # Rotate the token alone.
    r = await t.admin.patch(f"/api/v1/sessions/{sid}", json={"config": {"access_token": "new"}})
    assert r.status_code == 200
    async with live.kernel.read() as db:
        row = await db.get(WaSession, uuid.UUID(sid))
        assert row is not None
        assert live.daemon.secret_box.unseal(row.config)["access_token"] == "new"

    # A patch that would break the engine's config is refused and changes nothing.
    for patch in (
        {"config": {"phone_number_id": None}},
        {"config": {"phone_number_id": "abc"}},
        {"config": {"app_secret": "********"}},
        {"config": {"surprise": 1}},
        {"config": None},
        {"name": None},
        {"name": ""},
        {"engine": 0},
        {"webhook_url": "ftp://x"},
        {"rotate_webhook_secret": True},  # no webhook_url to sign for
        {"status": 0},
    ):
        r = await t.admin.patch(f"/api/v1/sessions/{sid}", json=patch)
        assert r.status_code == 422, (patch, r.text)
    r = await t.admin.patch(
        f"/api/v1/sessions/{sid}", json={"default_department_id": str(uuid.uuid4())}
    )
    assert r.status_code == 404, r.text  # no such department
    async with live.kernel.read() as db:
        row = await db.get(WaSession, uuid.UUID(sid))
        assert row is not None
        assert live.daemon.secret_box.unseal(row.config) == {
            "phone_number_id": "555",
            "access_token": "new",
        }
        assert row.name == "Cloud Principal" and row.engine is Engine.CLOUD

    # Setting a webhook URL mints a secret (shown in that answer only); rotating mints another.
    r = await t.admin.patch(f"/api/v1/sessions/{sid}", json={"webhook_url": "http://h.local/x"})
    first = r.json()["webhook_secret"]
    assert first.startswith("whsec_") and r.json()["has_webhook_secret"] is True
    r = await t.admin.patch(f"/api/v1/sessions/{sid}", json={"webhook_url": "https://h.local/y"})
    assert r.json()["webhook_secret"] is None  # URL change keeps the secret
    r = await t.admin.patch(f"/api/v1/sessions/{sid}", json={"rotate_webhook_secret": True})
    second = r.json()["webhook_secret"]
    assert second.startswith("whsec_") and second != first
    r = await t.admin.patch(f"/api/v1/sessions/{sid}", json={"webhook_url": None})
    assert r.json()["has_webhook_secret"] is False and r.json()["webhook_url"] is None

    # A taken name is a conflict.
    await seed.session(live, t.company_id, "Outra")
    r = await t.admin.patch(f"/api/v1/sessions/{sid}", json={"name": "Outra"})
    assert r.status_code == 409

    audit = await _audit(live, t.company_id)
    assert [a.action for a in audit] == ["session.create"] + ["session.update"] * 6
    assert audit[1].data["changes"]["name"] == ["Cloud", "Cloud Principal"]
    assert audit[1].data["changes"]["active"] == [True, False]
    assert audit[5].data["webhook_secret_rotated"] is True
    dumped = json.dumps([a.data for a in audit])
    assert TOKEN not in dumped and '"new"' not in dumped
    assert first not in dumped and second not in dumped


async def test_delete_refuses_history_unless_forced(live: Live) -> None:
    t = await live.tenant()
    empty = await seed.session(live, t.company_id, "Vazia")
    busy = await seed.session(live, t.company_id, "Movimentada")
    client_id = await seed.client(live, t.company_id, "+5511987654321", "Ana")
    ticket_id = await seed.ticket(live, t.company_id, busy, client_id, department_id=t.lab_id)
    await seed.messages(live, ticket_id, 3)

    assert (await t.admin.delete(f"/api/v1/sessions/{empty}")).status_code == 204
    assert (await t.admin.get(f"/api/v1/sessions/{empty}")).status_code == 404
    r = await t.admin.delete(f"/api/v1/sessions/{busy}")
    assert r.status_code == 409 and r.json()["error"] == "ERR_SESSION_HAS_HISTORY"
    assert "force=true" in r.json()["message"]
    assert (await t.admin.get(f"/api/v1/sessions/{busy}")).status_code == 200
    r = await t.admin.delete(f"/api/v1/sessions/{busy}", params={"force": "true"})
    assert r.status_code == 204
    assert (await t.admin.get(f"/api/v1/sessions/{busy}")).status_code == 404
    async with live.kernel.read() as db:
        left = await db.scalar(select(func.count()).select_from(Message))
        assert left == 0
    # The ticket survives without its session.
    r = await t.admin.get(f"/api/v1/tickets/{ticket_id}")
    assert r.status_code == 200 and r.json()["session_id"] is None

    audit = await _audit(live, t.company_id)
    assert [a.action for a in audit] == ["session.delete", "session.delete"]
    assert audit[0].entity_id == empty and audit[0].data["force"] is False
    assert audit[1].entity_id == busy and audit[1].data["messages_deleted"] == 3
    assert audit[1].data["changes"]["name"] == ["Movimentada", None]
    evs = await _events(live, t.company_id)
    assert [(e.type, e.data["action"], e.data["id"]) for e in evs] == [
        (SESSION_STATUS, "delete", str(empty)),
        (SESSION_STATUS, "delete", str(busy)),
    ]


async def test_status_filter_and_logs(live: Live) -> None:
    t = await live.tenant()
    on = await seed.session(live, t.company_id, "B on", status=SessionStatus.CONNECTED)
    off = await seed.session(live, t.company_id, "A off")
    r = await t.agent.get("/api/v1/sessions")
    assert [s["id"] for s in r.json()] == [str(off), str(on)]  # by name
    r = await t.agent.get("/api/v1/sessions", params={"status": 0})
    assert [s["id"] for s in r.json()] == [str(on)]
    assert r.json()[0]["status"] == 0
    r = await t.agent.get("/api/v1/sessions", params={"status": 9})
    assert r.status_code == 422

    levels = [LogLevel.DEBUG, LogLevel.INFO, LogLevel.WARNING, LogLevel.ERROR] * 3
    ids = await seed.session_logs(live, on, levels)
    await seed.session_logs(live, off, [LogLevel.ERROR])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        page = (await t.supervisor.get(f"/api/v1/sessions/{on}/logs", params=params)).json()
        seen += [line["id"] for line in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [str(i) for i in reversed(ids)]  # newest first, every line once
    r = await t.admin.get(f"/api/v1/sessions/{on}/logs", params={"level": 30, "order": "asc"})
    items = r.json()["items"]
    assert [i["level"] for i in items] == [30, 40] * 3
    assert [i["id"] for i in items] == [
        str(i) for i, lv in zip(ids, levels, strict=True) if lv >= 30
    ]
    assert items[0]["session_id"] == str(on) and items[0]["message"] == "line 2"
    for bad in ({"level": 25}, {"cursor": "!!"}, {"limit": 0}, {"order": "up"}):
        r = await t.admin.get(f"/api/v1/sessions/{on}/logs", params=bad)
        assert r.status_code == 422, bad


async def test_other_company_ids_answer_404(live: Live) -> None:
    a = await live.tenant("A")
    b = await live.tenant("B")
    sid = await seed.session(live, b.company_id, "B's")
    await seed.session_logs(live, sid, [LogLevel.INFO])
    for method, path, body in [
        ("GET", f"/api/v1/sessions/{sid}", None),
        ("PATCH", f"/api/v1/sessions/{sid}", {"name": "hack"}),
        ("DELETE", f"/api/v1/sessions/{sid}", None),
        ("DELETE", f"/api/v1/sessions/{sid}?force=true", None),
        ("GET", f"/api/v1/sessions/{sid}/logs", None),
    ]:
        r = await a.admin.request(method, path, json=body)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"] == "ERR_NOT_FOUND"
    assert (await a.agent.get(f"/api/v1/sessions/{sid}")).status_code == 404
    assert (await a.admin.get("/api/v1/sessions")).json() == []
    r = await a.admin.get("/api/v1/sessions", params={"company_id": str(b.company_id)})
    assert r.status_code == 404
    r = await a.admin.post(
        "/api/v1/sessions", json={"name": "X", "engine": 0, "company_id": str(b.company_id)}
    )
    assert r.status_code == 404
    async with live.kernel.read() as db:
        row = await db.get(WaSession, sid)
        assert row is not None and row.name == "B's"
    assert await _count(live, a.company_id) == 0


async def test_global_admin_names_the_company(live: Live) -> None:
    t = await live.tenant()
    assert live.root is not None
    r = await live.root.post("/api/v1/sessions", json={"name": "Root", "engine": 0})
    assert r.status_code == 400 and r.json()["error"] == "ERR_COMPANY_REQUIRED"
    r = await live.root.post(
        "/api/v1/sessions",
        json={"name": "Root", "engine": 0, "company_id": str(t.company_id)},
    )
    assert r.status_code == 201 and r.json()["company_id"] == str(t.company_id)
    assert [s["name"] for s in (await t.agent.get("/api/v1/sessions")).json()] == ["Root"]
    r = await live.root.get("/api/v1/sessions", params={"company_id": str(t.company_id)})
    assert [s["name"] for s in r.json()] == ["Root"]
    r = await live.root.get(f"/api/v1/sessions/{r.json()[0]['id']}/logs")
    assert r.status_code == 200
