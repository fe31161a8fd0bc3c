"""aiosqlite connections that make one trip to the connection's thread per statement.

aiosqlite runs each sqlite3 call on the connection's own thread; SQLAlchemy's adapter
makes four such calls per statement (cursor, execute, fetchall, close) and one per
commit or rollback, even with no transaction open. Each trip is a hand-off between
threads (a queue, a wake-up, the GIL, a future set back on the loop), and on a busy
loop it costs far more than SQLite's own work on an indexed read: an authenticated GET
made 14 of them.

`OneTripConnection` is an `aiosqlite.Connection` whose cursors run the whole statement
in one trip (create the sqlite3 cursor, execute, fetch every row, close) and keep the
results, and whose commit/rollback make no trip when the last statement left no
transaction open. What SQLAlchemy sees is unchanged: the same dialect and adapter, the
same exceptions (raised on the thread, re-raised here), `description`, `rowcount` and
`lastrowid` as sqlite3 left them.

Some statements need no answer before the next one: a `BEGIN`, and, inside a
`writes_behind` block, an INSERT, UPDATE or DELETE without RETURNING (the caller
promises it reads neither rows nor rowcount: the ORM's flush, which checks rowcounts,
must not run inside one). Those are queued on the connection
and run on its thread just before the next statement (or the commit), in the same trip;
a rollback drops them unrun. A queued statement's error is raised by the statement
whose trip ran it (the transaction fails the same way, one statement later).

Invariants:
- queued statements run in the order they were issued, before anything issued after
  them, on the same connection: every later statement sees their effects;
- whether a transaction is open is read from sqlite3 (`in_transaction`) on the
  connection's thread after every statement; after a failure, or anything not run
  through these cursors, it is unknown and commit/rollback make their trip as before;
  a commit is skipped only when SQLite itself said no transaction is open.
- rows are fetched whole at execute: zapd reads SQLite in bounded pages (exports page
  by id), never through a server-side cursor.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import aiosqlite

ITER_CHUNK_SIZE = 64

_Result = tuple[Any, int, int | None, list[Any], bool]
_Queued = tuple[str, Any, bool]  # sql, parameters, executemany
_BEGIN = frozenset({"BEGIN", "BEGIN IMMEDIATE"})


def _run(conn: sqlite3.Connection, sql: str, params: Any, many: bool) -> _Result:
    """On the connection's thread: the whole statement, then where the transaction stands."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, () if params is None else params)
        rows = cursor.fetchall() if cursor.description is not None else []
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows, conn.in_transaction
    finally:
        cursor.close()


def _run_after(
    conn: sqlite3.Connection, queued: list[_Queued], sql: str, params: Any, many: bool
) -> _Result:
    """On the connection's thread: the queued statements, then this one."""
    for q_sql, q_params, q_many in queued:
        _run(conn, q_sql, q_params, q_many)
    return _run(conn, sql, params, many)


def _run_all(
    conn: sqlite3.Connection, queued: list[_Queued], statements: list[tuple[str, Any]]
) -> tuple[list[list[Any]], bool]:
    """On the connection's thread: the queued statements, then each of `statements`."""
    for q_sql, q_params, q_many in queued:
        _run(conn, q_sql, q_params, q_many)
    rows = [_run(conn, sql, params, False)[3] for sql, params in statements]
    return rows, conn.in_transaction


def _commit_after(conn: sqlite3.Connection, queued: list[_Queued]) -> None:
    """On the connection's thread: the queued statements, then the commit."""
    for q_sql, q_params, q_many in queued:
        _run(conn, q_sql, q_params, q_many)
    conn.commit()


class OneTripCursor:
    """The aiosqlite cursor interface SQLAlchemy uses, one thread trip per statement."""

    def __init__(self, connection: OneTripConnection) -> None:
        self._connection = connection
        self.arraysize = 1
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Any] = []

    async def __aenter__(self) -> OneTripCursor:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _go(self, sql: str, params: Any, many: bool) -> OneTripCursor:
        conn = self._connection
        if conn.may_queue(sql):
            conn.queue(sql, params, many)
            self.description, self.rowcount, self.lastrowid, self._rows = None, -1, None, []
            return self
        queued, conn.queued = conn.queued, []
        conn.in_tx = None  # unknown until the statement reports back
        if queued:
            result: _Result = await conn.trip(_run_after, conn._conn, queued, sql, params, many)
        else:
            result = await conn.trip(_run, conn._conn, sql, params, many)
        self.description, self.rowcount, self.lastrowid, self._rows, conn.in_tx = result
        return self

    async def execute(self, sql: str, parameters: Any = None) -> OneTripCursor:
        """Run one statement and keep its rows."""
        return await self._go(sql, parameters, False)

    async def executemany(self, sql: str, parameters: Sequence[Any]) -> OneTripCursor:
        """Run one statement for each parameter set, in one trip."""
        return await self._go(sql, list(parameters), True)

    async def fetchall(self) -> list[Any]:
        """Return the remaining rows."""
        rows, self._rows = self._rows, []
        return rows

    async def fetchone(self) -> Any:
        """Return the next row, or None."""
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        """Return up to `size` (else `arraysize`) rows."""
        n = size or self.arraysize
        rows, self._rows = self._rows[:n], self._rows[n:]
        return rows

    async def close(self) -> None:
        """Drop the kept rows (the sqlite3 cursor is already closed)."""
        self._rows = []


class OneTripConnection(aiosqlite.Connection):
    """An aiosqlite connection with one-trip cursors and trip-free idle commit/rollback."""

    # True/False: what sqlite3 said after the last statement; None: unknown.
    in_tx: bool | None = None
    # Statements waiting for the next trip, and `in_tx` from before the first of them.
    queued: list[_Queued]
    _before_queue: bool | None = None
    _behind: int = 0  # open `writes_behind` blocks

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queued = []

    def may_queue(self, sql: str) -> bool:
        """Tell whether `sql` can wait for the next trip (see the module docstring)."""
        if sql in _BEGIN:
            return True
        if not self._behind:
            return False
        head = sql.lstrip()[:6].upper()
        return head in ("INSERT", "UPDATE", "DELETE") and "RETURNING" not in sql.upper()

    def queue(self, sql: str, params: Any, many: bool) -> None:
        """Hold a statement for the next trip."""
        if not self.queued:
            self._before_queue = self.in_tx
        self.queued.append((sql, list(params) if many else params, many))
        self.in_tx = None

    async def run_all(self, statements: list[tuple[str, Any]]) -> list[list[Any]]:
        """Run queued statements, then `statements` in order, in one trip; their rows each.

        For independent reads a caller would otherwise make one trip each for. The
        first failure raises (the rest do not run), as one trip per statement would.
        """
        queued, self.queued = self.queued, []
        self.in_tx = None  # unknown until the statements report back
        rows: list[list[Any]]
        rows, self.in_tx = await self.trip(_run_all, self._conn, queued, statements)
        return rows

    async def trip(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` on the connection's thread and return its result."""
        return await self._execute(fn, *args)  # type: ignore[no-untyped-call]

    def cursor(self) -> OneTripCursor:  # type: ignore[override]
        """Return a one-trip cursor (SQLAlchemy enters it with `async with`)."""
        return OneTripCursor(self)

    async def execute(self, sql: str, parameters: Any = None) -> OneTripCursor:  # type: ignore[override]
        """Run one statement on a new cursor."""
        return await OneTripCursor(self).execute(sql, parameters)

    async def executemany(self, sql: str, parameters: Any) -> OneTripCursor:  # type: ignore[override]
        """Run one statement per parameter set on a new cursor."""
        return await OneTripCursor(self).executemany(sql, parameters)

    def _drop_begin_only(self) -> bool:
        """Forget a queue that is only a BEGIN on an idle connection; True if it was."""
        if self._before_queue is False and all(q[0] in _BEGIN for q in self.queued):
            self.queued = []
            self.in_tx = False
            return True
        return False

    async def commit(self) -> None:
        """Commit, unless SQLite said after the last statement that nothing is open."""
        if self.queued:
            if self._drop_begin_only():
                return  # a transaction that ran nothing: nothing to commit
            queued, self.queued = self.queued, []
            self.in_tx = None
            await self.trip(_commit_after, self._conn, queued)
            self.in_tx = False
            return
        if self.in_tx is False:
            return
        self.in_tx = None
        await self.trip(self._conn.commit)
        self.in_tx = False

    async def rollback(self) -> None:
        """Roll back (queued statements are dropped), unless nothing is open."""
        if self.queued:
            self.in_tx = self._before_queue
            self.queued = []
        if self.in_tx is False:
            return
        self.in_tx = None
        await self.trip(self._conn.rollback)
        self.in_tx = False


def creator(connect: Callable[[], sqlite3.Connection]) -> Callable[[], Any]:
    """Return an `async_creator` for SQLAlchemy that opens `OneTripConnection`s."""

    async def open_connection() -> OneTripConnection:
        connection = OneTripConnection(connect, ITER_CHUNK_SIZE)
        await connection  # starts its thread and connects
        return connection

    return open_connection


@contextlib.contextmanager
def writes_behind(connection: Any) -> Iterator[None]:
    """Within the block, queue this connection's writes without RETURNING for the next trip.

    `connection` is a driver connection; any other driver's is left alone.
    """
    if not isinstance(connection, OneTripConnection):
        yield
        return
    connection._behind += 1
    try:
        yield
    finally:
        connection._behind -= 1
