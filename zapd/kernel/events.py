"""Persisted realtime events: a per-company `seq` committed with the change that caused it.

Writing the event log is part of a service's unit of work (like the audit row), so it
lives in the kernel; reading it back and fanning it out to sockets is `zapd.realtime`.
An event is handed to the kernel's `Fanout` only after its transaction commits.

A batch of work (the inbound pipeline) may defer the numbering: after `defer_seqs(db)`
events are held aside (plain `Published` records, no ORM object) and `assign_seqs`
numbers them all with one counter UPDATE just before the commit, in the order they
were published, and inserts them with one executemany (Core, outside the unit of work;
the hub reads the records after the commit). The company row's lock is then held from that UPDATE to
the commit, as for one event. `mark`/`rewind` drop what a rolled-back savepoint
published, with its after-commit hooks.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession

from zapd.db.models import Company, Event, Ticket
from zapd.db.types import new_id, utcnow
from zapd.kernel.audit import jsonable
from zapd.kernel.context import after_commit, pending_hooks
from zapd.kernel.held import Held, insert_rows
from zapd.kernel.scoping import take_company_counter
from zapd.kernel.txsql import TxStatement

if TYPE_CHECKING:
    from zapd.kernel.context import Kernel

_DEFERRED = "zap_deferred_events"
_COUNT_SEQS = (  # built once
    update(Company)
    .where(Company.id == bindparam("company_id"))
    .values(last_event_seq=Company.last_event_seq + bindparam("count"))
    .execution_options(synchronize_session=False)
)
_TAKE_SEQS = _COUNT_SEQS.returning(Company.last_event_seq)
_TAKE_SEQS_HELD = TxStatement(_TAKE_SEQS)  # PostgreSQL's batch (`held`): no flush before it
_MOVE_SEQS = TxStatement(_COUNT_SEQS)  # SQLite: queued for the next trip


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


@dataclass(slots=True)
class Published:
    """An event held for `assign_seqs`: the row's values, not an ORM object.

    Read after the commit like an `Event` (the hub takes either); its `seq` is set
    by `assign_seqs`.
    """

    company_id: uuid.UUID
    type: str
    data: dict[str, Any]
    department_id: uuid.UUID | None
    user_id: uuid.UUID | None
    scoped: bool
    seq: int | None = None


async def publish(
    db: AsyncSession,
    company_id: uuid.UUID,
    type_: str,
    data: dict[str, Any],
    *,
    department_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
    scoped: bool = False,
) -> Event | Published:
    """Persist an event in the current transaction; it goes out live once that commits.

    `department_id` / `user_id` say who may see it: an agent gets events of their
    departments and events addressed to them; events with neither are company-wide,
    unless `scoped` (an event about a ticket or a conversation: see `for_ticket`).
    """
    event: Event | Published
    deferred: list[Published] | None = db.info.get(_DEFERRED)
    if deferred is not None:
        event = Published(company_id, type_, jsonable(data), department_id, user_id, scoped)
        deferred.append(event)  # numbered and inserted by `assign_seqs`
    else:
        event = Event(
            company_id=company_id,
            seq=await next_seq(db, company_id),
            type=type_,
            department_id=department_id,
            user_id=user_id,
            scoped=scoped,
            data=jsonable(data),
        )
        db.add(event)
    after_commit(db, functools.partial(_dispatch, event))
    return event


def _dispatch(event: Event | Published, kernel: Kernel) -> None:
    kernel.hub.dispatch(event)


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


async def assign_seqs(
    db: AsyncSession, company_id: uuid.UUID, *, last: int | None = None, held: Held | None = None
) -> int:
    """Number the held events of `company_id` with one UPDATE and add them; return how many.

    Call it last in the transaction: the company row stays locked until the commit.
    `last` is the counter as this transaction read it when no other writer can move
    it before the commit (SQLite's BEGIN IMMEDIATE) and nothing else in the
    transaction did: the UPDATE then needs no answer and rides with the next trip
    (were `last` stale, the (company, seq) unique index would refuse the insert).
    With `held` (a `zapd.kernel.held.Held`), the rows are held there for the caller's
    insert instead (PostgreSQL: with the batch's other rows, in one statement); the
    caller inserts it before the commit.
    """
    deferred: list[Published] = db.info.pop(_DEFERRED, [])
    if not deferred:
        return 0
    if any(e.company_id != company_id for e in deferred):
        raise ValueError("deferred events of another company")
    params = {"company_id": company_id, "count": len(deferred)}
    if last is not None:
        await _MOVE_SEQS.run(db, params, behind=True)
        last += len(deferred)
    else:
        if held is not None:
            # No flush first: it must follow the held rows' insert (TxStatement runs none).
            found = await _TAKE_SEQS_HELD.rows(db, params)
            last = found[0][0] if found else None
        else:
            last = await db.scalar(_TAKE_SEQS, params)
        if last is None:
            raise LookupError(f"company {company_id} does not exist")
    first = int(last) - len(deferred) + 1
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for offset, event in enumerate(deferred):
        event.seq = first + offset
        rows.append(
            {
                "id": new_id(),
                "company_id": event.company_id,
                "seq": event.seq,
                "type": event.type,
                "department_id": event.department_id,
                "user_id": event.user_id,
                "scoped": event.scoped,
                "data": event.data,
                "created_at": now,
            }
        )
    if held is not None:
        for row in rows:
            held.add_row(Event, row)
        return len(deferred)
    # One executemany on the table (on SQLite it rides with the commit's trip:
    # `zapd.kernel.held`); what the hub reads after the commit is on the records.
    await insert_rows(db, cast(Table, Event.__table__), rows)
    return len(deferred)


async def for_ticket(
    db: AsyncSession,
    company_id: uuid.UUID,
    type_: str,
    data: dict[str, Any],
    ticket: Ticket | None,
) -> Event | Published:
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
