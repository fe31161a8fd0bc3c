"""PostgreSQL's pool pre-ping: one statement per checkout, and a dead connection still replaced."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import PG_URL, require_pg
from zapd.db.engine import create_engine


@pytest.fixture
async def pg_engine() -> AsyncIterator[AsyncEngine]:
    require_pg()
    engine = create_engine(PG_URL, pool_pre_ping=True, pool_size=1, max_overflow=0)
    yield engine
    await engine.dispose()


async def _raw(engine: AsyncEngine) -> Any:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        return raw.driver_connection


async def test_the_ping_is_one_statement_outside_any_transaction(pg_engine: AsyncEngine) -> None:
    raw = await _raw(pg_engine)  # the pool's one connection
    seen: list[str] = []
    raw.add_query_logger(lambda record: seen.append(record.query.strip()))
    async with pg_engine.connect():  # the checkout pings it
        await asyncio.sleep(0)  # asyncpg hands records to loggers with call_soon
        assert seen == [";"]
    seen.clear()
    # The ping's autocommit is put back: a transaction on it still begins.
    async with pg_engine.begin() as conn:
        await conn.execute(text("SELECT 1"))
    await asyncio.sleep(0)
    assert seen[0] == ";"
    assert seen[1].upper().startswith("BEGIN")


async def test_a_dead_pooled_connection_is_replaced_at_checkout(pg_engine: AsyncEngine) -> None:
    async with pg_engine.connect() as conn:
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar()
    async with create_engine(PG_URL).connect() as admin:
        await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await admin.commit()
    async with pg_engine.connect() as conn:  # the ping fails, the pool reconnects
        assert (await conn.execute(text("SELECT pg_backend_pid()"))).scalar() != pid
