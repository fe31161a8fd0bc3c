"""SQLite connections make one thread trip per statement and lose nothing doing so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncEngine

from zapd.db import sqlite_driver
from zapd.db.engine import create_engine, read_only, single_statements


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> Any:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'drv.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
    yield engine
    await engine.dispose()


class Trips:
    """Count the calls handed to connections' threads."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: list[str] = []
        original = sqlite_driver.OneTripConnection.trip

        async def counted(conn: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
            self.names.append(getattr(fn, "__name__", repr(fn)))
            return await original(conn, fn, *args, **kwargs)

        monkeypatch.setattr(sqlite_driver.OneTripConnection, "trip", counted)


async def _values(engine: AsyncEngine) -> list[str]:
    async with read_only(engine).connect() as conn:
        return [r[0] for r in (await conn.execute(text("SELECT v FROM t ORDER BY id"))).all()]


async def test_a_read_is_one_trip_and_idle_commit_rollback_are_none(
    sqlite_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with sqlite_engine.begin() as conn:  # the pool holds a connection already
        await conn.execute(text("INSERT INTO t (v) VALUES ('a')"))
    trips = Trips(monkeypatch)
    async with single_statements(sqlite_engine).connect() as conn:
        rows = (await conn.execute(text("SELECT id, v FROM t"))).all()
    assert [tuple(r) for r in rows] == [(1, "a")]
    assert trips.names == ["_run"]  # no cursor/fetch/close trips, no idle rollback
    trips.names.clear()
    async with read_only(sqlite_engine).connect() as conn:
        await conn.execute(text("SELECT v FROM t"))
        await conn.commit()
    assert trips.names == ["_run_after", "commit"]  # BEGIN with the SELECT, COMMIT
    trips.names.clear()
    async with sqlite_engine.begin():
        pass  # BEGIN IMMEDIATE queued, never needed: no trip at all
    assert trips.names == []


async def test_writes_commit_and_roll_back(sqlite_engine: AsyncEngine) -> None:
    async with sqlite_engine.begin() as conn:
        r = await conn.execute(text("INSERT INTO t (v) VALUES ('a')"))
        assert r.lastrowid == 1 and r.rowcount == 1
        r = await conn.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "b"}, {"v": "c"}])
        assert r.rowcount == 2
    with pytest.raises(RuntimeError):
        async with sqlite_engine.begin() as conn:
            await conn.execute(text("UPDATE t SET v = v || '!'"))
            raise RuntimeError("roll back")
    assert await _values(sqlite_engine) == ["a", "b", "c"]
    async with sqlite_engine.begin() as conn:
        r = await conn.execute(text("UPDATE t SET v = v || '?' WHERE v != 'a'"))
        assert r.rowcount == 2
    assert await _values(sqlite_engine) == ["a", "b?", "c?"]


async def test_a_failed_statement_raises_and_the_transaction_still_ends(
    sqlite_engine: AsyncEngine,
) -> None:
    with pytest.raises(exc.IntegrityError):
        async with sqlite_engine.begin() as conn:
            await conn.execute(text("INSERT INTO t (v) VALUES ('a')"))
            await conn.execute(text("INSERT INTO t (v) VALUES ('a')"))
    assert await _values(sqlite_engine) == []
    # The connection went back to the pool clean: the next writer gets the lock.
    async with sqlite_engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (v) VALUES ('z')"))
    assert await _values(sqlite_engine) == ["z"]


async def test_savepoints_and_many_rows(sqlite_engine: AsyncEngine) -> None:
    async with sqlite_engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (v) VALUES ('kept')"))
        nested = await conn.begin_nested()
        await conn.execute(text("INSERT INTO t (v) VALUES ('undone')"))
        await nested.rollback()
        await conn.execute(
            text("INSERT INTO t (v) VALUES (:v)"), [{"v": f"r{i:04d}"} for i in range(1500)]
        )
    async with read_only(sqlite_engine).connect() as conn:
        result = await conn.execute(text("SELECT v FROM t ORDER BY id"))
        first = result.fetchmany(2)
        rest = result.all()
    assert [r[0] for r in first] == ["kept", "r0000"] and len(rest) == 1499


async def _driver(conn: Any) -> Any:
    return (await conn.get_raw_connection()).driver_connection


async def test_writes_behind_ride_with_the_next_statement_or_the_commit(
    sqlite_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    trips = Trips(monkeypatch)
    async with sqlite_engine.begin() as conn:
        with sqlite_driver.writes_behind(await _driver(conn)):
            await conn.execute(text("INSERT INTO t (v) VALUES ('a')"))
            await conn.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "b"}, {"v": "c"}])
        assert trips.names == []  # BEGIN and both inserts wait
        seen = (await conn.execute(text("SELECT count(*) FROM t"))).scalar()
        assert seen == 3  # the next statement runs after them and sees them
        assert trips.names == ["_run_after"]
        with sqlite_driver.writes_behind(await _driver(conn)):
            await conn.execute(text("INSERT INTO t (v) VALUES ('d')"))
    assert trips.names == ["_run_after", "_commit_after"]  # the last one rode with COMMIT
    assert await _values(sqlite_engine) == ["a", "b", "c", "d"]


async def test_a_queued_insert_fails_at_the_next_trip_and_a_rollback_drops_the_queue(
    sqlite_engine: AsyncEngine,
) -> None:
    with pytest.raises(exc.IntegrityError):
        async with sqlite_engine.begin() as conn:
            with sqlite_driver.writes_behind(await _driver(conn)):
                await conn.execute(text("INSERT INTO t (v) VALUES ('a')"))
                await conn.execute(text("INSERT INTO t (v) VALUES ('a')"))
            await conn.execute(text("SELECT 1"))  # the duplicate is refused here
    with pytest.raises(exc.IntegrityError):
        async with sqlite_engine.begin() as conn:
            with sqlite_driver.writes_behind(await _driver(conn)):
                await conn.execute(text("INSERT INTO t (v) VALUES ('a')"))
                await conn.execute(text("INSERT INTO t (v) VALUES ('a')"))
        # ... or by the commit
    with pytest.raises(RuntimeError):
        async with sqlite_engine.begin() as conn:
            with sqlite_driver.writes_behind(await _driver(conn)):
                await conn.execute(text("INSERT INTO t (v) VALUES ('never')"))
            raise RuntimeError("roll back")
    assert await _values(sqlite_engine) == []
    async with sqlite_engine.begin() as conn:  # the connection is clean for the next writer
        await conn.execute(text("INSERT INTO t (v) VALUES ('z')"))
    assert await _values(sqlite_engine) == ["z"]
