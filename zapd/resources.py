"""Everything zapd opens at start, in one object passed down (no module globals)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from zapd.config import ZapdSettings
from zapd.connectors.sandbox import SandboxNetwork
from zapd.db import migrate
from zapd.db.engine import create_engine, read_only, session_factory
from zapd.observability import Metrics
from zapd.realtime.hub import Hub
from zapd.secretbox import SecretBox
from zapd.security import Passwords, ensure_secret_file, prepare_state_dir
from zapd.services.cloud import RAW_EVENT_TYPE as CLOUD_RAW_EVENT
from zapd.services.cloud import CloudService
from zapd.services.engines import SessionManager
from zapd.services.inbound import Inbound
from zapd.services.media import MediaStore
from zapd.services.outbox_worker import OutboxWorker
from zapd.services.scheduler import Scheduler
from zapd.services.throttle import LoginThrottle
from zapd.services.unit import run_after_commit

log = logging.getLogger("zapd")
# Set while the current task holds the SQLite write transaction.
_IN_WRITE_TX: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "zap_in_write_tx", default=False
)


class Worker(Protocol):
    """A background loop started and stopped with the daemon (outbox, timers...)."""

    async def start(self) -> None:
        """Start the loop."""

    async def stop(self) -> None:
        """Stop the loop, finishing or abandoning in-flight work safely."""


@dataclass
class Resources:
    """What the lifespan opened; handed to routes and services."""

    settings: ZapdSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    jwt_secret: str
    passwords: Passwords
    hub: Hub
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    metrics: Metrics = field(default_factory=Metrics)  # this daemon's Prometheus registry

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[AsyncSession]:
        """Run one transaction; on commit, fan out its events and run its after-commit hooks.

        On SQLite, writers queue on an in-process lock instead of in SQLite's busy
        handler, whose sleeps (up to 100 ms each) collapse throughput under contention.
        A write transaction opened inside another by the same task would wait for
        itself forever, so that raises at once instead.
        """
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
            AsyncSession(read_only(self.engine), expire_on_commit=False) as db,
            db.begin(),
        ):
            yield db

    def __post_init__(self) -> None:
        self._write_lock = asyncio.Lock()
        self._background = False

        self.sandbox = SandboxNetwork()
        self.secret_box = SecretBox.from_state_dir(self.settings.state_dir)
        self.engines = SessionManager(self, self.sandbox)
        self.inbound = Inbound(self)
        self.engines.on_inbound = self.inbound.receive
        self.cloud = CloudService(self, self.secret_box)
        self.inbound.raw_handlers[CLOUD_RAW_EVENT] = self.cloud.process_webhook
        self.workers: list[Worker] = []
        self.outbox_worker = OutboxWorker(self)
        self.workers.append(self.outbox_worker)
        self.workers.append(Scheduler(self))

    async def start_background(self) -> None:
        """Catch up on stored inbound events, resume sessions, start the workers.

        Nothing starts on a database whose schema is not current (`--no-migrate`):
        zapd then only answers /healthz and a 503 /readyz until it is migrated.
        """
        async with self.engine.connect() as conn:
            ready = await conn.run_sync(lambda c: inspect(c).has_table("webhook_events"))
        if not ready:
            log.warning("no schema: background work (pipeline, outbox) not started")
            return
        self._background = True
        swept = MediaStore.from_settings(self.settings).sweep_partial_uploads()
        if swept:
            log.info("removed %d partial uploads left by a crash", swept)
        recovered = await self.inbound.recover()
        if recovered:
            log.info("processed %d stored inbound events left from the last run", recovered)
        await self.engines.resume()
        for worker in self.workers:
            await worker.start()

    async def stop_background(self) -> None:
        """Stop workers and engines (sessions keep their status, to be resumed)."""
        if not self._background:
            return
        for worker in reversed(self.workers):
            try:
                await worker.stop()
            except Exception:
                log.exception("stopping worker %s", worker)
        await self.engines.close()
        await self.sandbox.close()
        # Events stored but not yet processed (their processing was cut short by the
        # shutdown) are processed now rather than at the next start.
        drained = await self.inbound.recover()
        if drained:
            log.info("processed %d stored inbound events before stopping", drained)

    async def close(self) -> None:
        """Release everything."""
        await self.hub.close_all()
        await self.engine.dispose()


async def open_resources(settings: ZapdSettings, engine: AsyncEngine | None = None) -> Resources:
    """Prepare the state dir, secret and database (migrating when allowed).

    `engine` lets tests hand in an engine bound to their own schema.
    """
    prepare_state_dir(settings.state_dir)
    if settings.jwt_secret is not None:
        secret = settings.jwt_secret.get_secret_value()
    else:
        secret = ensure_secret_file(settings.jwt_secret_file)
    if engine is None:
        engine = create_engine(settings.db_url, pool_pre_ping=True)
    try:
        if settings.auto_migrate:
            await migrate.upgrade(engine)
        else:
            st = await migrate.status(engine)
            if not st.up_to_date:
                log.warning(
                    "schema at %s, code expects %s: run `zapctl db upgrade`", st.current, st.head
                )
    except Exception:
        await engine.dispose()
        raise
    sessions = session_factory(engine)
    return Resources(
        settings=settings,
        engine=engine,
        sessions=sessions,
        jwt_secret=secret,
        passwords=Passwords(
            time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
        ),
        hub=Hub(sessions, queue_size=settings.ws_queue_size),
        throttle=LoginThrottle(settings.login_max_failures, settings.login_window),
        metrics=Metrics(),
    )
