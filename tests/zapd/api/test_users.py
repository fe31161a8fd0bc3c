"""Users over real HTTP: roles, tenancy, validation, credentials, audit, events, pagination."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from sqlalchemy import func, select

from shared.enums import Role
from shared.errors import CloseCode
from tests.zapd.api.conftest import PASSWORD, Live, Tenant
from zapd.db.models import AuditLog, Event, User
from zapd.kernel.principal import Principal


def new_user(email: str, **extra: Any) -> dict[str, Any]:
    return {"email": email, "name": "Nova Pessoa", "password": "pass-1234", "role": 2, **extra}


async def _user_count(live: Live) -> int:
    async with live.kernel.read() as db:
        return int(await db.scalar(select(func.count()).select_from(User)) or 0)


async def _login_status(live: Live, email: str, password: str) -> int:
    r = await live.client().post("/api/v1/auth/login", json={"email": email, "password": password})
    return r.status_code


async def test_admin_creates_a_user_who_can_log_in(live: Live) -> None:
    t = await live.tenant()
    r = await t.admin.post(
        "/api/v1/users",
        json=new_user(
            "  Nova.Pessoa@Acme.COM.br ",
            role=1,
            department_ids=[str(t.lab_id), str(t.sales_id), str(t.lab_id)],
            max_concurrent_tickets=0,
        ),
    )
    assert r.status_code == 201, r.text
    u = r.json()
    assert u["email"] == "nova.pessoa@acme.com.br" and u["role"] == 1
    assert u["company_id"] == str(t.company_id) and u["active"] is True
    assert sorted(u["department_ids"]) == sorted([str(t.lab_id), str(t.sales_id)])
    assert u["max_concurrent_tickets"] == 0 and u["presence"] == 0
    assert u["last_login_at"] is None
    assert "password_hash" not in u and "pass-1234" not in r.text and "argon2" not in r.text
    c, _ = await live.login("nova.pessoa@acme.com.br", "pass-1234")
    me = (await c.get("/api/v1/auth/me")).json()
    assert me["role"] == 1 and me["company_id"] == str(t.company_id)
    got = (await t.agent.get(f"/api/v1/users/{u['id']}")).json()
    assert got["last_login_at"] is not None and got["department_ids"] == u["department_ids"]
    # A global admin creates users in the company they name.
    assert live.root is not None
    r = await live.root.post("/api/v1/users", json=new_user("g@acme.com.br"))
    assert r.status_code == 400 and r.json()["error"] == "ERR_COMPANY_REQUIRED"
    r = await live.root.post(
        "/api/v1/users", json=new_user("g@acme.com.br", role=0, company_id=str(t.company_id))
    )
    assert r.status_code == 201 and r.json()["company_id"] == str(t.company_id)
    r = await live.root.post(
        "/api/v1/users", json=new_user("h@acme.com.br", company_id=str(uuid.uuid4()))
    )
    assert r.status_code == 404


async def test_role_matrix(live: Live) -> None:
    t = await live.tenant()
    target = t.users["agent2"]
    writes: list[tuple[str, str, Any]] = [
        ("POST", "/api/v1/users", new_user("x@acme.com.br")),
        ("PATCH", f"/api/v1/users/{target}", {"name": "X"}),
        ("POST", f"/api/v1/users/{target}/disable", None),
        ("POST", f"/api/v1/users/{target}/enable", None),
        ("POST", f"/api/v1/users/{target}/reset-password", {"password": "n3w-password"}),
        ("PUT", f"/api/v1/users/{target}/departments", {"department_ids": []}),
    ]
    for who in ("agent", "supervisor"):
        client = t.clients[who]
        for method, path, body in writes:
            r = await client.request(method, path, json=body)
            assert r.status_code == 403, (who, method, path, r.text)
            assert r.json()["error"] == "ERR_FORBIDDEN"
        page = (await client.get("/api/v1/users")).json()
        assert {x["id"] for x in page["items"]} == {str(u) for u in t.users.values()}
        assert (await client.get(f"/api/v1/users/{target}")).status_code == 200
    # Nothing changed: agent2 still logs in with the old password and is in Comercial.
    assert await _login_status(live, t.emails["agent2"], PASSWORD) == 200
    got = (await t.admin.get(f"/api/v1/users/{target}")).json()
    assert got["department_ids"] == [str(t.sales_id)] and got["name"] == "Agent2"
    # The global admin's own account is not a company user.
    assert live.root is not None
    me = (await live.root.get("/api/v1/auth/me")).json()
    assert (await t.admin.get(f"/api/v1/users/{me['id']}")).status_code == 404


async def test_other_company_ids_answer_404(live: Live) -> None:
    a = await live.tenant("A")
    b = await live.tenant("B")
    victim = b.users["agent"]
    for method, path, body in [
        ("GET", f"/api/v1/users/{victim}", None),
        ("PATCH", f"/api/v1/users/{victim}", {"name": "hack"}),
        ("POST", f"/api/v1/users/{victim}/disable", None),
        ("POST", f"/api/v1/users/{victim}/enable", None),
        ("POST", f"/api/v1/users/{victim}/reset-password", None),
        ("PUT", f"/api/v1/users/{victim}/departments", {"department_ids": []}),
        ("POST", "/api/v1/users", new_user("x@b.com.br", company_id=str(b.company_id))),
    ]:
        for client in (a.admin, a.agent):
            r = await client.request(method, path, json=body)
            assert r.status_code == 404, (method, path, r.text)
            assert r.json()["error"] == "ERR_NOT_FOUND"
    r = await a.admin.get("/api/v1/users", params={"department_id": str(b.lab_id)})
    assert r.status_code == 404
    r = await a.admin.get("/api/v1/users", params={"company_id": str(b.company_id)})
    assert r.status_code == 404
    # Departments of another company cannot be given to one's users.
    r = await a.admin.post(
        "/api/v1/users", json=new_user("y@a.com.br", department_ids=[str(b.lab_id)])
    )
    assert r.status_code == 404 and str(b.lab_id) in r.json()["message"]
    r = await a.admin.put(
        f"/api/v1/users/{a.users['agent']}/departments", json={"department_ids": [str(b.lab_id)]}
    )
    assert r.status_code == 404
    r = await a.admin.patch(
        f"/api/v1/users/{a.users['agent']}", json={"department_ids": [str(b.sales_id)]}
    )
    assert r.status_code == 404
    # The victim is untouched; a's listing never shows b's people.
    assert await _login_status(live, b.emails["agent"], PASSWORD) == 200
    got = (await b.admin.get(f"/api/v1/users/{victim}")).json()
    assert got["name"] == "Agent" and got["department_ids"] == [str(b.lab_id)]
    ids = {x["id"] for x in (await a.admin.get("/api/v1/users")).json()["items"]}
    assert ids == {str(u) for u in a.users.values()}
    # A global admin sees both, or one company when asked.
    assert live.root is not None
    page = (
        await live.root.get(
            "/api/v1/users", params={"company_id": str(b.company_id), "limit": "200"}
        )
    ).json()
    assert {x["id"] for x in page["items"]} == {str(u) for u in b.users.values()}


async def test_bad_input_changes_nothing(live: Live) -> None:
    t = await live.tenant()
    before = await _user_count(live)
    bad = [
        new_user("not-an-email"),
        new_user("a@b"),
        new_user("x@acme.com.br", password="short"),
        new_user("x@acme.com.br", department_ids=["nope"]),
        new_user("x@acme.com.br", max_concurrent_tickets=101),
        new_user("x@acme.com.br", max_concurrent_tickets=-1),
        new_user("x@acme.com.br", role=7),
        new_user("x@acme.com.br", name="   "),
        new_user("x@acme.com.br", surprise=True),
        new_user("x@acme.com.br", password_hash="$argon2id$..."),
        {"email": "x@acme.com.br", "name": "X", "password": "pass-1234"},  # no role
    ]
    for body in bad:
        r = await t.admin.post("/api/v1/users", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"].startswith("ERR_") and "Traceback" not in r.text
    assert "e-mail" in (await t.admin.post("/api/v1/users", json=bad[0])).json()["message"]
    r = await t.admin.post(
        "/api/v1/users", json=new_user("x@acme.com.br", department_ids=[str(uuid.uuid4())])
    )
    assert r.status_code == 404 and r.json()["error"] == "ERR_NOT_FOUND"  # no such department
    # Duplicate e-mail, in any case, is a conflict.
    r = await t.admin.post("/api/v1/users", json=new_user(t.emails["agent"].upper()))
    assert r.status_code == 409 and r.json()["error"] == "ERR_EMAIL_TAKEN"
    r = await t.admin.post("/api/v1/users", json=new_user(f"  {t.emails['admin']} "))
    assert r.status_code == 409
    assert await _user_count(live) == before
    agent = t.users["agent"]
    for body in (
        {"role": None},
        {"active": None},
        {"name": ""},
        {"max_concurrent_tickets": 500},
        {"email": "new@acme.com.br"},
        {"password": "whatever-123"},
    ):
        r = await t.admin.patch(f"/api/v1/users/{agent}", json=body)
        assert r.status_code == 422, (body, r.text)
    r = await t.admin.patch(f"/api/v1/users/{agent}", json={"department_ids": [str(uuid.uuid4())]})
    assert r.status_code == 404, r.text  # no such department
    r = await t.admin.post(f"/api/v1/users/{agent}/reset-password", json={"password": "short"})
    assert r.status_code == 422
    r = await t.admin.put(f"/api/v1/users/{agent}/departments", json={"department_ids": "x"})
    assert r.status_code == 422
    for params in ({"role": "9"}, {"active": "perhaps"}, {"department_id": "x"}):
        assert (await t.admin.get("/api/v1/users", params=params)).status_code == 422
    got = (await t.admin.get(f"/api/v1/users/{agent}")).json()
    assert got["role"] == 2 and got["active"] is True and got["name"] == "Agent"
    assert got["department_ids"] == [str(t.lab_id)] and got["max_concurrent_tickets"] == 5
    assert await _login_status(live, t.emails["agent"], PASSWORD) == 200
    async with live.kernel.read() as db:
        n = await db.scalar(select(func.count()).select_from(AuditLog))
        assert n == 0


async def test_disable_and_enable(live: Live) -> None:
    t = await live.tenant()
    agent = t.users["agent"]
    sub = live.daemon.hub.subscribe(
        Principal(user_id=agent, company_id=t.company_id, role=Role.AGENT, name="Agent")
    )
    other = live.daemon.hub.subscribe(
        Principal(user_id=t.users["agent2"], company_id=t.company_id, role=Role.AGENT, name="B")
    )
    r = await t.admin.post(f"/api/v1/users/{agent}/disable")
    assert r.status_code == 200 and r.json()["active"] is False
    r = await t.agent.get("/api/v1/auth/me")
    assert r.status_code == 401 and r.json()["error"] == "ERR_TOKEN_REVOKED"
    assert await _login_status(live, t.emails["agent"], PASSWORD) == 401
    assert sub.closing.is_set() and sub.close_code == CloseCode.UNAUTHORIZED
    assert not other.closing.is_set()
    assert (await t.clients["agent2"].get("/api/v1/auth/me")).status_code == 200
    # Disabling twice changes nothing more.
    assert (await t.admin.post(f"/api/v1/users/{agent}/disable")).status_code == 200
    page = (await t.admin.get("/api/v1/users", params={"active": "false"})).json()
    assert [x["id"] for x in page["items"]] == [str(agent)]
    r = await t.admin.post(f"/api/v1/users/{agent}/enable")
    assert r.status_code == 200 and r.json()["active"] is True
    # The old token stays dead; a new login works.
    assert (await t.agent.get("/api/v1/auth/me")).status_code == 401
    assert await _login_status(live, t.emails["agent"], PASSWORD) == 200
    # PATCH active=false is a disable too.
    agent2 = t.users["agent2"]
    r = await t.admin.patch(f"/api/v1/users/{agent2}", json={"active": False})
    assert r.status_code == 200
    assert (await t.clients["agent2"].get("/api/v1/auth/me")).status_code == 401
    live.daemon.hub.unsubscribe(sub)
    live.daemon.hub.unsubscribe(other)
    async with live.kernel.read() as db:
        actions = (
            await db.scalars(
                select(AuditLog.action)
                .where(AuditLog.company_id == t.company_id)
                .order_by(AuditLog.id)
            )
        ).all()
        assert list(actions) == ["user.disable", "user.enable", "user.update"]


async def test_reset_password(live: Live) -> None:
    t = await live.tenant()
    agent = t.users["agent"]
    _, pair = await live.login(t.emails["agent"])
    r = await t.admin.post(
        f"/api/v1/users/{agent}/reset-password", json={"password": "chosen-pass-1"}
    )
    assert r.status_code == 200
    assert r.json() == {"id": str(agent), "password": None, "generated": False}
    assert await _login_status(live, t.emails["agent"], PASSWORD) == 401
    assert await _login_status(live, t.emails["agent"], "chosen-pass-1") == 200
    assert (await t.agent.get("/api/v1/auth/me")).status_code == 401
    r = await live.client().post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert r.status_code == 401
    # Without a body, the server generates one and shows it once.
    r = await t.admin.post(f"/api/v1/users/{agent}/reset-password")
    assert r.status_code == 200 and r.json()["generated"] is True
    generated = r.json()["password"]
    assert isinstance(generated, str) and len(generated) >= 12
    assert await _login_status(live, t.emails["agent"], "chosen-pass-1") == 401
    c, _ = await live.login(t.emails["agent"], generated)
    assert (await c.get("/api/v1/auth/me")).status_code == 200
    got = (await t.admin.get(f"/api/v1/users/{agent}")).json()
    assert got["password_changed_at"] is not None
    async with live.kernel.read() as db:
        rows = (
            await db.scalars(
                select(AuditLog)
                .where(AuditLog.action == "user.reset_password")
                .order_by(AuditLog.id)
            )
        ).all()
        assert [r.data["generated"] for r in rows] == [False, True]
        dumped = json.dumps([r.data for r in rows])
        assert "chosen-pass-1" not in dumped and generated not in dumped
        assert "password_hash" not in dumped and "argon2" not in dumped


async def test_admin_protection(live: Live) -> None:
    assert live.root is not None
    t = await live.tenant()
    admin = t.users["admin"]
    for method, path, body in (
        ("PATCH", f"/api/v1/users/{admin}", {"role": 1}),
        ("PATCH", f"/api/v1/users/{admin}", {"active": False}),
        ("POST", f"/api/v1/users/{admin}/disable", None),
    ):
        r = await t.admin.request(method, path, json=body)
        assert r.status_code == 409 and r.json()["error"] == "ERR_SELF_LOCKOUT", r.text
    # The global admin may not leave the company without an active admin either.
    r = await live.root.post(f"/api/v1/users/{admin}/disable")
    assert r.status_code == 409 and r.json()["error"] == "ERR_LAST_ADMIN"
    r = await live.root.patch(f"/api/v1/users/{admin}", json={"role": 2})
    assert r.status_code == 409 and r.json()["error"] == "ERR_LAST_ADMIN"
    got = (await t.admin.get(f"/api/v1/users/{admin}")).json()
    assert got["role"] == 0 and got["active"] is True
    # An admin may change their own harmless fields.
    r = await t.admin.patch(f"/api/v1/users/{admin}", json={"name": "Chefe", "role": 0})
    assert r.status_code == 200 and r.json()["name"] == "Chefe"
    # With a second admin, one may demote the other.
    r = await t.admin.patch(f"/api/v1/users/{t.users['supervisor']}", json={"role": 0})
    assert r.status_code == 200
    r = await t.supervisor.patch(f"/api/v1/users/{admin}", json={"role": 2})
    assert r.status_code == 200 and r.json()["role"] == 2
    assert (await t.admin.post("/api/v1/users", json=new_user("z@a.com.br"))).status_code == 403


async def test_departments_audit_and_events(live: Live) -> None:
    t = await live.tenant()
    agent = t.users["agent"]
    sub = live.daemon.hub.subscribe(
        Principal(user_id=agent, company_id=t.company_id, role=Role.AGENT, name="Agent")
    )
    r = await t.admin.put(
        f"/api/v1/users/{agent}/departments",
        json={"department_ids": [str(t.sales_id), str(t.lab_id)]},
    )
    assert r.status_code == 200
    assert sorted(r.json()["department_ids"]) == sorted([str(t.lab_id), str(t.sales_id)])
    assert sub.closing.is_set() and sub.close_code == CloseCode.TRY_AGAIN_LATER
    live.daemon.hub.unsubscribe(sub)
    me = (await t.agent.get("/api/v1/auth/me")).json()
    assert sorted(me["department_ids"]) == sorted([str(t.lab_id), str(t.sales_id)])
    r = await t.admin.put(f"/api/v1/users/{agent}/departments", json={"department_ids": []})
    assert r.status_code == 200 and r.json()["department_ids"] == []
    r = await t.admin.patch(
        f"/api/v1/users/{agent}",
        json={"name": "Ana Lima", "max_concurrent_tickets": 9, "department_ids": [str(t.lab_id)]},
    )
    assert r.status_code == 200
    assert r.json()["name"] == "Ana Lima" and r.json()["department_ids"] == [str(t.lab_id)]
    # A no-op PATCH records nothing.
    r = await t.admin.patch(f"/api/v1/users/{agent}", json={"name": "Ana Lima"})
    assert r.status_code == 200
    r = await t.admin.post("/api/v1/users", json=new_user("bia@acme.com.br", role=2))
    new_id = r.json()["id"]
    async with live.kernel.read() as db:
        rows = (
            await db.scalars(
                select(AuditLog).where(AuditLog.company_id == t.company_id).order_by(AuditLog.id)
            )
        ).all()
        assert [a.action for a in rows] == [
            "user.set_departments",
            "user.set_departments",
            "user.update",
            "user.create",
        ]
        assert rows[0].user_id == t.users["admin"] and rows[0].ip == "127.0.0.1"
        assert rows[1].data["changes"] == {
            "department_ids": [sorted([str(t.lab_id), str(t.sales_id)]), []]
        }
        assert rows[2].data["changes"] == {
            "name": ["Agent", "Ana Lima"],
            "max_concurrent_tickets": [5, 9],
            "department_ids": [[], [str(t.lab_id)]],
        }
        created = rows[3].data["changes"]
        assert created["email"] == [None, "bia@acme.com.br"] and created["role"] == [None, 2]
        assert str(rows[3].entity_id) == new_id
        dumped = json.dumps([a.data for a in rows])
        assert "pass-1234" not in dumped and "password_hash" not in dumped
        evs = (
            await db.scalars(
                select(Event).where(Event.company_id == t.company_id).order_by(Event.seq)
            )
        ).all()
        assert [e.type for e in evs] == ["user.update"] * 4
        assert [e.data["action"] for e in evs] == [
            "set_departments",
            "set_departments",
            "update",
            "create",
        ]
        assert evs[2].data["id"] == str(agent) and evs[2].data["name"] == "Ana Lima"
        assert all(e.department_id is None and e.user_id is None for e in evs)


async def _walk(client: httpx.AsyncClient, order: str, **params: str) -> list[str]:
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(20):
        q = {"limit": "3", "order": order, **params}
        if cursor:
            q["cursor"] = cursor
        r = await client.get("/api/v1/users", params=q)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 3
        seen += [x["id"] for x in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("pagination did not end")


async def test_filters_and_pagination(live: Live) -> None:
    t: Tenant = await live.tenant()
    created = []
    for i in range(6):
        body = new_user(
            f"p{i}@acme.com.br",
            name=f"Pessoa {i}" if i != 3 else "Zélia 50%_off",
            department_ids=[str(t.sales_id)] if i % 2 else [],
        )
        r = await t.admin.post("/api/v1/users", json=body)
        assert r.status_code == 201, r.text
        created.append(r.json()["id"])
    everyone = [str(t.users[k]) for k in ("admin", "supervisor", "agent", "agent2")] + created
    asc = await _walk(t.agent, "asc")
    desc = await _walk(t.agent, "desc")
    assert asc == everyone and desc == everyone[::-1]
    assert len(set(asc)) == len(asc) == 10
    # Filters combine with pagination.
    sales = await _walk(t.agent, "asc", department_id=str(t.sales_id))
    assert sales == [str(t.users["agent2"]), created[1], created[3], created[5]]
    agents = await _walk(t.agent, "asc", role="2")
    assert agents == [str(t.users["agent"]), str(t.users["agent2"]), *created]
    assert await _walk(t.agent, "asc", role="0") == [str(t.users["admin"])]
    assert await _walk(t.agent, "asc", q="PESSOA") == [created[i] for i in (0, 1, 2, 4, 5)]
    assert await _walk(t.agent, "asc", q="50%_") == [created[3]]
    assert await _walk(t.agent, "asc", q="%") == [created[3]]
    assert await _walk(t.agent, "asc", q="p4@ACME") == [created[4]]
    assert await _walk(t.agent, "asc", active="false") == []


async def test_internal_domain_emails_are_accepted(live: Live) -> None:
    # A company on its intranet: admins and clients at .local / .lan / .test domains.
    t = await live.tenant()
    for email in ("TI@Empresa.Local", "chefe@corp.lan", "qa@intranet.test"):
        r = await t.admin.post("/api/v1/users", json=new_user(email))
        assert r.status_code == 201, r.text
        assert r.json()["email"] == email.lower()
    assert await _login_status(live, "ti@empresa.local", "pass-1234") == 200
    r = await t.admin.post(
        "/api/v1/clients", json={"phone": "+5511981230000", "email": "c@loja.lan"}
    )
    assert r.status_code == 201 and r.json()["email"] == "c@loja.lan"
    # Syntax is still checked, with a message that says what is wrong.
    for email, why in (("a@b", "needs a dot"), ("a b@corp.lan", "invalid characters")):
        r = await t.admin.post("/api/v1/users", json=new_user(email))
        assert r.status_code == 422 and why in r.json()["message"], r.text
