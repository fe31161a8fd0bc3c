"""Revocation takes effect on the very next request.

Authentication reads the user, its company, its login family and its departments in
one statement per request and caches nothing, so every change below is seen by the
next request of a token minted before it, on both backends. Logout, password change,
refresh-token reuse and API-token revocation are covered in test_auth.py.
"""

from __future__ import annotations

from shared.enums import Role
from tests.zapd.api.conftest import Live


async def _me(client) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    r = await client.get("/api/v1/auth/me")
    return r.status_code, r.json()


async def test_disabled_user_is_refused_at_once(live: Live) -> None:
    t = await live.tenant()
    agent, _ = await live.login(t.emails["agent"])
    assert (await _me(agent))[0] == 200
    r = await t.admin.post(f"/api/v1/users/{t.users['agent']}/disable")
    assert r.status_code == 200, r.text
    status, body = await _me(agent)
    assert status == 401 and body["error"] == "ERR_TOKEN_REVOKED"
    # Enabling again does not bring old tokens back; a new login works.
    r = await t.admin.post(f"/api/v1/users/{t.users['agent']}/enable")
    assert r.status_code == 200, r.text
    assert (await _me(agent))[0] == 401
    again, _ = await live.login(t.emails["agent"])
    assert (await _me(again))[0] == 200


async def test_role_and_department_changes_show_on_the_next_request(live: Live) -> None:
    t = await live.tenant()
    agent, _ = await live.login(t.emails["agent"])
    status, me = await _me(agent)
    assert status == 200 and me["role"] == Role.AGENT and me["department_ids"] == [str(t.lab_id)]
    assert (await agent.get("/api/v1/metrics/summary")).status_code == 403
    # Promoted: the same token acts as a supervisor at once.
    r = await t.admin.patch(
        f"/api/v1/users/{t.users['agent']}", json={"role": int(Role.SUPERVISOR)}
    )
    assert r.status_code == 200, r.text
    status, me = await _me(agent)
    assert status == 200 and me["role"] == Role.SUPERVISOR
    assert (await agent.get("/api/v1/metrics/summary")).status_code == 200
    # Demoted back: supervisor-only reads are refused at once.
    r = await t.admin.patch(f"/api/v1/users/{t.users['agent']}", json={"role": int(Role.AGENT)})
    assert r.status_code == 200, r.text
    status, me = await _me(agent)
    assert status == 200 and me["role"] == Role.AGENT
    assert (await agent.get("/api/v1/metrics/summary")).status_code == 403
    # Departments: moved from Laboratório to both, then to none.
    r = await t.admin.patch(
        f"/api/v1/users/{t.users['agent']}",
        json={"department_ids": [str(t.lab_id), str(t.sales_id)]},
    )
    assert r.status_code == 200, r.text
    assert sorted((await _me(agent))[1]["department_ids"]) == sorted(
        [str(t.lab_id), str(t.sales_id)]
    )
    r = await t.admin.patch(f"/api/v1/users/{t.users['agent']}", json={"department_ids": []})
    assert r.status_code == 200, r.text
    assert (await _me(agent))[1]["department_ids"] == []


async def test_disabled_company_refuses_its_users_and_api_tokens_at_once(live: Live) -> None:
    t = await live.tenant()
    other = await live.tenant("Other")
    r = await t.admin.post("/api/v1/api-tokens", json={"name": "bot", "role": int(Role.AGENT)})
    assert r.status_code == 201, r.text
    bot = live.client(r.json()["token"])
    assert (await _me(bot))[0] == 200
    r = await live.root.patch(f"/api/v1/companies/{t.company_id}", json={"active": False})
    assert r.status_code == 200, r.text
    for client in (t.admin, t.agent, bot):
        status, body = await _me(client)
        assert status == 401 and body["error"] == "ERR_ACCOUNT_DISABLED", body
    assert (await _me(other.agent))[0] == 200  # another company is untouched
    r = await live.root.patch(f"/api/v1/companies/{t.company_id}", json={"active": True})
    assert r.status_code == 200, r.text
    assert (await _me(t.agent))[0] == 200 and (await _me(bot))[0] == 200


async def test_deleted_company_refuses_its_users_and_api_tokens_at_once(live: Live) -> None:
    t = await live.tenant()
    r = await t.admin.post("/api/v1/api-tokens", json={"name": "bot", "role": int(Role.AGENT)})
    assert r.status_code == 201, r.text
    bot = live.client(r.json()["token"])
    assert (await _me(bot))[0] == 200
    r = await live.root.delete(f"/api/v1/companies/{t.company_id}")
    assert r.status_code == 204, r.text
    for client in (t.admin, t.supervisor, t.agent, bot):
        status, body = await _me(client)
        assert status == 401 and body["error"] == "ERR_TOKEN_REVOKED", body
    assert (await _me(live.root))[0] == 200
