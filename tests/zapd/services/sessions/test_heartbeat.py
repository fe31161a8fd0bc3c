"""Session heartbeat on a live daemon: `last_heartbeat_at` moves while a session runs, and
an engine that stops answering is marked so (and unmarked when it answers again)."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import select

from shared.enums import SessionStatus
from tests.zapd.api.conftest import Live
from tests.zapd.api.conftest import live as live  # the fixture, shared
from tests.zapd.api.test_conversation import connected_session
from zapd.db.models import SessionLog, WaSession
from zapd.services.sessions.heartbeat import NOT_ANSWERING, Heartbeat


async def heartbeat(live: Live) -> Heartbeat:
    """Return the daemon's heartbeat worker, its loop stopped (the test ticks it)."""
    [hb] = [w for w in live.daemon.workers if isinstance(w, Heartbeat)]
    await hb.stop()
    return hb


async def row(live: Live, sid: uuid.UUID) -> WaSession:
    async with live.kernel.read() as db:
        found = await db.get(WaSession, sid)
        assert found is not None
        return found


async def test_running_sessions_heartbeat_and_a_silent_engine_is_marked(live: Live) -> None:
    t = await live.tenant()
    sid = uuid.UUID(await connected_session(live, t))
    hb = await heartbeat(live)
    before = (await row(live, sid)).last_heartbeat_at
    await asyncio.sleep(0.01)
    answers = await hb.tick()
    assert answers == {sid: SessionStatus.CONNECTED}
    after = await row(live, sid)
    assert after.status == SessionStatus.CONNECTED
    assert before is not None and after.last_heartbeat_at is not None
    assert after.last_heartbeat_at > before  # a beat without any status change
    # The engine hangs: the next tick times out on it and marks the session, once.
    hb.timeout = 0.2
    live.daemon.sandbox.stall(sid)
    assert await hb.tick() == {sid: None}
    marked = await row(live, sid)
    assert marked.status == SessionStatus.ERROR and marked.status_reason == NOT_ANSWERING
    assert marked.last_heartbeat_at == after.last_heartbeat_at  # no beat without an answer
    r = await t.admin.get(f"/api/v1/sessions/{sid}")
    assert r.json()["status"] == SessionStatus.ERROR
    await hb.tick()
    async with live.kernel.read() as db:
        lines = (
            await db.scalars(
                select(SessionLog.message).where(
                    SessionLog.session_id == sid, SessionLog.message.contains(NOT_ANSWERING)
                )
            )
        ).all()
    assert len(lines) == 1
    # It answers again: the state it reports is back.
    live.daemon.sandbox.stall(sid, False)
    await asyncio.sleep(0.01)
    assert await hb.tick() == {sid: SessionStatus.CONNECTED}
    back = await row(live, sid)
    assert back.status == SessionStatus.CONNECTED
    assert back.last_heartbeat_at is not None and back.last_heartbeat_at > marked.last_heartbeat_at


async def test_the_worker_beats_on_its_own_interval(live: Live) -> None:
    t = await live.tenant()
    sid = uuid.UUID(await connected_session(live, t))
    hb = await heartbeat(live)
    assert hb.interval == live.kernel.settings.session_heartbeat_interval
    hb.interval = 0.05
    first = (await row(live, sid)).last_heartbeat_at
    await hb.start()
    try:
        for _ in range(100):
            if hb.ticks >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await hb.stop()
    assert hb.ticks >= 2
    beat = (await row(live, sid)).last_heartbeat_at
    assert beat is not None and first is not None and beat > first
