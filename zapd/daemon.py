"""The daemon: the kernel plus the long-lived parts built on top of it (no module globals).

`open_daemon` prepares the state dir, the secret and the database, builds the `Kernel`
every service receives, and `Daemon` builds the workers on that kernel, handing each
what it needs explicitly: the session manager gets the sandbox network and the inbound
pipeline's entry point; the outbox worker gets the session manager's `connector` lookup
as `connector_of` and waits on the kernel's outbox wake-up signal; the scheduler gets
the kernel alone. Services never receive the daemon; only the API edge and the process
entry point hold it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import uuid
from typing import Protocol

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from zapd.config import ZapdSettings
from zapd.connectors.sandbox import SandboxNetwork
from zapd.db import migrate
from zapd.db.checkpoint import WalCheckpointer
from zapd.db.engine import create_engine, session_factory
from zapd.db.models import WaSession
from zapd.db.stats import StatsRefresher
from zapd.errors import DatabaseUnavailable
from zapd.kernel.context import Kernel
from zapd.kernel.principal import Actor
from zapd.kernel.throttle import LoginThrottle
from zapd.prometheus import Metrics
from zapd.realtime.hub import Hub
from zapd.secretbox import SecretBox
from zapd.security import Passwords, ensure_secret_file, prepare_state_dir
from zapd.services.conversations.cloud import RAW_EVENT_TYPE as CLOUD_RAW_EVENT
from zapd.services.conversations.cloud import CloudService
from zapd.services.conversations.customer_typing import CustomerTyping
from zapd.services.conversations.inbound import Inbound
from zapd.services.delivery.media import MediaStore
from zapd.services.delivery.outbox_worker import OutboxWorker
from zapd.services.people import companies
from zapd.services.sessions.cloud_config import seal_stored
from zapd.services.sessions.heartbeat import Heartbeat
from zapd.services.sessions.manager import SessionManager
from zapd.services.tickets.scheduler import Scheduler

log = logging.getLogger("zapd")

DELETE_ATTEMPTS = 5  # a company delete that deadlocks with another writer is tried again


class Worker(Protocol):
    """A background loop started and stopped with the daemon (outbox, timers...)."""

    async def start(self) -> None:
        """Start the loop."""

    async def stop(self) -> None:
        """Stop the loop, finishing or abandoning in-flight work safely."""


class Daemon:
    """What the lifespan opened: the kernel, the hub and the workers built on them."""

    def __init__(self, kernel: Kernel, hub: Hub, metrics: Metrics | None = None) -> None:
        self.kernel = kernel
        self.hub = hub  # the concrete hub (the kernel sees it as its `Fanout`)
        self.metrics = metrics or Metrics()  # this daemon's Prometheus registry
        # The bearer token GET /metrics wants (None: served to anyone, by configuration).
        self.metrics_token: str | None = None
        # SQLite's WAL checkpoints, off the write path (zapd.db.checkpoint).
        self.checkpointer = WalCheckpointer(kernel.engine)
        self.stats = StatsRefresher(kernel.engine, kernel.tx)  # planner statistics
        self._background = False

        self.sandbox = SandboxNetwork()
        # Engine credentials are sealed at rest with the state dir's key (zapd.secretbox).
        self.secret_box = SecretBox.from_state_dir(kernel.settings.state_dir)
        self.engines = SessionManager(
            kernel, self.sandbox, self.metrics.registry, box=self.secret_box
        )
        self.inbound = Inbound(kernel)
        self.engines.on_inbound = self.inbound.receive
        self.customer_typing = CustomerTyping(kernel, hub)
        self.engines.on_typing = self.customer_typing.receive
        self.cloud = CloudService(
            kernel,
            self.secret_box,
            process_events=self.inbound.process_events,
            connector_of=self.engines.connector,
        )
        self.inbound.raw_handlers[CLOUD_RAW_EVENT] = self.cloud.process_webhook
        self.engines.cloud_lookup = self.cloud.find_sent
        self.outbox_worker = OutboxWorker(kernel, connector_of=self.engines.connector)
        self.scheduler = Scheduler(kernel)
        self.heartbeat = Heartbeat(kernel, self.engines)
        self.workers: list[Worker] = [
            self.outbox_worker,
            self.scheduler,
            self.heartbeat,
            self.cloud,
            self.stats,
            self.checkpointer,
        ]

    @property
    def settings(self) -> ZapdSettings:
        """Return the daemon's settings."""
        return self.kernel.settings

    @property
    def engine(self) -> AsyncEngine:
        """Return the database engine."""
        return self.kernel.engine

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
        resealed = await seal_stored(self.kernel, self.secret_box)
        if resealed:
            log.info("sealed the engine credentials of %d sessions stored in the clear", resealed)
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
        await self.inbound.stop()
        # Events stored but not yet processed (their processing was cut short by the
        # shutdown) are processed now rather than at the next start.
        try:
            drained = await self.inbound.recover()
        except DatabaseUnavailable:  # they stay pending, for the next start
            log.warning("database unavailable: pending inbound events left for the next start")
            return
        if drained:
            log.info("processed %d stored inbound events before stopping", drained)

    async def delete_company(self, actor: Actor, company_id: uuid.UUID, *, force: bool) -> None:
        """Delete a company safely while its traffic flows.

        Its inbound events are refused from now on, its running sessions are stopped
        first, then the company goes in one transaction that locks its row before the
        cascade (writers that lock the company first queue behind it instead of
        deadlocking). A deadlock with some other writer is retried; sessions that were
        started meanwhile are stopped afterwards.
        """
        async with self.kernel.read() as db:
            await companies.get(db, actor.principal, company_id)
            actor.principal.require_global_admin()
            ids = set(
                (
                    await db.scalars(select(WaSession.id).where(WaSession.company_id == company_id))
                ).all()
            )
        self.inbound.closing.add(company_id)
        try:
            await self._stop_sessions(ids)
            for attempt in range(DELETE_ATTEMPTS):
                try:
                    async with self.kernel.tx() as db:
                        await companies.delete(db, actor, company_id, force=force)
                    break
                except DatabaseUnavailable:
                    if attempt == DELETE_ATTEMPTS - 1:
                        raise
                    await asyncio.sleep(0.2 * (attempt + 1))
            await self._stop_sessions(ids)
        finally:
            self.inbound.closing.discard(company_id)

    async def _stop_sessions(self, ids: set[uuid.UUID]) -> None:
        for session_id in ids & set(self.engines.running()):
            try:
                await self.engines.stop(session_id)
            except Exception as exc:  # stopping one must not keep the others running
                log.warning("stopping session %s of a deleted company: %s", session_id, exc)

    async def close(self) -> None:
        """Release everything."""
        await self.hub.close_all()
        await self.kernel.hot.close()
        # If still running (workers, normally stopped; a bench starts just these two).
        await self.stats.stop()
        await self.checkpointer.stop()
        await self.engine.dispose()
        self.kernel.passwords.close()


GC_YOUNG = 10_000  # new container objects between young collections (CPython's: 700)


def settle_heap() -> tuple[int, int, int]:
    """Take what start-up built out of the cyclic garbage collector's scans (`gc.freeze`).

    The daemon's long-lived objects (modules, the ORM's and the API's metadata, the
    caches) are a few hundred thousand; each full collection walked them all, pausing
    the event loop for 150-200 ms (every event and socket waits) a few times a minute
    under load. Frozen, they are never scanned again (nor freed if they ever become
    cyclic garbage, which start-up objects do not). Call once, when start-up is done.

    Young collections then come every `GC_YOUNG` new objects instead of 700: the
    pipeline makes and drops thousands per batch (rows, ORM states), nearly all freed
    by their reference counts, and at 700 it ran ~55 young collections a second under
    load (~3% of the loop's time, measured in `bench ingest`); at 10,000 a handful. The
    garbage cycles that wait longer are a few thousand objects at most. Returns the
    thresholds before (a caller that is not the daemon puts them back).
    """
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG, before[1], before[2])
    return before


async def open_daemon(settings: ZapdSettings, engine: AsyncEngine | None = None) -> Daemon:
    """Prepare the state dir, secret and database (migrating when allowed); build the daemon.

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
    passwords = Passwords(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        workers=settings.password_hash_workers,
        queue=settings.password_hash_queue,
    )
    passwords.prepare()  # the dummy hash unknown e-mails are checked against, made once
    sessions = session_factory(engine)
    hub = Hub(sessions, queue_size=settings.ws_queue_size)
    kernel = Kernel(
        settings=settings,
        engine=engine,
        sessions=sessions,
        jwt_secret=secret,
        passwords=passwords,
        hub=hub,
        throttle=LoginThrottle(
            settings.login_max_failures,
            settings.login_window,
            account_max=settings.login_account_max_failures,
            address_max=settings.login_address_max_failures,
            lockout_base=settings.login_lockout_base,
            lockout_cap=settings.login_lockout_cap,
        ),
    )
    daemon = Daemon(kernel, hub)
    if settings.metrics_require_token:
        daemon.metrics_token = (
            settings.metrics_token.get_secret_value()
            if settings.metrics_token is not None
            else ensure_secret_file(settings.metrics_token_file)
        )
    return daemon
