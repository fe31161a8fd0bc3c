"""Everything zapd opens at start, in one object passed down (no module globals)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from zapd.config import ZapdSettings
from zapd.connectors.sandbox import SandboxNetwork
from zapd.db import migrate
from zapd.db.engine import create_engine, read_only, session_factory
from zapd.observability import Metrics
from zapd.realtime.hub import Hub
from zapd.security import Passwords, ensure_secret_file, prepare_state_dir
from zapd.services.engines import SessionManager
from zapd.services.inbound import Inbound
from zapd.services.throttle import LoginThrottle
from zapd.services.unit import run_after_commit

log = logging.getLogger("zapd")


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
        """Run one transaction; on commit, fan out its events and run its after-commit hooks."""
        async with self.sessions() as db:
            async with db.begin():
                yield db
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
        self.sandbox = SandboxNetwork()
        self.engines = SessionManager(self, self.sandbox)
        self.inbound = Inbound(self)
        self.engines.on_inbound = self.inbound.receive
        self.workers: list[Worker] = []

    async def start_background(self) -> None:
        """Catch up on stored inbound events, resume sessions, start the workers."""
        recovered = await self.inbound.recover()
        if recovered:
            log.info("processed %d stored inbound events left from the last run", recovered)
        await self.engines.resume()
        for worker in self.workers:
            await worker.start()

    async def stop_background(self) -> None:
        """Stop workers and engines (sessions keep their status, to be resumed)."""
        for worker in reversed(self.workers):
            try:
                await worker.stop()
            except Exception:
                log.exception("stopping worker %s", worker)
        await self.engines.close()
        await self.sandbox.close()

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
