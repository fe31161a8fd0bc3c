"""Hot reads: one-statement reads on driver connections of their own, past SQLAlchemy.

Every authenticated request reads its principal, and the common listings one page.
Through SQLAlchemy's asyncio engine each such statement cost several times the
statement itself: a pool checkout (a pre-ping round trip on PostgreSQL), the greenlet
bridge, compiled-statement and result machinery, and on SQLite a hand-off to the
connection's thread and back (~0.1 ms of CPU per trip on a busy loop). `HotReads`
runs them on connections of its own:

- SQLite: one sqlite3 connection to the engine's file, opened with the engine's own
  arguments and used on the event loop's thread (no hand-off), reads only
  (`PRAGMA query_only`), autocommit, and no busy wait (`busy_timeout = 0`): under
  WAL a reader does not wait for writers, and should SQLite answer busy anyway the
  statement goes the ordinary way. A hot read is one indexed statement returning at
  most a page (`MAX_LIMIT` rows) or a company's short catalogue (tags, categories):
  the cost of serialising its answer, not a stall. An in-memory database has none.
- PostgreSQL: up to `HOT_CONNECTIONS` asyncpg connections, opened when first needed
  through the engine (its connect arguments and per-connection set-up: JSON codecs,
  search_path) and detached from its pool, so they are not counted there; each
  statement prepared once per connection (asyncpg's statement cache); no pre-ping.
  When all are busy, or the database is known to be down, the ordinary way.

Invariants:
- A hot read returns what SQLAlchemy would for the same Core SELECT: the statement is
  compiled by the engine's own dialect, parameters and values pass through the column
  types' own processors, and rows carry the selected columns' names as attributes.
- It caches nothing it read: every call reads the database (a revocation, a
  disabled account, a new row show on the next call). Each statement is its own
  snapshot, as on `Kernel.statement()`; it opens no transaction and writes nothing.
- Any failure on a hot connection (a dropped PostgreSQL connection, SQLite busy, a
  cancelled statement) runs the statement once more the ordinary way, on
  `Kernel.statement()`: reads are idempotent, and the errors and outage bookkeeping a
  caller sees (503 with Retry-After, one log line per outage) are the ordinary path's.
  A failed connection is dropped (SQLite busy excepted) and replaced when next needed.
  A success is reported to `db_health`.
- Hot connections live no longer than the engine: disposing of it drops them (one in
  use is dropped when its statement returns); `close()` ends them for good.
"""

from __future__ import annotations

import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, NamedTuple, TypeVar

from sqlalchemy import Select, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from zapd.db.engine import sqlite_connector
from zapd.kernel.transient import DatabaseHealth

HOT_CONNECTIONS = 8  # PostgreSQL connections kept for hot reads, beside the pool's

_SQLITE_BUSY = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (primary result codes)

_Processor = Callable[[Any], Any] | None
_REQUIRED = object()  # a parameter every call must give
P = TypeVar("P")


class _Plan(NamedTuple):
    """A statement as one dialect's driver takes it."""

    sql: str
    params: tuple[tuple[str, Any, _Processor], ...]  # name, default value, bind processor
    row: Callable[..., Any]  # the row class: a named tuple of the selected columns
    processors: tuple[_Processor, ...]  # per column: the result processor, or None

    def args(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        out = []
        for name, default, process in self.params:
            value = values[name] if default is _REQUIRED else values.get(name, default)
            out.append(process(value) if process is not None else value)
        return tuple(out)

    def rows(self, raw: list[Any]) -> list[Any]:
        row, processors = self.row, self.processors
        if not any(processors):
            return [row(*r) for r in raw]
        return [
            row(*[v if p is None else p(v) for p, v in zip(processors, r, strict=True)])
            for r in raw
        ]


class PerDialect(ABC, Generic[P]):
    """Something compiled once per dialect, on first use (`plan`)."""

    def __init__(self) -> None:
        self._plans: dict[str, P] = {}

    def plan(self, dialect: Dialect) -> P:
        """The statement as `dialect`'s driver takes it (compiled on first use)."""
        found = self._plans.get(dialect.name)
        if found is None:
            found = self._plans[dialect.name] = self._compile(dialect)
        return found

    @abstractmethod
    def _compile(self, dialect: Dialect) -> P:
        """Build the plan for `dialect`."""


class HotQuery(PerDialect[_Plan]):
    """A Core SELECT with named bound parameters, compiled once per dialect.

    A parameter declared without a value (`bindparam("company")`) must be given on
    every call (KeyError otherwise, never a silent NULL); expanding IN parameters are
    refused.
    """

    def __init__(self, stmt: Select[*tuple[Any, ...]]) -> None:
        super().__init__()
        self.stmt = stmt

    def _compile(self, dialect: Dialect) -> _Plan:
        compiled = self.stmt.compile(dialect=dialect)
        binds = [(name, compiled.binds[name]) for name in compiled.positiontup or []]
        if any(b.expanding for _, b in binds):
            raise ValueError("a hot query takes no expanding (IN) parameters")
        params = tuple(
            (
                name,
                _REQUIRED if b.required else b.effective_value,
                b.type.dialect_impl(dialect).bind_processor(dialect),
            )
            for name, b in binds
        )
        columns = list(self.stmt.selected_columns)
        keys = list(self.stmt.selected_columns.keys())
        processors = tuple(
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
        )
        row = NamedTuple("HotRow", [(k, Any) for k in keys])  # type: ignore[misc]
        return _Plan(compiled.string, params, row, processors)


class HotShapes:
    """The `HotQuery` of each shape of a statement, built on first use by `build(*shape)`.

    A shape is what changes the statement's text (scoped to a company or not, a filter
    given or not); values are bound parameters, so a request builds nothing.
    """

    def __init__(self, build: Callable[..., Select[*tuple[Any, ...]]]) -> None:
        self._build = build
        self._queries: dict[tuple[Any, ...], HotQuery] = {}

    def __call__(self, *shape: Any) -> HotQuery:
        query = self._queries.get(shape)
        if query is None:
            query = self._queries[shape] = HotQuery(self._build(*shape))
        return query


class HotReads:
    """Runs `HotQuery`s on hot connections (see the module docstring)."""

    def __init__(
        self,
        engine: AsyncEngine,
        health: DatabaseHealth,
        ordinary: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
    ) -> None:
        self._engine = engine
        self._dialect = engine.dialect
        self._health = health
        self._ordinary = ordinary
        self._closed = False
        # SQLite: how to open the one hot connection (None: never), and that connection.
        self._sqlite = engine.dialect.name == "sqlite"
        self._lite_connect = sqlite_connector(engine) if self._sqlite else None
        self._lite: sqlite3.Connection | None = None
        # PostgreSQL: idle hot connections, how many are open, and the engine's
        # generation they belong to (a disposed engine's connections are dropped).
        self._idle: list[Any] = []
        self._open = 0
        self._generation = 0
        event.listen(engine.sync_engine, "engine_disposed", self._drop_all)

    async def rows(self, query: HotQuery, values: Mapping[str, Any]) -> list[Any]:
        """Run `query` with `values` for its parameters; return its rows."""
        plan = query.plan(self._dialect)
        args = plan.args(values)
        started = time.monotonic()
        raw = self._lite_rows(plan, args) if self._sqlite else await self._pg_rows(plan, args)
        if raw is None:
            return await self._ordinary_rows(plan, args)
        self._health.ok(started)
        return plan.rows(raw)

    async def _ordinary_rows(self, plan: _Plan, args: tuple[Any, ...]) -> list[Any]:
        async with self._ordinary() as conn:
            result = await conn.exec_driver_sql(plan.sql, args)
            return plan.rows(list(result.all()))

    def _lite_rows(self, plan: _Plan, args: tuple[Any, ...]) -> list[Any] | None:
        lite = self._lite
        try:
            if lite is None:
                if self._lite_connect is None or self._closed:
                    return None
                lite = self._lite = self._open_lite(self._lite_connect)
            return lite.execute(plan.sql, args).fetchall()
        except sqlite3.Error as exc:
            # Busy: this once the ordinary way (which may wait); anything else: a new one next.
            if lite is not None and getattr(exc, "sqlite_errorcode", 0) & 0xFF not in _SQLITE_BUSY:
                self._lite = None
                lite.close()
            return None

    @staticmethod
    def _open_lite(connect: Callable[[], sqlite3.Connection]) -> sqlite3.Connection:
        conn = connect()
        try:
            conn.isolation_level = None  # autocommit: each statement its own snapshot
            conn.execute("PRAGMA query_only = ON")
            conn.execute("PRAGMA busy_timeout = 0")
        except BaseException:
            conn.close()
            raise
        return conn

    async def _pg_rows(self, plan: _Plan, args: tuple[Any, ...]) -> list[Any] | None:
        generation = self._generation
        if self._idle:
            conn = self._idle.pop()
        elif self._open < HOT_CONNECTIONS and not self._health.down and not self._closed:
            self._open += 1
            try:
                conn = await self._detached()
            except BaseException as exc:
                if generation == self._generation:
                    self._open -= 1
                if isinstance(exc, Exception):
                    return None  # the ordinary way says why
                raise
        else:
            return None
        try:
            raw = await conn.fetch(plan.sql, *args)
        except BaseException as exc:
            self._forget(conn, generation)
            if isinstance(exc, Exception):
                return None
            raise
        if self._closed or generation != self._generation:
            self._forget(conn, generation)
        else:
            self._idle.append(conn)
        return list(raw)

    async def _detached(self) -> Any:
        """A new driver connection, set up by the engine and taken out of its pool."""
        pooled = await self._engine.raw_connection()
        driver = pooled.driver_connection
        pooled.detach()
        return driver

    def _forget(self, conn: Any, generation: int) -> None:
        """Drop a PostgreSQL hot connection in whatever state it is."""
        if generation == self._generation:
            self._open -= 1
        conn.terminate()

    def _drop_all(self, *_: Any) -> None:
        """The engine was disposed: drop every hot connection (in use: when it returns)."""
        self._generation += 1
        self._open = 0
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.terminate()
        lite, self._lite = self._lite, None
        if lite is not None:
            lite.close()

    async def close(self) -> None:
        """Close the hot connections for good (later reads go the ordinary way)."""
        self._closed = True
        self._generation += 1
        self._open = 0
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()
        lite, self._lite = self._lite, None
        if lite is not None:
            lite.close()
