"""Transient database errors told from deterministic ones, once, for the whole daemon.

`is_transient(exc)` answers "would the same work succeed if tried again once the
database answers?". Transient: the connection was lost or closed, a connection could
not be made (refused, reset, the database not accepting connections, too many
clients, a server shutting down), a serialization failure or deadlock (PostgreSQL
SQLSTATE class 08, 40001, 40P01, 57P01-57P03, 53300), asyncpg's
`ConnectionDoesNotExistError`/`InterfaceError`, any `OSError`, and SQLite's "database
is locked" / "database is busy". Everything else (a constraint, a bad value, a bug) is
deterministic: trying again gives the same answer.

`DatabaseHealth` keeps the daemon's view of the database up or down so that an outage
logs one line when it starts and one when it ends, never a traceback per request or
per worker iteration. `Kernel.tx()`, `read()` and `statement()` run inside its
`watch()`, which records every transient failure and every success and re-raises a
transient failure as `DatabaseUnavailable` (a 503 with Retry-After at the API edge).
A success proves the database is back only if the operation *began* after the
latest failure: work already in flight on a connection the outage had not reached yet
(PostgreSQL refuses new connections a moment before it terminates the open ones)
would otherwise flap the state up and down.

Invariants: the classifier never raises; it walks the whole cause chain (SQLAlchemy's
`orig`, `__cause__`, `__context__`) with a cycle guard; `DatabaseUnavailable` is
itself transient.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from zapd.errors import DatabaseUnavailable

log = logging.getLogger("zapd.db")

# SQLSTATEs after which the same work may succeed on another try.
_TRANSIENT_STATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "57P01",  # admin_shutdown (pg_terminate_backend, server stop)
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (starting up / shutting down)
        "53300",  # too_many_connections
        "55P03",  # lock_not_available (NOWAIT / lock_timeout)
    }
)
# Class 08: connection exception (08000, 08003, 08006, 08001, 08004...).
_TRANSIENT_CLASSES = ("08",)
# Exception class names of drivers we do not import here (asyncpg, aiosqlite).
_TRANSIENT_NAMES = frozenset(
    {
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "InterfaceError",
        "InternalClientError",
        "CannotConnectNowError",
        "TooManyConnectionsError",
        "AdminShutdownError",
        "CrashShutdownError",
        "SerializationError",
        "DeadlockDetectedError",
        "PostgresConnectionError",
    }
)
# Messages that say the same, for drivers that only give text.
_TRANSIENT_TEXT = (
    "database is locked",
    "database is busy",
    "database table is locked",
    "not currently accepting connections",  # ALTER DATABASE ... ALLOW_CONNECTIONS false
    "connection was closed",
    "connection is closed",
    "the database system is starting up",
    "the database system is shutting down",
    "terminating connection",
    "cannot perform operation: another operation is in progress",
)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        cur = todo.pop()
        if cur is None or any(cur is s for s in seen) or len(seen) > 16:
            continue
        seen.append(cur)
        todo.extend([getattr(cur, "orig", None), cur.__cause__, cur.__context__])
    return seen


def _sqlstate(exc: BaseException) -> str | None:
    for attr in ("sqlstate", "pgcode"):
        value = getattr(exc, attr, None)
        if isinstance(value, str) and len(value) == 5:
            return value
    return None


def is_transient(exc: BaseException) -> bool:
    """Return whether `exc` (or what caused it) is a transient database failure."""
    for cur in _chain(exc):
        if isinstance(cur, DatabaseUnavailable | DisconnectionError | PoolTimeout | OSError):
            return True
        if isinstance(cur, DBAPIError) and cur.connection_invalidated:
            return True
        state = _sqlstate(cur)
        if state is not None and (
            state in _TRANSIENT_STATES or state.startswith(_TRANSIENT_CLASSES)
        ):
            return True
        if type(cur).__name__ in _TRANSIENT_NAMES and type(cur).__module__.startswith(
            ("asyncpg", "sqlalchemy")
        ):
            return True
        text = str(cur).lower()
        if any(t in text for t in _TRANSIENT_TEXT):
            return True
    return False


class DatabaseHealth:
    """The daemon's view of the database: one log line when it goes down, one when back."""

    def __init__(self, retry_after: int = 5) -> None:
        self.retry_after = retry_after
        self.down_since: float | None = None
        self.last_failure = 0.0
        self.outages = 0

    @property
    def down(self) -> bool:
        """Whether the last database operation failed transiently."""
        return self.down_since is not None

    def failed(self, exc: BaseException) -> None:
        """Record a transient failure (logs only when the state changes)."""
        self.last_failure = time.monotonic()
        if self.down_since is None:
            self.down_since = self.last_failure
            self.outages += 1
            cause = _chain(exc)[-1]
            log.warning(
                "database unavailable (%s: %s); requests answer 503 until it is back",
                type(cause).__name__,
                str(cause).splitlines()[0][:200] if str(cause) else "",
            )

    def ok(self, started: float | None = None) -> None:
        """Record a success (logs only when the state changes).

        `started`: the `time.monotonic()` at which the operation began. One that began
        before the latest failure does not prove the database is back.
        """
        if started is not None and started <= self.last_failure:
            return
        if self.down_since is not None:
            seconds = time.monotonic() - self.down_since
            self.down_since = None
            log.warning("database back after %.1fs", seconds)

    @asynccontextmanager
    async def watch(self) -> AsyncIterator[None]:
        """Around one database operation: a transient failure is recorded and raised as
        `DatabaseUnavailable`, anything else passes unchanged; a success is recorded
        with the time the operation began."""
        started = time.monotonic()
        try:
            yield
        except Exception as exc:
            if is_transient(exc):
                raise self.unavailable(exc) from exc
            raise
        self.ok(started)

    def report(self, exc: BaseException, logger: logging.Logger, msg: str, *args: object) -> None:
        """Log a failed piece of background work: quietly when the database is away.

        A transient failure is recorded here (one line per outage) and `msg` goes out at
        debug level only; anything else is logged as an error with its traceback.
        """
        if is_transient(exc):
            self.failed(exc)
            logger.debug(msg + " (database unavailable)", *args)
        else:
            logger.error(msg, *args, exc_info=exc)

    def unavailable(self, exc: BaseException) -> DatabaseUnavailable:
        """Record `exc` and return the error to raise in its place."""
        self.failed(exc)
        return DatabaseUnavailable(
            "the database is unavailable; try again shortly", retry_after=self.retry_after
        )
