"""WAL checkpoints: committers keep only a far bound; the checkpointer's thread copies."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from zapd.db.checkpoint import WalCheckpointer
from zapd.db.engine import SQLITE_WAL_AUTOCHECKPOINT_PAGES, create_engine

ROWS = 1_000


async def _until(check: Callable[[], bool], what: str) -> None:
    for _ in range(1000):  # whatever the load
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def _rows_in_database_file(path: Path) -> int:
    """Rows of `t` in the database file itself (immutable: the WAL is not read)."""
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 't'").fetchone() is None:
            return 0  # not even its CREATE TABLE is there yet
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])
    finally:
        conn.close()


async def test_commits_are_copied_into_the_database_file_by_the_thread(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    checkpointer = WalCheckpointer(engine, interval=0.01)
    try:
        async with engine.begin() as conn:
            bound = (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar()
            assert bound == SQLITE_WAL_AUTOCHECKPOINT_PAGES  # committers: only a far bound
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO t (v) VALUES (:v)"), [{"v": "x" * 200} for _ in range(ROWS)]
            )
        # Committed, but still in the WAL only (far below the committers' bound).
        assert await asyncio.to_thread(_rows_in_database_file, path) == 0
        await checkpointer.start()
        await _until(
            lambda: (
                checkpointer.last is not None
                and checkpointer.last[1] > 0
                and checkpointer.last[2] == checkpointer.last[1]
            ),
            "a complete checkpoint",
        )
        assert await asyncio.to_thread(_rows_in_database_file, path) == ROWS
        async with engine.connect() as conn:  # and the engine reads on as before
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == ROWS
    finally:
        await checkpointer.stop()
        await engine.dispose()
    assert checkpointer._thread is None
    await checkpointer.stop()  # stopping twice is harmless


async def test_a_dropped_checkpointer_ends_its_thread(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'd.db'}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        checkpointer = WalCheckpointer(engine, interval=0.01)
        await checkpointer.start()
        thread = checkpointer._thread
        assert thread is not None and thread.is_alive()
        del checkpointer  # never stopped: a daemon closed without its workers' stop
        gc.collect()
        await _until(lambda: not thread.is_alive(), "the thread's end")
    finally:
        await engine.dispose()


async def test_no_thread_for_an_in_memory_database() -> None:
    memory = create_engine("sqlite+aiosqlite:///:memory:")
    try:
        checkpointer = WalCheckpointer(memory, interval=0.01)
        await checkpointer.start()
        assert checkpointer._thread is None
    finally:
        await memory.dispose()


async def test_no_thread_on_postgresql(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        return
    checkpointer = WalCheckpointer(engine, interval=0.01)
    await checkpointer.start()
    assert checkpointer._thread is None


async def test_a_quiet_wal_is_emptied_and_a_busy_one_is_not(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    wal = tmp_path / "q.db-wal"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    checkpointer = WalCheckpointer(engine, interval=0.01, quiet_seconds=1.0, truncate_pages=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        await checkpointer.start()
        # Commits every tick or so: never still for 100 ticks, never emptied.
        for _ in range(30):
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": "x" * 2000})
            await asyncio.sleep(0.005)
        assert checkpointer.truncations == 0 and wal.stat().st_size > 0
        # Then nothing: copied, still for quiet_seconds, emptied once.
        await _until(lambda: checkpointer.truncations == 1, "the quiet WAL emptied")
        assert wal.stat().st_size == 0
        await asyncio.sleep(0.4)  # an empty WAL is not emptied again
        assert checkpointer.truncations == 1
        async with engine.connect() as conn:  # nothing lost
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 30
        assert await asyncio.to_thread(_rows_in_database_file, path) == 30
    finally:
        await checkpointer.stop()
        await engine.dispose()


async def test_a_reader_on_an_older_snapshot_puts_the_truncation_off(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    checkpointer = WalCheckpointer(engine, interval=0.01, quiet_seconds=0.05, truncate_pages=1)
    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM t").fetchone()  # holds its snapshot
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t DEFAULT VALUES"))
        await checkpointer.start()
        await asyncio.sleep(0.3)  # quiet for many times quiet_seconds
        assert checkpointer.truncations == 0  # it would have to wait for the reader
        reader.execute("COMMIT")
        await _until(lambda: checkpointer.truncations == 1, "the WAL emptied once free")
    finally:
        reader.close()
        await checkpointer.stop()
        await engine.dispose()
