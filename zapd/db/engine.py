"""Engine creation with the per-backend settings zap relies on."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import weakref
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import QueuePool

from zapd.db import search as _search  # noqa: F401  (registers the client_terms listeners)
from zapd.db import sqlite_driver

SQLITE_BUSY_TIMEOUT_MS = 10_000
# Committers checkpoint the WAL only past this many pages (SQLite's default: 1,000);
# `zapd.db.checkpoint` does it off the write path long before.
SQLITE_WAL_AUTOCHECKPOINT_PAGES = 10_000
POOL_SIZE = 10  # connections a queue pool keeps open
POOL_OVERFLOW = 5  # opened past those when busy, and closed after use
READ_ONLY_OPTION = "zap_read_only"
NO_TRANSACTION_OPTION = "zap_no_transaction"


# What orjson leaves to `json.dumps` (see `json_text`): keys of any JSON scalar type are
# written as json.dumps writes them; datetimes and dataclasses are not JSON to it either.
_ORJSON = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def json_text(value: Any) -> str:
    """The text a JSON column stores for `value`: orjson's, else the standard library's.

    Parsed back, the same value as `json.dumps` gives (compact, and UTF-8 where json.dumps
    escapes to ASCII: the bytes differ, the JSON does not), at a fraction of its cost:
    every inbound event stores a few JSON documents. Whatever orjson refuses (an integer
    past 64 bits, a lone surrogate, a datetime, a dataclass, a set) goes to `json.dumps`,
    which stores it or raises its TypeError as before. One difference is left: a float
    NaN or infinity becomes null (json.dumps wrote a token no JSON parser but Python's
    reads, and PostgreSQL refused).
    """
    try:
        return orjson.dumps(value, option=_ORJSON).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(value)


def sqlite_url(path: Path) -> str:
    """Return the async SQLAlchemy URL of a SQLite database file."""
    return f"sqlite+aiosqlite:///{path}"


def normalize_url(url: str) -> str:
    """Map plain `postgresql://` and `sqlite://` URLs to their async drivers."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        u = u.set(drivername="postgresql+asyncpg")
    elif u.drivername in ("sqlite", "sqlite+pysqlite"):
        u = u.set(drivername="sqlite+aiosqlite")
    if u.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported database {u.get_backend_name()!r}: use SQLite or PostgreSQL")
    return u.render_as_string(hide_password=False)


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """Create an async engine; SQLite gets WAL, foreign keys, a busy timeout and BEGIN IMMEDIATE,
    and connections that make one thread trip per statement (`zapd.db.sqlite_driver`).
    JSON columns are written by `json_text` on both backends.

    `pool_pre_ping` is honoured on PostgreSQL only: a connection to a local SQLite file
    cannot go stale, and the ping would cost every checkout a statement. On PostgreSQL
    the ping is one round trip (`_ping_in_one_round_trip`), not three.

    A queue pool keeps `POOL_SIZE` connections open (SQLAlchemy's default is 5), and opens
    at most `POOL_OVERFLOW` more: the same ceiling of 15 as the default. Every connection
    past the kept ones is opened for one checkout and closed after it (on PostgreSQL a
    backend process forked, on SQLite a thread started and its PRAGMAs run); with the
    default, eight concurrent API reads did that on one request in thirty.
    """
    url = normalize_url(url)
    kwargs.setdefault("json_serializer", json_text)
    if "poolclass" not in kwargs and "pool_size" not in kwargs:
        probe_pool = create_async_engine(url).pool
        if isinstance(probe_pool, QueuePool):
            kwargs.update(
                pool_size=POOL_SIZE, max_overflow=kwargs.get("max_overflow", POOL_OVERFLOW)
            )
    if make_url(url).get_backend_name() != "sqlite":
        engine = create_async_engine(url, **kwargs)
        # An instance attribute: only this engine's dialect pings this way.
        engine.dialect.do_ping = _ping_in_one_round_trip  # type: ignore[method-assign]
        return engine
    kwargs.pop("pool_pre_ping", None)
    # The arguments SQLAlchemy itself would pass to sqlite3.connect for this URL.
    probe = create_async_engine(url, **kwargs)
    cargs, cparams = probe.dialect.create_connect_args(probe.url)
    cparams.update(kwargs.get("connect_args", {}))
    connect = partial(sqlite3.connect, *cargs, **cparams)
    engine = create_async_engine(url, async_creator=sqlite_driver.creator(connect), **kwargs)
    _configure_sqlite(engine)
    _SQLITE_CONNECT[engine.sync_engine] = connect
    return engine


# How each SQLite engine made here opens its sqlite3 connections (before its set-up).
_SQLITE_CONNECT: weakref.WeakKeyDictionary[Engine, Callable[[], sqlite3.Connection]] = (
    weakref.WeakKeyDictionary()
)


def sqlite_connector(engine: AsyncEngine) -> Callable[[], sqlite3.Connection] | None:
    """How `engine` (from `create_engine`) opens a sqlite3 connection to its file: the same
    arguments, none of the per-connection PRAGMAs. None for other engines and for an
    in-memory database (another connection would see another database)."""
    if sqlite_path(engine.url.render_as_string(hide_password=False)) is None:
        return None
    return _SQLITE_CONNECT.get(engine.sync_engine)


def _ping_in_one_round_trip(dbapi_connection: Any) -> bool:
    """Ping a pooled asyncpg connection with one statement and no transaction around it.

    SQLAlchemy's asyncpg adapter wraps its ping in BEGIN ... ROLLBACK unless the
    connection is in autocommit: three round trips on every checkout of the pool, more
    than a request's own statement. The pool checks out connections outside any
    transaction, so the ping runs in autocommit (`;` alone) and the setting is put back.
    Failures are the adapter's own (translated to the DBAPI's errors), so the pool still
    tells a dead connection from a live one and reconnects exactly as before.
    """
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        dbapi_connection.ping()
    finally:
        dbapi_connection.autocommit = autocommit
    return True


def _configure_sqlite(engine: AsyncEngine) -> None:
    # pysqlite's own transaction handling is bypassed (isolation_level=None) so that
    # SQLAlchemy's BEGIN is the one emitted, and it is BEGIN IMMEDIATE: a deferred
    # transaction that reads and then writes can fail with SQLITE_BUSY at once when
    # another writer holds the lock (the busy timeout is not consulted for that lock
    # upgrade). Taking the write lock up front makes concurrent writers queue instead.
    database = engine.url.database
    on_disk = database not in (None, "", ":memory:") and not str(database).startswith("file:")

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        if on_disk:
            # The database holds password hashes and conversations: owner-only. SQLite
            # gives its -wal and -shm files the database file's permissions.
            with contextlib.suppress(OSError):
                os.chmod(str(database), 0o600)
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous = NORMAL")
        if on_disk:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Read-only sessions (see `read_only`) begin deferred: under WAL they read a
        # snapshot without queueing behind writers. Single statements (see
        # `single_statements`) begin nothing: SQLite wraps each in its own read.
        options = conn.get_execution_options()
        if options.get(NO_TRANSACTION_OPTION):
            return
        if options.get(READ_ONLY_OPTION):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def sqlite_path(url: str) -> Path | None:
    """Return the file of a SQLite URL (None for other backends and memory databases)."""
    u = make_url(normalize_url(url))
    if u.get_backend_name() != "sqlite" or u.database in (None, "", ":memory:"):
        return None
    return Path(str(u.database))


def read_only(engine: AsyncEngine) -> AsyncEngine:
    """Return a view of `engine` whose transactions only read, each one snapshot.

    SQLite: a deferred BEGIN (no write lock; under WAL the transaction's first read
    fixes its snapshot). PostgreSQL: REPEATABLE READ, READ ONLY, so every statement of
    the transaction sees the snapshot its first one took (READ COMMITTED, the default,
    takes a new one per statement: a listing and the rows it names, read one after the
    other, could disagree). A read-only REPEATABLE READ transaction never fails with a
    serialization error, and a write in it is refused.
    """
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{READ_ONLY_OPTION: True})
    return engine.execution_options(
        **{READ_ONLY_OPTION: True},
        isolation_level="REPEATABLE READ",
        postgresql_readonly=True,
    )


def single_statements(engine: AsyncEngine) -> AsyncEngine:
    """Return a view of `engine` that runs each statement on its own, in no transaction.

    For reads that are one statement (a join): it sees one consistent snapshot by itself,
    and skipping BEGIN/COMMIT saves two round trips. Two statements on such a connection
    may see different snapshots, and writes there commit one by one: read only, and
    put what must agree in one statement.
    """
    if engine.dialect.name == "sqlite":
        # pysqlite already runs with isolation_level=None (autocommit) here; the begin
        # hook above leaves out its BEGIN. AUTOCOMMIT would make SQLAlchemy reset the
        # isolation level on return, re-enabling pysqlite's own implicit transactions.
        return engine.execution_options(**{NO_TRANSACTION_OPTION: True})
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Return the session factory every service uses."""
    return async_sessionmaker(engine, expire_on_commit=False)
