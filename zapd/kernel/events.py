"""Persisted realtime events: a per-company `seq` committed with the change that caused it.

Writing the event log is part of a service's unit of work (like the audit row), so it
lives in the kernel; reading it back and fanning it out to sockets is `zapd.realtime`.
An event is handed to the kernel's `Fanout` only after its transaction commits.

A batch of work (the inbound pipeline) may defer the numbering: after `defer_seqs(db)`
events are held aside and `assign_seqs` numbers them all with one counter UPDATE just
before the commit, in the order they were published, and inserts them with one
executemany (Core, outside the unit of work; the Event objects the hub reads after the
commit carry every column). The company row's lock is then held from that UPDATE to
the commit, as for one event. `mark`/`rewind` drop what a rolled-back savepoint
published, with its after-commit hooks.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from sqlalchemy import Table, update
from sqlalchemy.ext.asyncio import AsyncSession

from zapd.db.models import Company, Event, Ticket
from zapd.db.types import new_id, utcnow
from zapd.kernel.audit import jsonable
from zapd.kernel.context import after_commit, pending_hooks
from zapd.kernel.held import insert_rows
from zapd.kernel.scoping import take_company_counter

_DEFERRED = "zap_deferred_events"
_EVENT_COLUMNS = (
    "id",
    "company_id",
    "seq",
    "type",
    "department_id",
    "user_id",
    "scoped",
    "data",
    "created_at",
)


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
    scoped: bool = False,
) -> Event:
    """Persist an event in the current transaction; it goes out live once that commits.

    `department_id` / `user_id` say who may see it: an agent gets events of their
    departments and events addressed to them; events with neither are company-wide,
    unless `scoped` (an event about a ticket or a conversation: see `for_ticket`).
    """
    deferred: list[Event] | None = db.info.get(_DEFERRED)
    seq = None if deferred is not None else await next_seq(db, company_id)
    event = Event(
        company_id=company_id,
        seq=seq,
        type=type_,
        department_id=department_id,
        user_id=user_id,
        scoped=scoped,
        data=jsonable(data),
    )
    if deferred is not None:
        deferred.append(event)  # numbered and added by `assign_seqs`
    else:
        db.add(event)
    after_commit(db, lambda kernel: kernel.hub.dispatch(event))
    return event


def defer_seqs(db: AsyncSession) -> None:
    """Hold this transaction's events aside until `assign_seqs` numbers them at once."""
    db.info.setdefault(_DEFERRED, [])


def mark(db: AsyncSession) -> tuple[int, int]:
    """Where the held events and after-commit hooks stand (before a savepoint)."""
    return len(db.info.get(_DEFERRED, ())), len(pending_hooks(db))


def rewind(db: AsyncSession, at: tuple[int, int]) -> None:
    """Forget the events and hooks registered since `mark` (their savepoint rolled back)."""
    held = db.info.get(_DEFERRED)
    if held is not None:
        del held[at[0] :]
    del pending_hooks(db)[at[1] :]


async def assign_seqs(db: AsyncSession, company_id: uuid.UUID) -> int:
    """Number the held events of `company_id` with one UPDATE and add them; return how many.

    Call it last in the transaction: the company row stays locked until the commit.
    """
    held: list[Event] = db.info.pop(_DEFERRED, [])
    if not held:
        return 0
    if any(e.company_id != company_id for e in held):
        raise ValueError("deferred events of another company")
    last = await db.scalar(
        update(Company)
        .where(Company.id == company_id)
        .values(last_event_seq=Company.last_event_seq + len(held))
        .returning(Company.last_event_seq)
        .execution_options(synchronize_session=False)
    )
    if last is None:
        raise LookupError(f"company {company_id} does not exist")
    first = int(last) - len(held) + 1
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for offset, event in enumerate(held):
        event.seq = first + offset
        event.id = event.id or new_id()
        event.created_at = event.created_at or now
        rows.append({c: getattr(event, c) for c in _EVENT_COLUMNS})
    # One executemany on the table (the ORM's bulk insert would split the rows by which
    # columns are None; on SQLite it rides with the commit's trip: `zapd.kernel.held`);
    # the Event objects stay outside the session (what the hub reads after the commit
    # is already on them, and the ORM has no per-row work).
    await insert_rows(db, cast(Table, Event.__table__), rows)
    return len(held)


async def for_ticket(
    db: AsyncSession,
    company_id: uuid.UUID,
    type_: str,
    data: dict[str, Any],
    ticket: Ticket | None,
) -> Event:
    """Publish an event about `ticket` (or a conversation with none) to exactly its audience.

    The event is scoped: whoever may read the ticket through REST receives it, and no one
    else (a ticket with no department and no assignee, or no ticket, reaches supervisors).
    """
    return await publish(
        db,
        company_id,
        type_,
        data,
        department_id=ticket.department_id if ticket is not None else None,
        user_id=ticket.assignee_id if ticket is not None else None,
        scoped=True,
    )
