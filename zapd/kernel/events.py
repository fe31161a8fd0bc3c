"""Persisted realtime events: a per-company `seq` committed with the change that caused it.

Writing the event log is part of a service's unit of work (like the audit row), so it
lives in the kernel; reading it back and fanning it out to sockets is `zapd.realtime`.
An event is handed to the kernel's `Fanout` only after its transaction commits.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from zapd.db.models import Company, Event
from zapd.kernel.audit import jsonable
from zapd.kernel.context import after_commit
from zapd.kernel.scoping import take_company_counter


async def next_seq(db: AsyncSession, company_id: uuid.UUID) -> int:
    """Take the company's next event number.

    The UPDATE holds the company row's lock until commit (PostgreSQL; SQLite's
    BEGIN IMMEDIATE serialises every writer), so events of one company commit in
    `seq` order and a reader never sees seq N+1 before N.
    """
    seq = await take_company_counter(db, company_id, Company.last_event_seq)
    if seq is None:
        raise LookupError(f"company {company_id} does not exist")
    return seq


async def publish(
    db: AsyncSession,
    company_id: uuid.UUID,
    type_: str,
    data: dict[str, Any],
    *,
    department_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
) -> Event:
    """Persist an event in the current transaction; it goes out live once that commits.

    `department_id` / `user_id` say who may see it: an agent gets events of their
    departments and events addressed to them; events with neither are company-wide.
    """
    seq = await next_seq(db, company_id)
    event = Event(
        company_id=company_id,
        seq=seq,
        type=type_,
        department_id=department_id,
        user_id=user_id,
        data=jsonable(data),
    )
    db.add(event)
    after_commit(db, lambda kernel: kernel.hub.dispatch(event))
    return event
