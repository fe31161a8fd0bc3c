"""Planner statistics on SQLite: ANALYZE the tables whose size moved, after migrating and
periodically.

PostgreSQL keeps its statistics itself (autovacuum's ANALYZE). SQLite has none until
ANALYZE runs, and without them it guesses: the returning-customer lookup, for one, walked
every closed ticket through the `(status, timeout_at)` index instead of the client's few
tickets. `PRAGMA optimize` is SQLite's own answer, but on the SQLite this runs on (3.40)
it only considers tables the planner used on the connection that runs it, and zapd's
connections live in a pool: which tables it refreshes would depend on which connection
it lands on. So zapd does the same check itself, on every table:

- a table with at least `MIN_ROWS` rows and no statistics, or whose row count is now
  `DRIFT` times larger or smaller than when last analyzed, is analyzed;
- `PRAGMA analysis_limit` bounds each ANALYZE to a sample, so the cost stays a few
  milliseconds per index whatever the size of the history;
- it runs after every migration (new indexes have no statistics) and every
  `INTERVAL` seconds while zapd runs (`StatsRefresher`), as a writer: through the
  kernel's write transaction, so it queues behind the other writers like any of them.

Row counts come from `max(rowid)`: O(log n), exact enough for a factor while tables
grow, which is how a history moves. Deletes do not lower it, so a table purged to a
fraction of its size keeps its old statistics (they then overstate it; plans on the
purged history stay the ones chosen for the larger one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

Writer = Callable[[], AbstractAsyncContextManager[AsyncSession]]

log = logging.getLogger("zapd.db")

MIN_ROWS = 1_000
DRIFT = 4.0
ANALYSIS_LIMIT = 1_000  # rows sampled per index
INTERVAL = 600.0

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


async def stale_tables(conn: AsyncConnection) -> list[str]:
    """Return the tables whose statistics are missing or stale (SQLite only)."""
    tables = [
        str(name)
        for (name,) in (
            await conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' AND name != 'alembic_version'"
            )
        ).all()
        if _NAME.fullmatch(str(name))
    ]
    has_stat1 = (
        await conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
        )
    ).first() is not None
    recorded: dict[str, int] = {}
    if has_stat1:
        result = await conn.exec_driver_sql("SELECT tbl, stat FROM sqlite_stat1")
        for row in result.all():
            values: tuple[object, ...] = tuple(row)
            tbl, first = str(values[0]), str(values[1] or "").split(" ", 1)[0]
            if first.isdigit():
                recorded[tbl] = max(recorded.get(tbl, 0), int(first))
    stale = []
    for table in tables:
        # `table` comes from sqlite_master and matched _NAME: a plain identifier.
        count = f'SELECT max(rowid) FROM "{table}"'  # noqa: S608
        rows = (await conn.exec_driver_sql(count)).scalar() or 0
        before = recorded.get(table)
        if before is None or before == 0:
            if rows >= MIN_ROWS:
                stale.append(table)
        elif rows >= MIN_ROWS and not (before / DRIFT <= rows <= before * DRIFT):
            stale.append(table)
    return stale


async def analyze(conn: AsyncConnection, tables: list[str]) -> None:
    """ANALYZE `tables` on `conn`, sampling at most `ANALYSIS_LIMIT` rows per index."""
    await conn.exec_driver_sql(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT}")
    for table in tables:
        await conn.exec_driver_sql(f'ANALYZE "{table}"')


async def refresh(engine: AsyncEngine) -> list[str]:
    """Analyze the stale tables of a SQLite database (no-op elsewhere); return them."""
    if engine.dialect.name != "sqlite":
        return []
    async with engine.begin() as conn:
        tables = await stale_tables(conn)
        if tables:
            await analyze(conn, tables)
    return tables


async def refresh_as_writer(engine: AsyncEngine, tx: Writer) -> list[str]:
    """`refresh` in a write transaction of `tx` (the kernel's: behind its write lock)."""
    if engine.dialect.name != "sqlite":
        return []
    async with tx() as db:
        conn = await db.connection()
        tables = await stale_tables(conn)
        if tables:
            await analyze(conn, tables)
    return tables


class StatsRefresher:
    """Every `interval` seconds, analyze the SQLite tables whose size moved.

    `tx` opens a write transaction (the kernel's `tx`, so ANALYZE queues behind the
    other writers instead of waiting in SQLite's busy handler).
    """

    def __init__(self, engine: AsyncEngine, tx: Writer, interval: float = INTERVAL) -> None:
        self.engine = engine
        self.tx = tx
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the loop (nothing to do on PostgreSQL)."""
        if self.engine.dialect.name == "sqlite" and self._task is None:
            self._task = asyncio.create_task(self._run(), name="zap-sqlite-stats")

    async def stop(self) -> None:
        """Stop the loop."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                tables = await refresh_as_writer(self.engine, self.tx)
            except Exception as exc:  # statistics are an optimisation: try again later
                log.warning("refreshing SQLite statistics failed: %s", exc)
                continue
            if tables:
                log.info("analyzed %s", ", ".join(tables))
