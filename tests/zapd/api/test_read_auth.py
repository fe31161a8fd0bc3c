"""Routes whose reads are hot (`zapd.kernel.hot`): authentication and the listing.

They refuse what they always refused, at once; an API token's use is still noted; no
pooled connection stays out, failed or not; and what they answer is what the models
say through the ORM (the same JSON, field for field).
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.pool import QueuePool

from shared.enums import Role
from shared.protocol.catalog import CategoryOut, TagOut
from shared.protocol.departments import DepartmentOut
from tests.zapd.api.conftest import Live
from zapd.db.models import Category, Department, Tag

PATH = "/api/v1/departments"


def _checked_out(live: Live) -> int:
    pool = live.kernel.engine.sync_engine.pool
    return pool.checkedout() if isinstance(pool, QueuePool) else 0


async def test_logout_and_disable_are_refused_at_once(live: Live) -> None:
    t = await live.tenant()
    agent, pair = await live.login(t.emails["agent"])
    assert (await agent.get(PATH)).status_code == 200
    r = await agent.post("/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code in (200, 204), r.text
    r = await agent.get(PATH)
    assert r.status_code == 401 and r.json()["error"] == "ERR_TOKEN_REVOKED"
    assert (await t.clients["agent2"].get(PATH)).status_code == 200
    r = await t.admin.post(f"/api/v1/users/{t.users['agent2']}/disable")
    assert r.status_code == 200, r.text
    assert (await t.clients["agent2"].get(PATH)).status_code == 401
    assert (await live.client().get(PATH)).status_code == 401
    assert (await live.client("not-a-jwt").get(PATH)).status_code == 401


async def test_an_api_token_is_noted_and_revoked_at_once(live: Live) -> None:
    t = await live.tenant()
    r = await t.admin.post("/api/v1/api-tokens", json={"name": "bot", "role": int(Role.AGENT)})
    assert r.status_code == 201, r.text
    created = r.json()
    bot = live.client(created["token"])
    r = await bot.get(PATH)
    assert r.status_code == 200 and {d["name"] for d in r.json()["items"]} == {
        "Laboratório",
        "Comercial",
    }
    listed = (await t.admin.get("/api/v1/api-tokens")).json()
    assert listed[0]["last_used_at"] is not None  # the write before the read
    assert (await t.admin.delete(f"/api/v1/api-tokens/{created['id']}")).status_code == 200
    assert (await bot.get(PATH)).status_code == 401


async def test_the_connection_goes_back_after_success_and_failure(live: Live) -> None:
    t = await live.tenant()
    before = _checked_out(live)
    for _ in range(5):
        assert (await t.agent.get(PATH)).status_code == 200
        r = await t.agent.get(PATH, params={"cursor": "!!"})  # the route fails (bad cursor)
        assert r.status_code == 422 and r.json()["error"] == "ERR_BAD_CURSOR"
    # The daemon's background work may hold a connection for a moment: a leak stays.
    for _ in range(100):
        if _checked_out(live) <= before:
            break
        await asyncio.sleep(0.05)
    assert _checked_out(live) <= before


async def _walk(client, order: str, **params: str) -> list[str]:  # type: ignore[no-untyped-def]
    names: list[str] = []
    cursor = None
    while True:
        query = {"limit": "1", "order": order, **params, **({"cursor": cursor} if cursor else {})}
        r = await client.get(PATH, params=query)
        assert r.status_code == 200, r.text
        names += [d["name"] for d in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return names


async def test_pages_walk_both_ways_within_the_callers_company(live: Live) -> None:
    t = await live.tenant()
    other = await live.tenant("Other")
    r = await t.admin.post(PATH, json={"name": "Financeiro"})
    assert r.status_code == 201, r.text
    ascending = await _walk(t.agent, "asc")
    assert ascending == ["Laboratório", "Comercial", "Financeiro"]
    assert await _walk(t.agent, "desc") == ascending[::-1]
    # A company member naming another company sees nothing of it; a global admin does.
    r = await t.agent.get(PATH, params={"company_id": str(other.company_id)})
    assert r.status_code == 404
    assert live.root is not None
    assert await _walk(live.root, "asc", company_id=str(other.company_id)) == [
        "Laboratório",
        "Comercial",
    ]
    everyone = await _walk(live.root, "asc")
    assert len(everyone) >= 5 and everyone.count("Financeiro") == 1


async def test_listings_answer_what_the_orm_reads(live: Live) -> None:
    t = await live.tenant()
    for body in ({"name": "Financeiro", "keywords": ["boleto"], "greeting": "Oi ☺"},):
        assert (await t.admin.post(PATH, json=body)).status_code == 201
    for name, color in (("vip", "#ff0000"), ("atraso", None)):
        r = await t.admin.post("/api/v1/tags", json={"name": name, "color": color})
        assert r.status_code == 201, r.text
    r = await t.admin.post("/api/v1/categories", json={"name": "Resolvido"})
    assert r.status_code == 201, r.text
    async with live.kernel.read() as db:
        deps = (
            await db.scalars(
                select(Department)
                .where(Department.company_id == t.company_id)
                .order_by(Department.id.desc())
            )
        ).all()
        tags = (
            await db.scalars(
                select(Tag).where(Tag.company_id == t.company_id).order_by(Tag.name, Tag.id)
            )
        ).all()
        cats = (await db.scalars(select(Category).where(Category.company_id == t.company_id))).all()
        want_deps = [DepartmentOut.model_validate(d).model_dump(mode="json") for d in deps]
        want_tags = [TagOut.model_validate(x).model_dump(mode="json") for x in tags]
        want_cats = [CategoryOut.model_validate(x).model_dump(mode="json") for x in cats]
    r = await t.agent.get(PATH)
    assert r.status_code == 200 and r.json() == {"items": want_deps, "next_cursor": None}
    assert (await t.agent.get("/api/v1/tags")).json() == want_tags
    assert (await t.agent.get("/api/v1/categories")).json() == want_cats
    assert (await t.agent.get("/api/v1/categories", params={"active": "false"})).json() == []
