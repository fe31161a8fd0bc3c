"""Logins against a hostile client: hashing off the event loop, equal cost for unknown
e-mails, per-account and per-address locks with backoff, and the password policy."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.zapd.api.conftest import PASSWORD, Live, start_live, stop_live
from tests.zapd.api.conftest import test_settings as settings_for
from zapd.db.models import AuditLog

LOGIN = "/api/v1/auth/login"


async def serve(engine: AsyncEngine, backend: Any, tmp_path: Path, **overrides: Any) -> Any:
    lv, server, task = await start_live(engine, backend.name, settings_for(tmp_path, **overrides))
    await lv.add_user(None, "root@zap.local", None, "Root")
    lv.root, _ = await lv.login("root@zap.local")
    return lv, server, task


async def stop(lv: Live, server: Any, task: Any) -> None:
    await stop_live(lv, server, task)


@pytest.fixture
async def guarded(
    request: pytest.FixtureRequest, engine: AsyncEngine, backend: Any, tmp_path: Path
) -> AsyncIterator[Live]:
    """A daemon with small brute-force limits; the lock's base is the test's parameter."""
    base = getattr(request, "param", 30)
    lv, server, task = await serve(
        engine,
        backend,
        tmp_path,
        login_max_failures=100,
        login_account_max_failures=4,
        login_address_max_failures=6,
        login_lockout_base=base,
        login_lockout_cap=base * 4,
    )
    try:
        yield lv
    finally:
        await stop(lv, server, task)


def from_address(lv: Live, address: str) -> httpx.AsyncClient:
    """A client whose connections come from another loopback address (127.0.0.0/8)."""
    c = httpx.AsyncClient(
        base_url=lv.url, transport=httpx.AsyncHTTPTransport(local_address=address), timeout=30
    )
    lv._clients.append(c)
    return c


async def login(c: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await c.post(LOGIN, json={"email": email, "password": password})


# ---------------------------------------------------------------- hashing and timing


async def test_unknown_and_known_emails_cost_the_same_hash_operations(live: Live) -> None:
    t = await live.tenant()
    ops = live.kernel.passwords.operations
    anon = live.client()

    async def cost(email: str) -> dict[str, int]:
        before = dict(ops)
        r = await login(anon, email, "wrong-guess-123")
        assert r.status_code == 401 and r.json()["error"] == "ERR_BAD_CREDENTIALS"
        return {k: ops[k] - before.get(k, 0) for k in ("hash", "verify")}

    known = await cost(t.emails["agent"])
    unknown = await cost(f"nobody-{uuid.uuid4().hex[:6]}@acme.com.br")
    assert known == unknown == {"hash": 0, "verify": 1}


async def test_healthz_stays_fast_under_a_login_flood(
    engine: AsyncEngine, backend: Any, tmp_path: Path
) -> None:
    # Real argon2 cost (not the tests' cheap one), so a flood would stall a blocked loop.
    lv, server, task = await serve(
        engine, backend, tmp_path, argon2_time_cost=2, argon2_memory_kib=32 * 1024
    )
    try:
        probe = lv.client()

        async def healthz_times(n: int) -> list[float]:
            out = []
            for _ in range(n):
                started = time.perf_counter()
                assert (await probe.get("/healthz")).status_code == 200
                out.append(time.perf_counter() - started)
                await asyncio.sleep(0.01)
            return out

        idle = statistics.median(await healthz_times(20))
        flooders = [lv.client() for _ in range(12)]
        stop_flood = asyncio.Event()
        answers: list[int] = []

        async def flood(c: httpx.AsyncClient, i: int) -> None:
            while not stop_flood.is_set():
                r = await login(c, f"x{i}@acme.com.br", f"guess-{i}-{len(answers)}")
                answers.append(r.status_code)

        tasks = [asyncio.create_task(flood(c, i)) for i, c in enumerate(flooders)]
        await asyncio.sleep(0.3)
        loaded = statistics.median(await healthz_times(20))
        stop_flood.set()
        await asyncio.gather(*tasks)
        assert set(answers) <= {401, 429}, answers  # refused or queued, never a 5xx
        assert 401 in answers
        # Generous bound, same run: a loop blocked by argon2 makes this 10-100x worse.
        assert loaded < idle * 10 + 0.05, (idle, loaded)
    finally:
        await stop(lv, server, task)


async def test_excess_concurrent_logins_get_429_not_a_stall(
    engine: AsyncEngine, backend: Any, tmp_path: Path
) -> None:
    lv, server, task = await serve(
        engine,
        backend,
        tmp_path,
        argon2_time_cost=2,
        argon2_memory_kib=32 * 1024,
        password_hash_workers=1,
        password_hash_queue=1,
    )
    try:
        anon = lv.client()
        answers = await asyncio.gather(
            *(login(anon, f"u{i}@acme.com.br", "not-the-password") for i in range(10))
        )
        codes = [r.status_code for r in answers]
        assert 429 in codes and 401 in codes and set(codes) <= {401, 429}, codes
        busy = next(r for r in answers if r.status_code == 429)
        assert busy.json()["error"] == "ERR_RATE_LIMITED" and busy.headers["retry-after"] == "1"
        assert lv.kernel.passwords.busy_refusals >= 1
    finally:
        await stop(lv, server, task)


# ---------------------------------------------------------------- brute force


async def audit_actions(lv: Live, prefix: str) -> list[AuditLog]:
    async with lv.kernel.read() as db:
        rows = await db.scalars(select(AuditLog).where(AuditLog.action.startswith(prefix)))
        return list(rows.all())


async def scrape(lv: Live) -> str:
    return (await lv.client(lv.daemon.metrics_token).get("/metrics")).text


async def test_one_account_guessed_from_many_addresses_is_locked(guarded: Live) -> None:
    t = await guarded.tenant()
    victim = t.emails["agent"]
    for i in range(4):  # one guess from each of four addresses
        r = await login(from_address(guarded, f"127.0.0.{10 + i}"), victim, f"guess-{i}-xyz")
        assert r.status_code == 401
    # Even the right password, from a fifth address, is refused while locked.
    r = await login(from_address(guarded, "127.0.0.20"), victim, PASSWORD)
    assert r.status_code == 429, r.text
    body = r.json()
    assert body["error"] == "ERR_ACCOUNT_LOCKED"
    assert f"zapctl user enable {victim}" in body["message"]
    assert int(r.headers["retry-after"]) >= 1
    [row] = await audit_actions(guarded, "auth.lockout.account")
    assert row.entity_id == t.users["agent"] and row.company_id == t.company_id
    assert row.data["key"] == victim and row.data["failures"] == 4 and row.ip == "127.0.0.13"
    metrics = await scrape(guarded)
    assert 'zapd_login_lockouts_total{scope="account"} 1.0' in metrics
    assert 'zapd_login_locked{scope="account"} 1.0' in metrics
    # An admin's `user enable` really clears it.
    r = await t.admin.post(f"/api/v1/users/{t.users['agent']}/enable")
    assert r.status_code == 200
    r = await login(from_address(guarded, "127.0.0.21"), victim, PASSWORD)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("guarded", [3], indirect=True)  # a 3 s lock, then 6 s
async def test_many_accounts_from_one_address_lock_the_address_with_backoff(
    guarded: Live,
) -> None:
    t = await guarded.tenant()
    sprayer = from_address(guarded, "127.0.0.30")
    for i in range(6):
        r = await login(sprayer, f"target{i}@acme.com.br", "Verao2026!")
        assert r.status_code == 401
    r = await login(sprayer, t.emails["admin"], PASSWORD)  # even a right one
    assert r.status_code == 429 and r.json()["error"] == "ERR_RATE_LIMITED"
    assert "from this address" in r.json()["message"]
    first_wait = int(r.headers["retry-after"])
    assert 1 <= first_wait <= 3
    # Other addresses are not affected.
    assert (
        await login(from_address(guarded, "127.0.0.31"), t.emails["admin"], PASSWORD)
    ).status_code == 200
    [row] = await audit_actions(guarded, "auth.lockout.address")
    assert row.entity_type == "address" and "127.0.0.30" in str(row.data)
    # After the lock, the next burst locks it for twice as long.
    await asyncio.sleep(first_wait + 0.2)
    for i in range(6):
        assert (await login(sprayer, f"again{i}@acme.com.br", "Verao2026!")).status_code == 401
    r = await login(sprayer, t.emails["admin"], PASSWORD)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 3  # doubled
    assert 'zapd_login_lockouts_total{scope="address"} 2.0' in await scrape(guarded)


# ---------------------------------------------------------------- password policy


WEAK = ["12345678", "password", " " * 8, "password1", "senha123", "qwertyuiop"]


async def test_weak_passwords_are_refused_with_the_reason(live: Live) -> None:
    t = await live.tenant()
    for weak in WEAK:
        body = {"email": "nova@acme.com.br", "name": "Nova", "password": weak, "role": 2}
        r = await t.admin.post("/api/v1/users", json=body)
        assert r.status_code == 422, (weak, r.text)
        doc = r.json()
        assert doc["error"] == "ERR_WEAK_PASSWORD", doc
        assert doc["message"].startswith("password is too weak: ")
        assert len(doc["message"]) > len("password is too weak: ") + 5
    r = await t.admin.post(
        "/api/v1/users",
        json={"email": "x@acme.com.br", "name": "X", "password": "12345678", "role": 2},
    )
    assert "common password" in r.json()["message"]
    # The same rule on a reset and on one's own change.
    r = await t.admin.post(
        f"/api/v1/users/{t.users['agent']}/reset-password", json={"password": "password"}
    )
    assert r.status_code == 422 and r.json()["error"] == "ERR_WEAK_PASSWORD"
    r = await t.agent.patch(
        "/api/v1/auth/me", json={"current_password": PASSWORD, "new_password": "11111111"}
    )
    assert r.status_code == 422 and r.json()["error"] == "ERR_WEAK_PASSWORD"
    # Strong ones pass; existing (weak or not) passwords keep logging in.
    body = {"email": "forte@acme.com.br", "name": "Forte", "password": "Cedro-azul-no-quintal"}
    r = await t.admin.post("/api/v1/users", json={**body, "role": 2})
    assert r.status_code == 201, r.text
    await live.login("forte@acme.com.br", "Cedro-azul-no-quintal")
