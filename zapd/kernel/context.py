"""The kernel every service receives: transactions, after-commit hooks and shared parts.

`Kernel` is what a service may reach and nothing more: the settings, the database
(`tx()` for one write transaction, `read()` for a consistent read-only snapshot,
`statement()` for a read that is one statement, with no transaction around it, and
`hot` for such reads on the hottest paths, past SQLAlchemy: `zapd.kernel.hot`), the
realtime fan-out (as the `Fanout` protocol: the concrete hub lives in `zapd.realtime`),
the password hasher, the login throttle, and the outbox wake-up signal that `enqueue`
sets and the outbox worker waits on. It holds no worker and no engine: the daemon
builds those on top and hands them what they need explicitly.

Invariants: work registered with `after_commit` runs once its transaction has
committed and never after a rollback; a failing hook is logged and never undoes the
committed change. On SQLite a write transaction never nests inside another of the same
task (it would wait for itself forever): that raises at once. A transient database
failure (see `zapd.kernel.transient`) inside `tx()` or `read()` leaves them as
`DatabaseUnavailable` and is reported to `db_health`, which logs once per outage.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from zapd.config import ZapdSettings
from zapd.db.engine import read_only, single_statements
from zapd.kernel.hot import HotReads
from zapd.kernel.principal import Principal
from zapd.kernel.throttle import LoginThrottle
from zapd.kernel.transient import DatabaseHealth
from zapd.security import Passwords

log = logging.getLogger("zapd.unit")

# Set while the current task holds the SQLite write transaction.
_IN_WRITE_TX: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "zap_in_write_tx", default=False
)
_HOOKS = "zap_after_commit"


class CommittedEvent(Protocol):
    """A committed event as the hub reads it: an `Event` row or a batch's plain record."""

    @property
    def company_id(self) -> uuid.UUID: ...
    @property
    def seq(self) -> int | None: ...
    @property
    def type(self) -> str: ...
    @property
    def data(self) -> dict[str, Any]: ...
    @property
    def department_id(self) -> uuid.UUID | None: ...
    @property
    def user_id(self) -> uuid.UUID | None: ...
    @property
    def scoped(self) -> bool: ...


class Fanout(Protocol):
    """What services ask of the realtime hub: hand out committed events, close sockets."""

    def dispatch(self, event: CommittedEvent) -> None:
        """Hand a committed event to every subscriber allowed to see it."""

    def close_user(self, user_id: uuid.UUID, code: int = ..., reason: str = "") -> int:
        """Close every connection of a user; return how many."""

    def close_where(self, pred: Callable[[Principal], bool], code: int, reason: str) -> int:
        """Close every connection whose principal matches `pred`; return how many."""


@dataclass
class Kernel:
    """What every service receives (never the daemon that builds workers on top of it)."""

    settings: ZapdSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    jwt_secret: str
    passwords: Passwords
    hub: Fanout
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    # Set by `enqueue` (after commit) and by anything else that makes outbox rows due;
    # the outbox worker waits on it between polls. `outbox_woken` says for which
    # sessions (None: any, or not known) since the worker last looked.
    outbox_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    outbox_woken: set[uuid.UUID | None] = field(default_factory=set)
    # Up or down as the last transaction saw it; logs one line per change of state.
    db_health: DatabaseHealth = field(default_factory=DatabaseHealth)

    def __post_init__(self) -> None:
        self._write_lock = asyncio.Lock()
        # Built once: each `execution_options` view costs a copy of the engine's options.
        self._read_engine = read_only(self.engine)
        self._statement_engine = single_statements(self.engine)
        # Hot reads (the principal, the common listings) on driver connections of their
        # own, falling back to `statement()`; `close_hot()` closes them.
        self.hot = HotReads(self.engine, self.db_health, self.statement)

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[AsyncSession]:
        """Run one transaction; on commit, fan out its events and run its after-commit hooks.

        On SQLite, writers queue on an in-process lock instead of in SQLite's busy
        handler, whose sleeps (up to 100 ms each) collapse throughput under contention.
        A write transaction opened inside another by the same task would wait for
        itself forever, so that raises at once instead.
        """
        async with self.db_health.watch(), self._tx() as db:
            yield db

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncSession]:
        if self.engine.dialect.name != "sqlite":
            async with self.sessions() as db:
                async with db.begin():
                    yield db
                await run_after_commit(db, self)
            return
        if _IN_WRITE_TX.get():
            raise RuntimeError("nested write transaction: SQLite has a single writer")
        async with self._write_lock:
            token = _IN_WRITE_TX.set(True)
            try:
                async with self.sessions() as db, db.begin():
                    yield db
            finally:
                _IN_WRITE_TX.reset(token)
        await run_after_commit(db, self)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only: one consistent snapshot, no write lock on SQLite."""
        async with (
            self.db_health.watch(),
            AsyncSession(self._read_engine, expire_on_commit=False) as db,
            db.begin(),
        ):
            yield db

    @asynccontextmanager
    async def statement(self) -> AsyncIterator[AsyncConnection]:
        """A connection for a read that is one statement: no BEGIN/COMMIT around it.

        The statement sees one consistent snapshot by itself; two statements may not
        agree, so what must agree goes in one (a join). Skipping BEGIN/COMMIT saves two
        round trips; the hottest such reads go on `hot`, which falls back to this.
        """
        async with self.db_health.watch(), self._statement_engine.connect() as conn:
            yield conn

    def wake_outbox(self, session_id: uuid.UUID | None = None) -> None:
        """Tell the outbox worker that rows may be due now (harmless when none runs).

        `session_id` names the session whose rows became due, when only one's did.
        """
        self.outbox_woken.add(session_id)
        self.outbox_wakeup.set()


AfterCommit = Callable[[Kernel], Awaitable[None] | object]


def after_commit(db: AsyncSession, hook: AfterCommit) -> None:
    """Run `hook(kernel)` once this session's transaction commits (never on rollback)."""
    db.info.setdefault(_HOOKS, []).append(hook)


def pending_hooks(db: AsyncSession) -> list[AfterCommit]:
    """The hooks registered on `db` so far (a batch trims those of a rolled-back savepoint)."""
    hooks: list[AfterCommit] = db.info.setdefault(_HOOKS, [])
    return hooks


async def run_after_commit(db: AsyncSession, kernel: Kernel) -> None:
    """Run and forget the hooks registered on `db` (called by `Kernel.tx`)."""
    hooks: list[Any] = db.info.pop(_HOOKS, [])
    for hook in hooks:
        try:
            result = hook(kernel)
            if inspect.isawaitable(result):
                await result
        except Exception:  # a failed notification must not undo a committed change
            log.exception("after-commit hook failed")
