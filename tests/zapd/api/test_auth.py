"""Login, refresh rotation with reuse detection, logout, throttling, API tokens, /auth/me."""

from __future__ import annotations

import asyncio

from tests.zapd.api.conftest import PASSWORD, Live


async def test_login_me_and_bad_credentials(live: Live) -> None:
    t = await live.tenant()
    me = (await t.agent.get("/api/v1/auth/me")).json()
    assert me["email"] == t.emails["agent"] and me["role"] == 2
    assert me["department_ids"] == [str(t.lab_id)]
    assert me["is_global_admin"] is False
    anon = live.client()
    r = await anon.post("/api/v1/auth/login", json={"email": t.emails["agent"], "password": "nope"})
    assert r.status_code == 401 and r.json()["error"] == "ERR_BAD_CREDENTIALS"
    r = await anon.post("/api/v1/auth/login", json={"email": "ghost@x.com", "password": "nope"})
    assert r.status_code == 401 and r.json()["error"] == "ERR_BAD_CREDENTIALS"
    root = (await live.root.get("/api/v1/auth/me")).json()
    assert root["is_global_admin"] is True and root["company_id"] is None


async def test_requests_without_valid_token_are_401(live: Live) -> None:
    for headers in (
        {},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer garbage"},
        {"Authorization": "Bearer zap_unknown"},
    ):
        r = await live.client().get("/api/v1/auth/me", headers=headers)
        assert r.status_code == 401, headers
        assert set(r.json()) >= {"error", "message"}


async def test_refresh_rotates_and_reuse_revokes_family(live: Live) -> None:
    t = await live.tenant()
    _, pair = await live.login(t.emails["agent"])
    anon = live.client()
    r1 = await anon.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r1.status_code == 200
    pair2 = r1.json()
    assert pair2["refresh_token"] != pair["refresh_token"]
    # The new access token works.
    assert (await live.client(pair2["access_token"]).get("/api/v1/auth/me")).status_code == 200
    # Presenting the spent token again: theft assumed, the whole login dies.
    r2 = await anon.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r2.status_code == 401 and r2.json()["error"] == "ERR_REFRESH_REUSED"
    r3 = await anon.post("/api/v1/auth/refresh", json={"refresh_token": pair2["refresh_token"]})
    assert r3.status_code == 401
    assert (await live.client(pair2["access_token"]).get("/api/v1/auth/me")).status_code == 401
    # Other logins of the same user are untouched.
    assert (await t.agent.get("/api/v1/auth/me")).status_code == 200


async def test_logout_ends_that_login_only(live: Live) -> None:
    t = await live.tenant()
    c1, p1 = await live.login(t.emails["agent"])
    r = await c1.post("/api/v1/auth/logout", json={"refresh_token": p1["refresh_token"]})
    assert r.status_code == 204
    assert (await c1.get("/api/v1/auth/me")).status_code == 401
    r = await live.client().post(
        "/api/v1/auth/refresh", json={"refresh_token": p1["refresh_token"]}
    )
    assert r.status_code == 401
    assert (await t.agent.get("/api/v1/auth/me")).status_code == 200


async def test_login_throttled_per_email_and_ip(live: Live) -> None:
    t = await live.tenant()
    anon = live.client()
    body = {"email": t.emails["agent"], "password": "wrong-password"}
    codes = [(await anon.post("/api/v1/auth/login", json=body)).status_code for _ in range(5)]
    assert codes == [401] * 5
    r = await anon.post("/api/v1/auth/login", json={**body, "password": PASSWORD})
    assert r.status_code == 429 and r.json()["error"] == "ERR_RATE_LIMITED"
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    # Another account from the same address is not affected.
    r = await anon.post(
        "/api/v1/auth/login", json={"email": t.emails["agent2"], "password": PASSWORD}
    )
    assert r.status_code == 200


async def test_password_change_invalidates_tokens(live: Live) -> None:
    t = await live.tenant()
    other, pair = await live.login(t.emails["agent"])
    r = await t.agent.patch(
        "/api/v1/auth/me", json={"current_password": "bad", "new_password": "n3w-password"}
    )
    assert r.status_code == 422
    r = await t.agent.patch(
        "/api/v1/auth/me", json={"current_password": PASSWORD, "new_password": "n3w-password"}
    )
    assert r.status_code in (200, 401)  # the caller's own token dies with the change
    assert (await other.get("/api/v1/auth/me")).status_code == 401
    r = await live.client().post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert r.status_code == 401
    c, _ = await live.login(t.emails["agent"], "n3w-password")
    assert (await c.get("/api/v1/auth/me")).status_code == 200


async def test_api_token_lifecycle(live: Live) -> None:
    t = await live.tenant()
    r = await t.agent.post("/api/v1/api-tokens", json={"name": "x"})
    assert r.status_code == 403
    r = await t.admin.post("/api/v1/api-tokens", json={"name": "provisioner", "role": 0})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["token"].startswith("zap_") and created["prefix"] == created["token"][:12]
    bot = live.client(created["token"])
    me = (await bot.get("/api/v1/auth/me")).json()
    assert me["via_api_token"] is True and me["company_id"] == str(t.company_id)
    assert (await bot.get("/api/v1/departments")).status_code == 200
    listed = (await t.admin.get("/api/v1/api-tokens")).json()
    assert [x["id"] for x in listed] == [created["id"]] and "token" not in listed[0]
    assert listed[0]["last_used_at"] is not None
    r = await t.admin.delete(f"/api/v1/api-tokens/{created['id']}")
    assert r.status_code == 200 and r.json()["revoked_at"]
    assert (await bot.get("/api/v1/auth/me")).status_code == 401


async def test_concurrent_refresh_of_one_token_yields_one_winner(live: Live) -> None:
    t = await live.tenant()
    _, pair = await live.login(t.emails["agent"])
    anon = live.client()
    rs = await asyncio.gather(
        *[
            anon.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
            for _ in range(4)
        ]
    )
    assert sorted(r.status_code for r in rs).count(200) <= 1
