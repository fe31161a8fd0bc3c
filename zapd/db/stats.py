"""Planner statistics: ANALYZE the tables that need it, after migrating and periodically.

SQLite has none until ANALYZE runs, and without them it guesses: the returning-customer
lookup, for one, walked every closed ticket through the `(status, timeout_at)` index
instead of the client's few tickets. `PRAGMA optimize` is SQLite's own answer, but on
the SQLite this runs on (3.40) it only considers tables the planner used on the
connection that runs it, and zapd's connections live in a pool: which tables it
refreshes would depend on which connection it lands on. So zapd does the same check
itself, on every table:

- a table with at least `MIN_ROWS` rows and no statistics, or whose row count is now
  `DRIFT` times larger or smaller than when last analyzed, is analyzed;
- `PRAGMA analysis_limit` bounds each ANALYZE to a sample, so the cost stays a few
  milliseconds per index whatever the size of the history;
- it runs after every migration (new indexes have none) and every `INTERVAL` seconds
  while zapd runs (`StatsRefresher`), as a writer: through the kernel's write
  transaction, so it queues behind the other writers like any of them.

Row counts come from `max(rowid)`: O(log n), exact enough for a factor while tables
grow, which is how a history moves. Deletes do not lower it, so a table purged to a
fraction of its size keeps its old statistics (they then overstate it; plans on the
purged history stay the ones chosen for the larger one).

PostgreSQL keeps its statistics itself (autovacuum's ANALYZE, as a table's rows move),
except where nothing moves them: statistics are not carried by `pg_upgrade`, and a
restored or bulk-loaded history waits for autovacuum's next round. Without them the
planner guesses too, and badly for the pipeline: on tables no ANALYZE had seen, the
batch's stored-message check took the `(company_id, created_at)` index and filtered
every message of the company, instead of one probe of the unique
`(company_id, session_id, wa_message_id)` per message (measured: ingest on a history of
1M messages loaded without statistics went at 497 events/s, and at 1,197 after this
refresh, which took 0.64 s). So on PostgreSQL the same
check finds the tables of zapd's schema holding at least `MIN_ROWS` rows and no
column statistics at all, and analyzes them (ANALYZE samples: its cost does not grow
with the table).

A history that grows from nothing (a new node, a new company's first hour) is the
other case autovacuum is slow for: it looks every minute, and until its first ANALYZE
the planner guesses there too (the stored-message check took 5-6 ms per batch instead
of 0.2 ms on a table of ~20k rows; ingest went at ~1,050 events/s for the first ten
seconds of a new database, ~1,430 with the tables analyzed as they grew). So on
PostgreSQL the refresher also analyzes, every `PG_INTERVAL` seconds, the tables whose
live rows (`pg_stat_user_tables.n_live_tup`, the server's running count) reached
`MIN_ROWS` and are `DRIFT` times more or fewer than the planner's `pg_class.reltuples`
(what the last ANALYZE or VACUUM counted; none yet: -1): the rule SQLite's check
follows. A table's statistics are thus taken at 1k, 4k, 16k.. rows as it grows (a
handful of ANALYZEs in its life), never because its rows are merely updated (those
stay autovacuum's, at 10%); the check itself is one catalog read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

Writer = Callable[[], AbstractAsyncContextManager[AsyncSession]]

log = logging.getLogger("zapd.db")

MIN_ROWS = 1_000
DRIFT = 4.0
ANALYSIS_LIMIT = 1_000  # rows sampled per index
INTERVAL = 600.0
PG_INTERVAL = 2.0  # PostgreSQL: seconds between checks of the tables' growth

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


async def unanalyzed_pg_tables(conn: AsyncConnection) -> list[str]:
    """Return the tables of the current schema (PostgreSQL) with rows and no statistics.

    "No statistics": not one row in `pg_stats` (an analyzed table with rows has one per
    column). "Rows": at least `MIN_ROWS`, counted up to that many.
    """
    candidates = [
        str(name)
        for (name,) in (
            await conn.exec_driver_sql(
                "SELECT c.relname FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') "
                "AND c.relname != 'alembic_version' "
                "AND NOT EXISTS (SELECT 1 FROM pg_stats s "
                "WHERE s.schemaname = n.nspname AND s.tablename = c.relname) "
                "ORDER BY c.relname"
            )
        ).all()
        if _NAME.fullmatch(str(name))
    ]
    if not candidates:
        return []
    # One statement for all (a start-up cost of two round trips). Each `table` comes
    # from pg_class and matched _NAME: a plain identifier.
    counts = " UNION ALL ".join(
        f'SELECT {i}, (SELECT count(*) FROM (SELECT 1 FROM "{table}" LIMIT {MIN_ROWS}) AS s)'  # noqa: S608
        for i, table in enumerate(candidates)
    )
    found = sorted(tuple(row) for row in (await conn.exec_driver_sql(counts)).all())
    return [candidates[int(row[0])] for row in found if int(row[1]) >= MIN_ROWS]


async def grown_pg_tables(conn: AsyncConnection) -> list[str]:
    """Return the tables of the current schema (PostgreSQL) whose row count drifted.

    Live rows (the statistics system's count) at least `MIN_ROWS` and `DRIFT` times
    more or fewer than `pg_class.reltuples` (-1, or 0, when never counted).
    """
    rows = (
        await conn.exec_driver_sql(
            "SELECT c.relname, s.n_live_tup, c.reltuples FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_stat_user_tables s ON s.relid = c.oid "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') "
            "AND c.relname != 'alembic_version' ORDER BY c.relname"
        )
    ).all()
    grown = []
    for row in rows:
        values: tuple[Any, ...] = tuple(row)
        name, live, counted = str(values[0]), int(values[1] or 0), float(values[2])
        if live < MIN_ROWS or not _NAME.fullmatch(name):
            continue
        if counted <= 0 or not (counted / DRIFT <= live <= counted * DRIFT):
            grown.append(name)
    return grown


async def analyze(conn: AsyncConnection, tables: list[str]) -> None:
    """ANALYZE `tables` on `conn` (SQLite: sampling at most `ANALYSIS_LIMIT` rows per
    index; PostgreSQL samples on its own)."""
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT}")
    for table in tables:
        await conn.exec_driver_sql(f'ANALYZE "{table}"')


async def _refresh_on(conn: AsyncConnection, *, grown_only: bool = False) -> list[str]:
    if conn.dialect.name == "sqlite":
        if grown_only:
            return []
        tables = await stale_tables(conn)
    elif conn.dialect.name == "postgresql":
        tables = await grown_pg_tables(conn)
        if not grown_only:
            tables = sorted(set(tables) | set(await unanalyzed_pg_tables(conn)))
    else:
        return []
    if tables:
        await analyze(conn, tables)
    return tables


async def refresh(engine: AsyncEngine) -> list[str]:
    """Analyze the tables that need it (see the module docstring); return them."""
    async with engine.begin() as conn:
        return await _refresh_on(conn)


async def refresh_as_writer(
    engine: AsyncEngine, tx: Writer, *, grown_only: bool = False
) -> list[str]:
    """`refresh` in a write transaction of `tx` (the kernel's: behind its write lock).

    `grown_only`: PostgreSQL's growth check alone (nothing on SQLite).
    """
    async with tx() as db:
        return await _refresh_on(await db.connection(), grown_only=grown_only)


class StatsRefresher:
    """Every `interval` seconds, analyze the tables that need it (see the module docstring).

    On PostgreSQL it also checks the tables' growth alone every `pg_interval` seconds.
    `tx` opens a write transaction (the kernel's `tx`, so ANALYZE queues behind the
    other writers instead of waiting in SQLite's busy handler).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        tx: Writer,
        interval: float = INTERVAL,
        pg_interval: float = PG_INTERVAL,
    ) -> None:
        self.engine = engine
        self.tx = tx
        self.interval = interval
        self.pg_interval = pg_interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="zap-planner-stats")

    async def stop(self) -> None:
        """Stop the loop."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        postgres = self.engine.dialect.name == "postgresql"
        tick = min(self.interval, self.pg_interval) if postgres else self.interval
        full_at = loop.time() + self.interval
        while True:
            await asyncio.sleep(tick)
            # Half a tick early counts: a timer may wake a hair before its time.
            full = not postgres or loop.time() >= full_at - tick / 2
            if full:
                full_at = loop.time() + self.interval
            try:
                tables = await refresh_as_writer(self.engine, self.tx, grown_only=not full)
            except Exception as exc:  # statistics are an optimisation: try again later
                log.warning("refreshing planner statistics failed: %s", exc)
                continue
            if tables:
                log.info("analyzed %s", ", ".join(tables))
