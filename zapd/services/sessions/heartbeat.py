"""Session heartbeat: every running session's engine is asked, on an interval, if it lives.

Invariants:
- Each tick pings every started connector (sandbox included) concurrently, each bounded
  by `session_heartbeat_timeout`. The sessions that answered get `last_heartbeat_at = now`
  in one UPDATE, so `last_heartbeat_at` moves while a session runs, not only when its
  status changes.
- A session whose engine does not answer in time is marked once: status ERROR with the
  reason "engine not answering", through the manager's status path (session log line,
  realtime event). When it answers again, the state it reports is restored the same way.
- A connector that cannot be pinged (no `ping`) counts as answering while it runs.
- The worker never raises out of its loop; a failed tick is logged and the next one runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import update

from shared.enums import SessionStatus
from zapd.connectors.base import SupportsHeartbeat
from zapd.connectors.events import StatusEvent
from zapd.db.models import WaSession
from zapd.db.types import utcnow

if TYPE_CHECKING:
    from zapd.kernel.context import Kernel
    from zapd.services.sessions.manager import SessionManager

log = logging.getLogger("zapd.heartbeat")

NOT_ANSWERING = "engine not answering"


class Heartbeat:
    """A Worker: pings the running sessions every `session_heartbeat_interval` seconds."""

    def __init__(self, kernel: Kernel, manager: SessionManager) -> None:
        self.kernel = kernel
        self.manager = manager
        self.interval = kernel.settings.session_heartbeat_interval
        self.timeout = kernel.settings.session_heartbeat_timeout
        self.silent: set[uuid.UUID] = set()  # marked as not answering
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Start the loop."""
        if self._task is not None and not self._task.done():
            return
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="zapd-heartbeat")

    async def stop(self) -> None:
        """Stop the loop (a tick in progress is cancelled: pings are idempotent)."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval)
            if self._stopping.is_set():
                return
            try:
                await self.tick()
            except Exception:
                log.exception("heartbeat tick failed")

    async def _ping(self, session_id: uuid.UUID) -> SessionStatus | None:
        """Return the state the engine reports, or None when it does not answer in time."""
        connector = self.manager.connector(session_id)
        if connector is None:
            return None
        if not isinstance(connector, SupportsHeartbeat):
            return SessionStatus.CONNECTED
        try:
            return await asyncio.wait_for(connector.ping(), self.timeout)
        except TimeoutError:
            return None
        except Exception as exc:
            log.warning("heartbeat of session %s failed: %s", session_id, exc)
            return None

    async def tick(self, now: datetime | None = None) -> dict[uuid.UUID, SessionStatus | None]:
        """Ping every running session once; return what each answered (None: silent)."""
        async with self._lock:
            ids = self.manager.running()
            pings = await asyncio.gather(*(self._ping(i) for i in ids))
            answers = dict(zip(ids, pings, strict=True))
            # A session stopped while we pinged it is not ours to mark any more.
            running = set(self.manager.running())
            alive = [i for i, a in answers.items() if a is not None and i in running]
            if alive:
                async with self.kernel.tx() as db:
                    await db.execute(
                        update(WaSession)
                        .where(WaSession.id.in_(alive))
                        .values(last_heartbeat_at=now or utcnow())
                    )
            for session_id, answer in answers.items():
                if session_id not in running:
                    self.silent.discard(session_id)
                elif answer is None and session_id not in self.silent:
                    self.silent.add(session_id)
                    log.warning("session %s: %s", session_id, NOT_ANSWERING)
                    await self._status(session_id, SessionStatus.ERROR, NOT_ANSWERING)
                elif answer is not None and session_id in self.silent:
                    self.silent.discard(session_id)
                    log.info("session %s answers again (%s)", session_id, answer.name)
                    await self._status(session_id, answer, "engine answers again")
            self.ticks += 1
            return answers

    async def _status(self, session_id: uuid.UUID, status: SessionStatus, reason: str) -> None:
        await self.manager.handle(
            StatusEvent(session_id=session_id, at=utcnow(), status=status, reason=reason)
        )
