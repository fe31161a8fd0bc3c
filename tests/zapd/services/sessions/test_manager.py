"""Session states while the database is away: kept, then written once it is back.

The daemon's write transactions are made to fail the way a lost database makes them
fail (the driver's "database is locked" through the kernel's real classifier), while
reads keep working so the test can look. The engine's status events must not raise
into the engine, and the latest one lands when writes succeed again.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import SessionStatus
from tests.zapd.api.conftest import Live
from tests.zapd.api.conftest import live as live  # the fixture, shared
from tests.zapd.api.test_conversation import connected_session, wait_for
from zapd.db.models import WaSession


async def _status(live: Live, sid: uuid.UUID) -> tuple[SessionStatus, str | None]:
    async with live.kernel.read() as db:
        row = await db.get(WaSession, sid)
        assert row is not None
        return row.status, row.status_reason


async def test_a_status_the_database_could_not_take_is_written_when_it_is_back(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = await live.tenant()
    sid = uuid.UUID(await connected_session(live, t))
    real_tx = live.kernel._tx
    down = True

    @asynccontextmanager
    async def failing_tx() -> AsyncIterator[AsyncSession]:
        if down:
            raise OperationalError("BEGIN", None, sqlite3.OperationalError("database is locked"))
        async with real_tx() as db:
            yield db

    monkeypatch.setattr(live.kernel, "_tx", failing_tx)
    before = await _status(live, sid)
    assert before[0] == SessionStatus.CONNECTED
    await live.daemon.engines.stop(sid)  # the engine says DISCONNECTED: nothing raised
    assert live.kernel.db_health.down
    await asyncio.sleep(0.3)
    assert await _status(live, sid) == before  # not written yet
    down = False

    async def written() -> bool:
        return await _status(live, sid) == (SessionStatus.DISCONNECTED, "stopped")

    await wait_for(written, within=10)
    assert not live.kernel.db_health.down


class _SlowToStop:
    """An engine that stops only once every session is stopping (a barrier)."""

    def __init__(self, barrier: asyncio.Barrier) -> None:
        self.barrier = barrier
        self.stopped = False

    async def stop(self) -> None:
        await self.barrier.wait()
        self.stopped = True


async def test_shutdown_stops_every_session_at_once(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zapd.services.sessions import manager

    monkeypatch.setattr(manager, "SESSION_STOP_SECONDS", 2.0)
    engines = live.daemon.engines
    barrier = asyncio.Barrier(3)
    slow = [_SlowToStop(barrier) for _ in range(3)]
    for connector in slow:
        engines._connectors[uuid.uuid4()] = connector  # type: ignore[assignment]
    await engines.close()  # one after the other, the first would wait for the rest forever
    assert all(c.stopped for c in slow)
    assert engines.running() == []
