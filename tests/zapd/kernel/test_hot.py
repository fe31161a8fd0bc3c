"""Hot reads return what SQLAlchemy returns, read afresh each time, and fall back cleanly.

Each statement is run both ways on the same database: as a hot read (driver
connection of its own) and through SQLAlchemy's engine; rows, column names and
Python types must agree. A failing hot connection (closed under it on SQLite,
terminated by the server on PostgreSQL) costs nothing but the fallback: the read
still answers, and the next one runs on a fresh hot connection.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Integer, bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.enums import AutoAssignMode, Role
from tests.zapd.db import factories as f
from zapd.db.engine import single_statements
from zapd.db.models import ApiToken, Category, Department, RefreshToken, Tag, User, UserDepartment
from zapd.db.types import utcnow
from zapd.kernel import hot as hot_module
from zapd.kernel.hot import HotQuery, HotReads
from zapd.kernel.transient import DatabaseHealth
from zapd.services.people import auth


@pytest.fixture
async def hot(engine: AsyncEngine) -> AsyncIterator[HotReads]:
    reads = HotReads(engine, DatabaseHealth(), single_statements(engine).connect)
    yield reads
    await reads.close()


async def _seed(db: AsyncSession) -> dict[str, Any]:
    c, _ = await f.tenant(db)
    first = Department(
        company_id=c.id,
        name="Laboratório",
        slug="lab",
        menu_order=1,
        keywords=["exame", "resultado"],
        business_hours={"mon": [["08:00", "18:00"]]},
        auto_assign=AutoAssignMode.ROUND_ROBIN,
        greeting="Olá ☺",
        response_timeout_seconds=90,
    )
    db.add(first)
    await db.flush()
    db.add(
        Department(company_id=c.id, name="Comercial", slug="com", fallback_department_id=first.id)
    )
    user = User(
        company_id=c.id,
        email=f"{uuid.uuid4().hex}@x.br",
        name="Ana",
        password_hash="x",
        role=Role.AGENT,
    )
    db.add(user)
    await db.flush()
    db.add(UserDepartment(user_id=user.id, department_id=first.id, company_id=c.id))
    family = uuid.uuid4()
    db.add(
        RefreshToken(
            user_id=user.id,
            company_id=c.id,
            family_id=family,
            token_hash=uuid.uuid4().hex,
            expires_at=utcnow() + timedelta(days=1),
        )
    )
    db.add(Tag(company_id=c.id, name="vip", color="#ff0000"))
    db.add(Tag(company_id=c.id, name="atraso"))
    db.add(Category(company_id=c.id, name="Resolvido", description=None, active=False))
    db.add(
        ApiToken(
            company_id=c.id,
            name="bot",
            prefix="zap_x",
            token_hash="h" * 64,
            role=Role.AGENT,
            expires_at=utcnow() + timedelta(days=3),
        )
    )
    await db.commit()
    return {"company": c.id, "user": user.id, "family": family}


def _queries(seed: dict[str, Any]) -> list[tuple[HotQuery, dict[str, Any]]]:
    deps = Department.__table__
    page = (
        select(deps)
        .where(deps.c.company_id == bindparam("company"))
        .order_by(deps.c.id.desc())
        .limit(bindparam("limit", type_=Integer))
    )
    return [
        (auth._USER_PRINCIPAL, {"user_id": seed["user"], "family": seed["family"]}),
        (auth._USER_PRINCIPAL, {"user_id": uuid.uuid4(), "family": seed["family"]}),  # none
        (auth._API_TOKEN_PRINCIPAL, {"token_hash": "h" * 64}),
        (HotQuery(page), {"company": seed["company"], "limit": 10}),
        (HotQuery(select(Tag.__table__).order_by(Tag.name)), {}),
        (HotQuery(select(Category.__table__).where(Category.active.is_(False))), {}),
        (HotQuery(select(User.__table__).where(User.id == seed["user"])), {}),  # a literal
    ]


async def test_hot_rows_are_the_engines_rows(
    hot: HotReads, engine: AsyncEngine, db: AsyncSession
) -> None:
    seed = await _seed(db)
    for query, params in _queries(seed):
        got = await hot.rows(query, params)
        async with single_statements(engine).connect() as conn:
            want = (await conn.execute(query.stmt, params)).all()
        assert [tuple(r) for r in got] == [tuple(r) for r in want], query.stmt
        assert [[type(v) for v in r] for r in got] == [[type(v) for v in r] for r in want]
        for g, w in zip(got, want, strict=True):
            assert g._fields == tuple(w._fields)
    assert got and got[0].role == Role.AGENT and got[0].id == seed["user"]


async def test_every_read_reads_the_database(hot: HotReads, db: AsyncSession) -> None:
    seed = await _seed(db)
    query, params = _queries(seed)[0]
    assert (await hot.rows(query, params))[0].active is True
    await db.execute(update(User).where(User.id == seed["user"]).values(active=False))
    await db.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == seed["family"])
        .values(revoked_at=utcnow())
    )
    await db.commit()
    row = (await hot.rows(query, params))[0]
    assert row.active is False and row.family_revoked is True


async def test_a_failed_hot_connection_falls_back_then_is_replaced(
    hot: HotReads, engine: AsyncEngine, db: AsyncSession
) -> None:
    seed = await _seed(db)
    query, params = _queries(seed)[0]
    want = await hot.rows(query, params)
    if engine.dialect.name == "sqlite":
        broken: Any = hot._lite
        assert broken is not None
        broken.close()  # the hot connection fails under the next read
    else:
        broken = hot._idle[-1]
        async with engine.connect() as conn:
            pid = broken.get_server_pid()
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        for _ in range(50):  # the server closes the socket a moment later
            if broken.is_closed():
                break
            await asyncio.sleep(0.02)
    assert await hot.rows(query, params) == want  # answered the ordinary way
    assert await hot.rows(query, params) == want  # on a new hot connection
    fresh = hot._lite if engine.dialect.name == "sqlite" else hot._idle[-1]
    assert fresh is not None and fresh is not broken


async def test_more_readers_than_hot_connections(hot: HotReads, db: AsyncSession) -> None:
    seed = await _seed(db)
    query, params = _queries(seed)[3]
    want = await hot.rows(query, params)
    results = await asyncio.gather(
        *(hot.rows(query, params) for _ in range(hot_module.HOT_CONNECTIONS * 3))
    )
    assert all(r == want for r in results)
    assert len(hot._idle) <= hot_module.HOT_CONNECTIONS


async def test_after_close_reads_go_the_ordinary_way(hot: HotReads, db: AsyncSession) -> None:
    seed = await _seed(db)
    query, params = _queries(seed)[0]
    want = await hot.rows(query, params)
    await hot.close()
    assert hot._lite is None and not hot._idle
    assert await hot.rows(query, params) == want
    assert hot._lite is None and not hot._idle


async def test_disposing_of_the_engine_drops_the_hot_connections(
    hot: HotReads, engine: AsyncEngine, db: AsyncSession
) -> None:
    seed = await _seed(db)
    query, params = _queries(seed)[0]
    want = await hot.rows(query, params)
    held = list(hot._idle)
    assert hot._lite is not None or held
    await db.close()
    await engine.dispose()
    assert hot._lite is None and not hot._idle
    assert all(conn.is_closed() for conn in held)
    assert await hot.rows(query, params) == want  # the engine lives on: new ones open


async def test_a_missing_parameter_is_an_error_not_a_null(hot: HotReads) -> None:
    query, _ = _queries({"company": None, "user": None, "family": None})[3]
    with pytest.raises(KeyError):
        await hot.rows(query, {"limit": 5})  # no company
