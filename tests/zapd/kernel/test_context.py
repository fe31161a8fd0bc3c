"""`Kernel.read()`: one snapshot for every statement of the session, on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.zapd.api.conftest import test_settings as make_settings
from tests.zapd.db import factories as f
from zapd.db.engine import session_factory
from zapd.db.models import Company
from zapd.kernel.context import Kernel
from zapd.realtime.hub import Hub
from zapd.security import Passwords


@pytest.fixture
async def kernel(engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[Kernel]:
    sessions = session_factory(engine)
    yield Kernel(
        settings=make_settings(tmp_path),
        engine=engine,
        sessions=sessions,
        jwt_secret="unused-" + "x" * 40,
        passwords=Passwords(time_cost=1, memory_kib=64),
        hub=Hub(sessions),
    )


async def test_a_read_session_sees_one_snapshot(kernel: Kernel) -> None:
    async with kernel.tx() as db:
        company = f.company(name="Before")
        db.add(company)
    async with kernel.read() as reading:
        first = await reading.scalar(select(Company.name).where(Company.id == company.id))
        # Another transaction commits a change between two statements of the read.
        async with kernel.tx() as db:
            await db.execute(update(Company).where(Company.id == company.id).values(name="After"))
            await db.execute(
                update(Company).where(Company.id == company.id).values(last_event_seq=7)
            )
        second = (
            await reading.execute(
                select(Company.name, Company.last_event_seq).where(Company.id == company.id)
            )
        ).one()
    assert first == "Before"
    assert tuple(second) == ("Before", 0)  # the first statement's snapshot, not a newer one
    async with kernel.read() as reading:  # the next read sees the change
        assert await reading.scalar(select(Company.name).where(Company.id == company.id)) == (
            "After"
        )


async def test_a_read_session_refuses_writes_on_postgresql(kernel: Kernel) -> None:
    if kernel.engine.dialect.name == "sqlite":
        pytest.skip("SQLite's read sessions are deferred transactions: no read-only mode")
    async with kernel.tx() as db:
        company = f.company(name="Kept")
        db.add(company)
    with pytest.raises(DBAPIError, match="read-only transaction"):
        async with kernel.read() as reading:
            await reading.execute(
                update(Company).where(Company.id == company.id).values(name="Changed")
            )
    async with kernel.read() as reading:
        assert await reading.scalar(select(Company.name).where(Company.id == company.id)) == "Kept"
