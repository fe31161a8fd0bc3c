"""Running sessions: one connector per started session, and what its events change.

Status and QR events update the session row, its log and the realtime stream here;
message, ack and contact events go to the inbound pipeline (`on_inbound`), which
stores them raw before processing them; a customer's typing (ephemeral, never stored)
goes to `on_typing`, which shows it to the agents who can see the chat's ticket.

A status or QR event that cannot be written because the database is away is not
raised into the engine (its own loop would die of it): the session's latest such event
is kept and written once the database answers again, newer events replacing older ones.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from sqlalchemy import select

from shared.enums import Engine, LogLevel, SessionStatus
from shared.errors import ErrorCode
from shared.protocol.events import SESSION_QR, SESSION_STATUS
from zapd.connectors.base import Connector, PairingCode, PairingError, SupportsPairing
from zapd.connectors.cloud.connector import CloudConnector, InDoubtLookup
from zapd.connectors.cloud.graph import CloudSettings
from zapd.connectors.events import AnyEngineEvent, QrEvent, StatusEvent, TypingEvent
from zapd.connectors.sandbox import SandboxConnector, SandboxNetwork
from zapd.connectors.webjs.connector import WebjsConnector
from zapd.connectors.webjs.driver import EngineUnavailable, WebjsDriver
from zapd.db.models import SessionLog, WaSession
from zapd.db.types import utcnow
from zapd.errors import Conflict, DatabaseUnavailable, NotFound, Unavailable
from zapd.kernel import events
from zapd.secretbox import SecretBox
from zapd.services.sessions.cloud_config import settings_of

if TYPE_CHECKING:
    from zapd.kernel.context import Kernel

log = logging.getLogger("zapd.engines")

SANDBOX_LINKED = "sandbox:linked"  # auth_state_path of a linked sandbox session
InboundHandler = Callable[[uuid.UUID, AnyEngineEvent], Awaitable[object]]
TypingHandler = Callable[[TypingEvent], Awaitable[object]]


# How long a session gets to stop at shutdown: more than webjs's own grace (8 s) for
# its event handlers, so a browser winding down is not cut short.
SESSION_STOP_SECONDS = 10.0


class SessionManager:
    """Starts, stops and reaches the connectors of the daemon's sessions."""

    def __init__(
        self,
        kernel: Kernel,
        sandbox: SandboxNetwork,
        registry: CollectorRegistry | None = None,  # Prometheus, for the webjs counters
        box: SecretBox | None = None,  # opens sealed engine credentials (cloud)
    ) -> None:
        self.kernel = kernel
        self.sandbox = sandbox
        self.box = box or SecretBox.from_state_dir(kernel.settings.state_dir)
        self._connectors: dict[uuid.UUID, Connector] = {}
        self._company: dict[uuid.UUID, uuid.UUID] = {}
        self._lock = asyncio.Lock()
        self.on_inbound: InboundHandler | None = None
        self.on_typing: TypingHandler | None = None
        # Finds the wamid of a Cloud API send in doubt in the stored status webhooks.
        self.cloud_lookup: InDoubtLookup | None = None
        self._closing = False
        self.webjs = WebjsDriver(kernel.settings, registry)
        # The latest status/QR event per session that the database could not take yet.
        self._unwritten: dict[uuid.UUID, StatusEvent | QrEvent] = {}
        self._rewrite: asyncio.Task[None] | None = None

    def connector(self, session_id: uuid.UUID) -> Connector | None:
        """Return the running connector of a session, if started."""
        return self._connectors.get(session_id)

    def running(self) -> list[uuid.UUID]:
        """Return the ids of the started sessions."""
        return list(self._connectors)

    async def start(self, session_id: uuid.UUID) -> None:
        """Start a session's engine (QR events follow until it is linked)."""
        async with self._lock:
            previous = self._connectors.get(session_id)
            if previous is not None and getattr(previous, "alive", True) is False:
                del self._connectors[session_id]  # ended by itself (unscanned QR, phone logout)
            elif previous is not None:
                raise Conflict("session already started", code=ErrorCode.SESSION_STARTED)
            async with self.kernel.read() as db:
                row = await db.get(WaSession, session_id)
                if row is None:
                    raise NotFound("session not found")
                if not row.active:
                    raise Conflict("session is inactive", code=ErrorCode.SESSION_INACTIVE)
                engine, company_id = row.engine, row.company_id
                linked_phone = row.phone if row.auth_state_path == SANDBOX_LINKED else None
                cloud = settings_of(self.box, row) if engine == Engine.CLOUD else None
            connector = self._build(engine, session_id, linked_phone, cloud)
            self._connectors[session_id] = connector
            self._company[session_id] = company_id
        try:
            await connector.start()
        except Exception:
            self._connectors.pop(session_id, None)
            raise

    def _build(
        self,
        engine: Engine,
        session_id: uuid.UUID,
        linked_phone: str | None,
        cloud: CloudSettings | None = None,
    ) -> Connector:
        async def sink(event: AnyEngineEvent) -> None:
            await self.handle(event)

        if engine == Engine.CLOUD and cloud is not None:
            return CloudConnector(session_id, cloud, sink, in_doubt_lookup=self._cloud_lookup)

        if engine == Engine.SANDBOX:
            if linked_phone:
                state = self.sandbox.session(session_id)
                state.linked, state.phone = True, linked_phone
            return SandboxConnector(session_id, self.sandbox, sink)
        if engine == Engine.WEBJS:
            return self._webjs(session_id)
        raise Unavailable(
            f"the {engine.name.lower()} engine is not available in this build",
            code=ErrorCode.ENGINE_UNAVAILABLE,
        )

    async def stop(self, session_id: uuid.UUID) -> None:
        """Disconnect a session, keeping its link."""
        connector = self._connectors.pop(session_id, None)
        if connector is None:
            raise Conflict("session is not running", code=ErrorCode.SESSION_NOT_RUNNING)
        await connector.stop()

    async def logout(self, session_id: uuid.UUID) -> None:
        """Unlink a session's number (the next start needs a QR)."""
        connector = self._connectors.pop(session_id, None)
        if connector is None:
            connector = self._build_for_logout(session_id)
        await connector.logout()
        async with self.kernel.tx() as db:
            row = await db.get(WaSession, session_id)
            if row is not None:
                row.auth_state_path = None

    async def pairing_code(self, session_id: uuid.UUID, phone: str) -> PairingCode:
        """Ask a waiting session's engine for a code that links `phone` without a QR."""
        connector = self._connectors.get(session_id)
        if connector is None:
            raise Conflict(
                "session is not running: start it first", code=ErrorCode.SESSION_NOT_RUNNING
            )
        if not isinstance(connector, SupportsPairing):
            raise Conflict(
                f"the {connector.engine.name.lower()} engine cannot link with a pairing code",
                code=ErrorCode.PAIRING_UNSUPPORTED,
            )
        try:
            return await connector.request_pairing_code(phone)
        except PairingError as exc:
            raise Conflict(str(exc), code=ErrorCode.PAIRING_REFUSED) from None

    def _build_for_logout(self, session_id: uuid.UUID) -> Connector:
        async def sink(event: AnyEngineEvent) -> None:
            await self.handle(event)

        if self.webjs.profile_dir(session_id).exists():
            return self._webjs(session_id)
        return SandboxConnector(session_id, self.sandbox, sink)

    def _webjs(self, session_id: uuid.UUID) -> WebjsConnector:
        async def sink(event: AnyEngineEvent) -> None:
            await self.handle(event)

        async def heartbeat() -> None:
            async with self.kernel.tx() as db:
                row = await db.get(WaSession, session_id)
                if row is not None:
                    row.last_heartbeat_at = utcnow()

        try:
            self.webjs.check()
        except EngineUnavailable as exc:
            raise Unavailable(str(exc), code=ErrorCode.ENGINE_UNAVAILABLE) from None
        return WebjsConnector(session_id, self.webjs, sink, heartbeat)

    async def resume(self) -> None:
        """Start again, at daemon start, the sessions that were connected when it stopped."""
        async with self.kernel.read() as db:
            ids = list(
                (
                    await db.scalars(
                        select(WaSession.id).where(
                            WaSession.active.is_(True),
                            WaSession.status.in_(
                                [
                                    SessionStatus.CONNECTED,
                                    SessionStatus.SYNCING,
                                    SessionStatus.AUTHENTICATING,
                                ]
                            ),
                        )
                    )
                ).all()
            )
        for session_id in ids:
            try:
                await self.start(session_id)
            except Exception as exc:  # one broken session must not keep the rest down
                log.warning("could not resume session %s: %s", session_id, exc)

    async def close(self) -> None:
        """Stop every connector (daemon shutdown); sessions keep their status for resume."""
        self._closing = True  # their "stopped" statuses must not overwrite what resume reads

        async def stop(session_id: uuid.UUID, connector: Connector) -> None:
            try:
                await asyncio.wait_for(connector.stop(), SESSION_STOP_SECONDS)
            except Exception as exc:
                log.warning("stopping session %s: %s", session_id, exc)

        # All at once: a hundred sessions stop in one grace period, not a hundred.
        await asyncio.gather(*(stop(sid, c) for sid, c in list(self._connectors.items())))
        self._connectors.clear()
        if self._rewrite is not None:
            self._rewrite.cancel()
            await asyncio.gather(self._rewrite, return_exceptions=True)
            self._rewrite = None
        await self.webjs.shutdown()  # every browser gone, no orphan

    async def _cloud_lookup(self, session_id: uuid.UUID, key: str) -> str | None:
        if self.cloud_lookup is None:
            return None
        return await self.cloud_lookup(session_id, key)

    # ------------------------------------------------------------------ events

    async def handle(self, event: AnyEngineEvent) -> None:
        """Route one engine event: status and QR here, the rest to the inbound pipeline."""
        if isinstance(event, StatusEvent):
            if not self._closing:
                await self._write_state(event)
        elif isinstance(event, QrEvent):
            await self._write_state(event)
        elif isinstance(event, TypingEvent):
            if self.on_typing is not None:
                await self.on_typing(event)
        elif self.on_inbound is not None:
            await self.on_inbound(event.session_id, event)

    async def _write_state(self, ev: StatusEvent | QrEvent) -> None:
        """Write a status or QR event now, or keep it for when the database is back."""
        if ev.session_id in self._unwritten:  # an older one waits: keep the order
            self._unwritten[ev.session_id] = ev
            return
        try:
            await self._write(ev)
        except DatabaseUnavailable:
            self._unwritten[ev.session_id] = ev
            if self._rewrite is None or self._rewrite.done():
                self._rewrite = asyncio.create_task(self._write_later(), name="session-states")

    async def _write(self, ev: StatusEvent | QrEvent) -> None:
        if isinstance(ev, StatusEvent):
            await self._on_status(ev)
        else:
            await self._on_qr(ev)

    async def _write_later(self) -> None:
        while self._unwritten:
            await asyncio.sleep(min(1.0, float(self.kernel.db_health.retry_after)))
            for session_id, ev in list(self._unwritten.items()):
                try:
                    await self._write(ev)
                except DatabaseUnavailable:
                    break  # still away: all of them wait for the next round
                except Exception:  # not the database's absence: it will not get better
                    log.exception("session %s: writing its %s failed", session_id, ev.kind)
                if self._unwritten.get(session_id) is ev:  # not replaced meanwhile
                    del self._unwritten[session_id]

    async def _on_status(self, ev: StatusEvent) -> None:
        async with self.kernel.tx() as db:
            row = await db.get(WaSession, ev.session_id)
            if row is None:
                return
            row.status = ev.status
            row.status_reason = ev.reason
            if ev.status != SessionStatus.ERROR:  # an engine in error is no sign of life
                row.last_heartbeat_at = utcnow()
            if ev.status == SessionStatus.CONNECTED:
                row.qr_code = None
                row.qr_expires_at = None
                if ev.phone:
                    row.phone = ev.phone
                if row.engine == Engine.SANDBOX:
                    row.auth_state_path = SANDBOX_LINKED
            level = LogLevel.WARNING if ev.status == SessionStatus.ERROR else LogLevel.INFO
            db.add(
                SessionLog(
                    company_id=row.company_id,
                    session_id=row.id,
                    level=level,
                    event="status",
                    message=f"{ev.status.name}" + (f": {ev.reason}" if ev.reason else ""),
                    data={"status": int(ev.status), "phone": ev.phone},
                )
            )
            await events.publish(
                db,
                row.company_id,
                SESSION_STATUS,
                {"id": row.id, "status": int(ev.status), "reason": ev.reason, "phone": row.phone},
            )

    async def _on_qr(self, ev: QrEvent) -> None:
        async with self.kernel.tx() as db:
            row = await db.get(WaSession, ev.session_id)
            if row is None:
                return
            row.qr_code = ev.qr
            row.qr_expires_at = ev.expires_at
            row.status = SessionStatus.WAITING_QR
            await events.publish(
                db,
                row.company_id,
                SESSION_QR,
                {"id": row.id, "qr": ev.qr, "expires_at": ev.expires_at},
            )
