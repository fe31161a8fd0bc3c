"""The transient/deterministic classifier, on real driver errors, and the health log."""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError

from tests.conftest import PG_URL, _pg_admin, require_pg
from zapd.db.engine import create_engine, read_only
from zapd.errors import DatabaseUnavailable, NotFound
from zapd.kernel.transient import DatabaseHealth, is_transient


def _wrapped(orig: BaseException, cls: type[DBAPIError] = OperationalError) -> DBAPIError:
    return cls("SELECT 1", None, orig)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.SerializationError("could not serialize access"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle"),
        asyncpg.exceptions.InterfaceError("connection is closed"),
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.exceptions.ObjectNotInPrerequisiteStateError(
            'database "x" is not currently accepting connections'
        ),
        ConnectionRefusedError(111, "Connect call failed"),
        ConnectionResetError(104, "Connection reset by peer"),
        OSError("Multiple exceptions: [Errno 111] Connect call failed"),
        _wrapped(sqlite3.OperationalError("database is locked")),
        _wrapped(sqlite3.OperationalError("database is busy")),
        DatabaseUnavailable("down", retry_after=5),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transient(exc: BaseException) -> None:
    assert is_transient(exc)
    if not isinstance(exc, DBAPIError | DatabaseUnavailable):
        assert is_transient(_wrapped(exc))  # as SQLAlchemy hands it over
        try:
            try:
                raise exc
            except BaseException as inner:
                raise RuntimeError("wrapped by someone else") from inner
        except RuntimeError as outer:
            assert is_transient(outer)  # found through the cause chain


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.UniqueViolationError("duplicate key value"),
        asyncpg.exceptions.ForeignKeyViolationError("violates foreign key constraint"),
        asyncpg.exceptions.UndefinedTableError('relation "x" does not exist'),
        asyncpg.exceptions.ObjectNotInPrerequisiteStateError("something else entirely"),
        _wrapped(sqlite3.IntegrityError("UNIQUE constraint failed"), IntegrityError),
        _wrapped(sqlite3.OperationalError("no such table: x")),
        _wrapped(sqlite3.ProgrammingError("bad parameter"), ProgrammingError),
        ValueError("bad value"),
        KeyError("x"),
        NotFound("no such ticket"),
        RuntimeError("nested write transaction: SQLite has a single writer"),
    ],
    ids=lambda e: f"{type(e).__name__}-{str(e)[:12]}",
)
def test_deterministic(exc: BaseException) -> None:
    assert not is_transient(exc)


def test_cause_cycles_do_not_hang() -> None:
    a, b = ValueError("a"), ValueError("b")
    a.__cause__, b.__cause__ = b, a
    assert not is_transient(a)


async def test_real_sqlite_busy_is_transient(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("zapd.db.engine.SQLITE_BUSY_TIMEOUT_MS", 50)
    path = tmp_path / "busy.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode = WAL")
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")  # another process's writer holds the lock
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        with pytest.raises(OperationalError) as caught:
            async with engine.connect() as conn:
                await conn.execute(text("INSERT INTO t VALUES (1)"))
        assert is_transient(caught.value)
        with pytest.raises(OperationalError) as missing:
            async with read_only(engine).connect() as conn:  # a reader is not blocked
                await conn.execute(text("SELECT * FROM no_such_table"))
        assert not is_transient(missing.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        await engine.dispose()


async def test_real_postgresql_errors() -> None:
    """A terminated backend is transient; a unique violation is not."""
    require_pg()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    await _pg_admin(f'CREATE SCHEMA "{schema}"')
    engine = create_engine(PG_URL, connect_args={"server_settings": {"search_path": schema}})
    try:
        async with engine.connect() as conn:
            await conn.execute(text("CREATE TABLE t (x int PRIMARY KEY)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            await conn.commit()
            with pytest.raises(IntegrityError) as dup:
                await conn.execute(text("INSERT INTO t VALUES (1)"))
            assert not is_transient(dup.value)
        async with engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            await _pg_admin(f"SELECT pg_terminate_backend({int(pid)})")
            with pytest.raises(DBAPIError) as lost:
                await conn.execute(text("SELECT 1"))
        assert is_transient(lost.value)
    finally:
        await engine.dispose()
        await _pg_admin(f'DROP SCHEMA "{schema}" CASCADE')


def test_health_logs_once_per_change_of_state(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="zapd")
    health = DatabaseHealth(retry_after=7)
    err = ConnectionRefusedError(111, "Connect call failed")
    for _ in range(50):
        raised = health.unavailable(err)
    assert raised.retry_after == 7 and raised.code == "ERR_DATABASE_UNAVAILABLE"
    assert health.down and health.outages == 1
    for _ in range(50):
        health.ok()
    health.failed(err)
    health.ok()
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert [line.split(" ")[1] for line in lines] == ["unavailable", "back", "unavailable", "back"]
    assert all(r.exc_info is None for r in caplog.records)


def test_report_keeps_tracebacks_for_bugs_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="zapd")
    health = DatabaseHealth()
    log = logging.getLogger("zapd.test")
    health.report(OSError("connection reset"), log, "tick failed")
    health.report(ValueError("a bug"), log, "tick failed")
    with_tb = [r for r in caplog.records if r.exc_info]
    assert len(with_tb) == 1 and isinstance(with_tb[0].exc_info[1], ValueError)  # type: ignore[index]


def test_work_begun_before_the_latest_failure_does_not_prove_the_database_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # PostgreSQL refuses new connections a moment before it terminates the open ones: a
    # query already running on an open connection may still succeed after the first
    # refusal. It must not log "back" (and then "unavailable" again a moment later).
    caplog.set_level(logging.DEBUG, logger="zapd")
    health = DatabaseHealth()
    in_flight = time.monotonic()
    health.failed(ConnectionRefusedError(111, "Connect call failed"))
    health.ok(in_flight)
    assert health.down
    health.failed(OSError("connection reset"))  # the open connections go too
    after = time.monotonic()
    health.ok(after)
    assert not health.down
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert [line.split(" ")[1] for line in lines] == ["unavailable", "back"]
