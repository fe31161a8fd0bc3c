"""Deferred events: numbered at once at the end, from a counter read or taken by UPDATE."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tests.zapd.db import factories as f
from zapd.db.models import Company, Event
from zapd.kernel import events


async def _publish_two(db: AsyncSession, company_id: object) -> list[events.Published]:
    events.defer_seqs(db)
    held = []
    for name in ("a", "b"):
        ev = await events.publish(db, company_id, "t", {"name": name})  # type: ignore[arg-type]
        assert isinstance(ev, events.Published) and ev.seq is None
        held.append(ev)
    return held


async def test_deferred_events_are_numbered_in_order_by_the_counter(db: AsyncSession) -> None:
    c, _ = await f.tenant(db)
    held = await _publish_two(db, c.id)
    assert await events.assign_seqs(db, c.id) == 2
    assert [e.seq for e in held] == [1, 2]
    # From the counter as read (SQLite's straight batch): the UPDATE goes behind.
    read = await db.scalar(select(Company.last_event_seq).where(Company.id == c.id))
    held = await _publish_two(db, c.id)
    assert await events.assign_seqs(db, c.id, last=read) == 2
    assert [e.seq for e in held] == [3, 4]
    await db.flush()
    rows = (await db.execute(select(Event.seq, Event.data).order_by(Event.seq))).all()
    assert [tuple(r) for r in rows] == [(n, {"name": x}) for n, x in enumerate("abab", start=1)]
    assert await db.scalar(select(Company.last_event_seq).where(Company.id == c.id)) == 4


async def test_a_stale_counter_read_is_refused_not_reused(db: AsyncSession) -> None:
    c, _ = await f.tenant(db)
    await _publish_two(db, c.id)
    await events.assign_seqs(db, c.id)  # seqs 1 and 2
    await _publish_two(db, c.id)
    with pytest.raises(IntegrityError):  # PostgreSQL at the insert, SQLite at its trip
        await events.assign_seqs(db, c.id, last=0)  # as if read before the first two
        await db.flush()
        await db.scalar(select(Event.id).limit(1))  # whatever trip runs the queued insert
