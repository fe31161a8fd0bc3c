"""Planner statistics: analyzed when missing or stale (SQLite), never taken or taken on
far fewer rows (PostgreSQL), by the refresher too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from zapd.db import stats
from zapd.db.engine import create_engine, session_factory


async def _fill(engine: AsyncEngine, table: str, rows: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY, v)"))
        await conn.execute(text(f"CREATE INDEX IF NOT EXISTS ix_{table}_v ON {table} (v)"))
        start = (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar() or 0
        await conn.execute(
            text(f"INSERT INTO {table} (v) VALUES (:v)"),
            [{"v": i % 7} for i in range(start, start + rows)],
        )


async def _analyzed(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT tbl, stat FROM sqlite_stat1"))).all()
    return {str(t): int(str(s).split()[0]) for t, s in rows}


async def test_missing_and_stale_statistics_are_refreshed(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 's.db'}")
    try:
        await _fill(engine, "small", 10)
        await _fill(engine, "big", stats.MIN_ROWS)
        assert await stats.refresh(engine) == ["big"]  # too small to matter: left alone
        assert (await _analyzed(engine))["big"] == stats.MIN_ROWS
        await _fill(engine, "big", stats.MIN_ROWS)  # 2x: within the drift allowed
        assert await stats.refresh(engine) == []
        await _fill(engine, "big", 3 * stats.MIN_ROWS)  # 5x now: stale
        assert await stats.refresh(engine) == ["big"]
        # Sampled (analysis_limit): the recorded count is an estimate of the 5,000 rows.
        assert 4 * stats.MIN_ROWS < (await _analyzed(engine))["big"] <= 5 * stats.MIN_ROWS
    finally:
        await engine.dispose()


async def test_the_refresher_runs_as_a_writer_and_stops(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    sessions = session_factory(engine)
    writes: list[str] = []

    @asynccontextmanager
    async def tx() -> AsyncIterator[AsyncSession]:
        writes.append("tx")
        async with sessions() as db, db.begin():
            yield db

    refresher = stats.StatsRefresher(engine, tx, interval=0.01)
    try:
        await _fill(engine, "big", stats.MIN_ROWS)
        await refresher.start()
        for _ in range(500):  # waits for the loop's first pass, whatever the load
            if "big" in await _analyzed_or_empty(engine):
                break
            await asyncio.sleep(0.01)
        assert "big" in await _analyzed(engine) and writes
        await refresher.stop()
        assert refresher._task is None
    finally:
        await refresher.stop()
        await engine.dispose()


async def _analyzed_or_empty(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        has = (
            await conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"))
        ).first()
    return await _analyzed(engine) if has else {}


async def test_postgresql_tables_with_rows_and_no_statistics_are_analyzed(
    engine: AsyncEngine,
) -> None:
    """A restored or upgraded history autovacuum has not analyzed yet (pg_upgrade drops
    statistics): analyzed once; a small table, and one with statistics, are left alone."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's statistics (SQLite's: the tests above)")
    assert await stats.refresh(engine) == []  # zapd's tables, empty
    async with engine.begin() as conn:
        for table, rows in (("big", stats.MIN_ROWS), ("small", 10)):
            await conn.execute(text(f"CREATE TABLE {table} (id integer PRIMARY KEY, v integer)"))
            await conn.execute(
                text(f"INSERT INTO {table} SELECT g, g % 7 FROM generate_series(1, {rows}) g")
            )
    assert await stats.refresh(engine) == ["big"]
    async with engine.connect() as conn:
        columns = (
            await conn.execute(
                text(
                    "SELECT attname FROM pg_stats "
                    "WHERE schemaname = current_schema() AND tablename = 'big' ORDER BY attname"
                )
            )
        ).all()
    assert [c[0] for c in columns] == ["id", "v"]
    assert await stats.refresh(engine) == []  # analyzed now: autovacuum's from here on


async def test_the_refresher_runs_on_postgresql_too(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's statistics (SQLite's: the tests above)")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE loaded (id integer PRIMARY KEY)"))
        await conn.execute(
            text(f"INSERT INTO loaded SELECT g FROM generate_series(1, {stats.MIN_ROWS}) g")
        )
    refresher = stats.StatsRefresher(engine, session_factory(engine).begin, interval=0.01)
    try:
        await refresher.start()
        for _ in range(500):  # waits for the loop's first pass, whatever the load
            async with engine.connect() as conn:
                seen = (
                    await conn.execute(
                        text(
                            "SELECT 1 FROM pg_stats "
                            "WHERE schemaname = current_schema() AND tablename = 'loaded'"
                        )
                    )
                ).first()
            if seen:
                break
            await asyncio.sleep(0.01)
        assert seen
    finally:
        await refresher.stop()
    assert refresher._task is None


async def _grow_pg(engine: AsyncEngine, table: str, rows: int) -> None:
    """Add `rows` rows to `table` (made if missing) and have the server count them now."""
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE TABLE IF NOT EXISTS {table} (id integer, v integer)"))
        await conn.execute(
            text(f"INSERT INTO {table} SELECT g, g % 7 FROM generate_series(1, {rows}) g")
        )
        # The statistics system takes a backend's counts when it flushes them (at most
        # once a second); this transaction's go at its end.
        await conn.execute(text("SELECT pg_stat_force_next_flush()"))


async def _reltuples(engine: AsyncEngine, table: str) -> float:
    async with engine.connect() as conn:
        found = await conn.execute(
            text(
                "SELECT c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relname = :t"
            ),
            {"t": table},
        )
        return float(found.scalar_one())


async def test_postgresql_tables_that_grew_are_analyzed_again(engine: AsyncEngine) -> None:
    """A history growing from nothing: statistics taken as it crosses MIN_ROWS, then
    each time it has grown DRIFT times; updates alone, and small tables, never count."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's statistics (SQLite's: the tests above)")
    await _grow_pg(engine, "small", 10)
    await _grow_pg(engine, "history", stats.MIN_ROWS)
    async with engine.connect() as conn:
        assert await stats.grown_pg_tables(conn) == ["history"]  # never analyzed
    assert await stats.refresh(engine) == ["history"]
    assert await _reltuples(engine, "history") == stats.MIN_ROWS
    await _grow_pg(engine, "history", stats.MIN_ROWS)  # 2x: within the drift allowed
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE history SET v = v + 1"))  # changes, not growth
        await conn.execute(text("SELECT pg_stat_force_next_flush()"))
    async with engine.connect() as conn:
        assert await stats.grown_pg_tables(conn) == []
    await _grow_pg(engine, "history", 3 * stats.MIN_ROWS)  # 5x the rows counted now
    async with engine.connect() as conn:
        assert await stats.grown_pg_tables(conn) == ["history"]
    async with engine.begin() as conn:
        assert await stats._refresh_on(conn, grown_only=True) == ["history"]
    assert await _reltuples(engine, "history") == 5 * stats.MIN_ROWS
    async with engine.connect() as conn:
        assert await stats.grown_pg_tables(conn) == []


async def test_the_refresher_checks_growth_on_postgresql_between_full_passes(
    engine: AsyncEngine,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's statistics (SQLite's: the tests above)")
    await _grow_pg(engine, "history", stats.MIN_ROWS)
    refresher = stats.StatsRefresher(
        engine, session_factory(engine).begin, interval=3600.0, pg_interval=0.01
    )
    try:
        await refresher.start()
        for _ in range(500):  # waits for the loop's first growth check, whatever the load
            if await _reltuples(engine, "history") > 0:
                break
            await asyncio.sleep(0.01)
        assert await _reltuples(engine, "history") == stats.MIN_ROWS
    finally:
        await refresher.stop()


async def test_sqlite_has_no_growth_check_between_full_passes(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    try:
        await _fill(engine, "big", stats.MIN_ROWS)
        async with engine.begin() as conn:
            assert await stats._refresh_on(conn, grown_only=True) == []
        assert await _analyzed_or_empty(engine) == {}  # left to the full pass
    finally:
        await engine.dispose()
