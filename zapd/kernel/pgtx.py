"""Statements of a session's transaction run on its asyncpg connection, past SQLAlchemy.

The PostgreSQL side of `zapd.kernel.txsql` and `zapd.kernel.held`: the inbound batch's
fixed statements, sent through `AsyncSession.execute` (or `exec_driver_sql`), each paid
the greenlet bridge, the execution context and the result machinery, several times
what asyncpg itself costs. `PgTx` sends a statement's text and converted arguments
to the transaction's own asyncpg connection instead, in the same transaction,
through the adapter's cache of prepared statements (shared with SQLAlchemy's own
statements: a statement is parsed once per connection, whatever its length).

Invariants:
- Only inside a session transaction whose connection is SQLAlchemy's asyncpg adapter
  (`connection` returns None otherwise). The server-side transaction is begun first
  if SQLAlchemy has not sent its BEGIN yet, exactly as the adapter's cursor begins it
  (the adapter's isolation level, read-only and deferrable settings); statements run
  under the adapter's execute lock, as its cursor's do.
- The connection is the one of the session's transaction as it is at the call: a
  later transaction of the same session (another pooled connection) is looked up
  again, never served by an earlier one's.
- A failure raises what the same statement run by SQLAlchemy would raise: the
  adapter's DBAPI error wrapped by the connection's own `_handle_dbapi_exception`
  (so `IntegrityError`, `DBAPIError.connection_invalidated`, `zapd.kernel.transient`
  all read it alike), and a connection found dead is invalidated as SQLAlchemy
  does. Nothing is retried.
- No autoflush runs first: callers run it where the session has nothing pending that
  the statement should see.
- It leans on the adapter's own internals (`_start_transaction`, `_execute_mutex`,
  `_prepare`, `_handle_exception`) and the connection's `_handle_dbapi_exception`, as
  the SQLAlchemy versions pyproject.toml allows have them;
  `tests/zapd/kernel/test_txsql.py` holds the results and the errors to the session's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

_PG = "zap_pgtx"  # db.info: (the root SessionTransaction, its PgTx or None)


class PgTx:
    """A session transaction's asyncpg connection (see the module docstring)."""

    __slots__ = ("_adapter", "_db", "_dialect")

    def __init__(self, db: AsyncSession, adapter: Any, dialect: Any) -> None:
        self._db = db
        self._adapter = adapter  # SQLAlchemy's AsyncAdapt_asyncpg_connection
        self._dialect = dialect  # its schema-change stamp invalidates prepared statements

    async def fetch(self, sql: str, args: Sequence[Any]) -> list[Any]:
        """Run `sql` with `args` ($1, $2, ..); its rows (asyncpg records)."""
        adapter = self._adapter
        async with adapter._execute_mutex:
            try:
                # What the adapter's cursor does, past SQLAlchemy's layers: begin if
                # not begun, then its cache of prepared statements (any length).
                if adapter._transaction is None:
                    await adapter._start_transaction()
                stamp = self._dialect._invalidate_schema_cache_asof
                prepared, _ = await adapter._prepare(sql, stamp)
                return list(await prepared.fetch(*args))
            except Exception as exc:
                failed = exc
        await self._raise(failed, sql, args)  # outside the lock: it may invalidate

    async def execute(self, sql: str, args: Sequence[Any]) -> None:
        """Run `sql` with `args` for its effect (rows, if any, are not read)."""
        await self.fetch(sql, args)

    async def _raise(self, error: Exception, sql: str, args: Sequence[Any]) -> NoReturn:
        """Raise `error` as SQLAlchemy would have for `sql` (module docstring)."""

        def translate(session: Session) -> None:
            connection = session.connection()
            try:
                self._adapter._handle_exception(error)  # the DBAPI's error, as its cursor
            except Exception as dbapi_error:
                connection._handle_dbapi_exception(dbapi_error, sql, tuple(args), None, None)

        await self._db.run_sync(translate)
        raise error  # not reached: `translate` always raises


async def connection(db: AsyncSession) -> PgTx | None:
    """The asyncpg connection of `db`'s current transaction; None for any other driver.

    It begins the session's transaction (as any statement would) when none is open.
    """
    sync = db.sync_session
    tx = sync.get_transaction()
    found = db.info.get(_PG)
    if tx is not None and found is not None and found[0] is tx:
        pg: PgTx | None = found[1]
        return pg
    connection = await db.connection()
    adapter = (await connection.get_raw_connection()).dbapi_connection
    pg = PgTx(db, adapter, connection.dialect) if _is_asyncpg(adapter) else None
    db.info[_PG] = (sync.get_transaction(), pg)
    return pg


def _is_asyncpg(adapter: Any) -> bool:
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection

    return isinstance(adapter, AsyncAdapt_asyncpg_connection)
