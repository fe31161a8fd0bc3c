"""Accent-insensitive search over the API (`?q=lucia` finds "Lúcia"), on both backends,
answered from the `client_terms` index rather than a scan of every client."""

from __future__ import annotations

from sqlalchemy import select, text

from tests.zapd.api import seed
from tests.zapd.api.conftest import Live
from zapd.db import search
from zapd.db.models import Client


async def test_search_finds_accented_names_through_the_index(live: Live) -> None:
    t = await live.tenant()
    sid = await seed.session(live, t.company_id)
    lucia = await seed.client(live, t.company_id, "+5511955550010", name="Lúcia Ferreira")
    await seed.client(live, t.company_id, "+5511955550011", profile_name="João Conceição")
    luciano = await seed.client(live, t.company_id, "+5511955550012", name="Luciano")
    other = await live.tenant("Other")
    await seed.client(live, other.company_id, "+5511955550010", name="Lucia de Outra")
    ticket = await seed.ticket(live, t.company_id, sid, lucia, department_id=t.lab_id)

    async def names(q: str) -> list[str | None]:
        r = await t.agent.get("/api/v1/clients", params={"q": q})
        assert r.status_code == 200, r.text
        return sorted(c["name"] or c["profile_name"] for c in r.json()["items"])

    assert await names("lucia") == ["Luciano", "Lúcia Ferreira"]  # word prefixes
    assert await names("LUCI") == ["Luciano", "Lúcia Ferreira"]
    assert await names("lucia f") == ["Lúcia Ferreira"]  # every word must match
    assert await names("ferr") == ["Lúcia Ferreira"]
    assert await names("lúcia ferreira") == ["Lúcia Ferreira"]
    assert await names("conceicao") == ["João Conceição"]
    assert await names("joão") == ["João Conceição"]
    assert await names("maria") == []
    r = await t.agent.get("/api/v1/tickets", params={"q": "lucia"})
    assert [x["id"] for x in r.json()["items"]] == [str(ticket)]
    r = await t.agent.get("/api/v1/tickets", params={"q": "LÚCIA"})
    assert [x["id"] for x in r.json()["items"]] == [str(ticket)]

    # A rename through the API moves the terms along.
    r = await t.admin.patch(f"/api/v1/clients/{lucia}", json={"name": "Lúcia Álvares"})
    assert r.status_code == 200, r.text
    assert await names("alvares") == ["Lúcia Álvares"]
    assert await names("ferreira") == []

    # The name lookup is an index range, not a scan of the table.
    words = search.query_words("lucia")
    stmt = select(Client.id).where(search.name_matches(Client.id, words, t.company_id))
    async with live.kernel.read() as db:
        sql = str(stmt.compile(db.get_bind(), compile_kwargs={"literal_binds": True}))
        if live.backend == "sqlite":
            plan = " ".join(
                str(r[-1]) for r in (await db.execute(text("EXPLAIN QUERY PLAN " + sql))).all()
            )
            assert "ix_client_terms_company_id_term" in plan, plan
        else:
            await db.execute(text("SET LOCAL enable_seqscan = off"))
            plan = " ".join(r[0] for r in (await db.execute(text("EXPLAIN " + sql))).all())
            assert "client_terms_company_id_term" in plan, plan
        assert set((await db.execute(stmt)).scalars().all()) == {lucia, luciano}
