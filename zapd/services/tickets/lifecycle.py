"""Tickets, write side: accept, assign, transfer, close, reopen, mark read and update.

Every change finds the ticket with the read side's visibility rules (a ticket the
caller may not see answers 404), checks the role (403) and the state machine of
`zapd.domain.tickets` (409), keeps the assignment history (a row opens when someone
takes the ticket, `ended_at` is set when it leaves them), and writes an audit row and
a `ticket.update` event in the caller's transaction. Texts to the customer go through
the outbox.

Lock order (PostgreSQL; SQLite serialises writers anyway): the ticket's chat, then the
ticket, then the user whose capacity is checked, then the company (event seq) — the
order the inbound pipeline takes chat, ticket and company in.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import FlowState, Role, TicketStatus
from shared.errors import ErrorCode
from shared.protocol.events import TICKET_UPDATE
from shared.protocol.tickets import TicketAssign, TicketClose, TicketTransfer, TicketUpdate
from zapd.db.models import (
    Assignment,
    Category,
    Chat,
    Client,
    Company,
    Department,
    Message,
    Ticket,
    TicketTag,
    User,
    WaSession,
)
from zapd.db.types import utcnow
from zapd.domain import tickets as rules
from zapd.domain.texts import Texts, session_overrides
from zapd.errors import Conflict, Forbidden, NotFound, ValidationFailed
from zapd.kernel import audit, changes, events
from zapd.kernel.principal import Actor, Principal
from zapd.kernel.scoping import referenced
from zapd.kernel.visibility import can_see
from zapd.services.catalog import tags
from zapd.services.delivery import outbox
from zapd.services.tickets.queries import ticket_event

# Ticket columns the audit log compares before and after a change.
AUDIT_FIELDS = [
    "status",
    "flow_state",
    "department_id",
    "assignee_id",
    "category_id",
    "priority",
    "timeout_at",
    "escalated_at",
    "closed_at",
    "closed_by_id",
    "reopen_count",
]

Hints = tuple[uuid.UUID | None, uuid.UUID | None]  # (department_id, assignee_id) of an event


# --------------------------------------------------------------------------- helpers


def snapshot(ticket: Ticket) -> dict[str, Any]:
    """Return the audited columns of a ticket."""
    return audit.snapshot(ticket, AUDIT_FIELDS)


def hints(ticket: Ticket) -> Hints:
    """Return who a ticket event is addressed to: its department and its assignee."""
    return ticket.department_id, ticket.assignee_id


def refuse(refusal: rules.Refusal | None) -> None:
    """Raise the 409 a domain refusal stands for (nothing when there is none)."""
    if refusal is not None:
        raise Conflict(refusal.message, code=refusal.code)


def system_actor(company_id: uuid.UUID) -> Actor:
    """Return the actor the scheduler's changes are audited under (no user)."""
    return Actor(Principal(user_id=None, company_id=company_id, role=None, name="scheduler"))


async def _visible(db: AsyncSession, p: Principal, ticket_id: uuid.UUID, *, lock: bool) -> Ticket:
    """Return a ticket the caller may see (404 otherwise), locked with its chat if asked."""
    row = await db.get(Ticket, ticket_id)
    if row is None or not can_see(p, row):
        raise NotFound("ticket not found")
    if not lock:
        return row
    return await lock_ticket(db, row, p)


async def lock_ticket(db: AsyncSession, ticket: Ticket, p: Principal | None = None) -> Ticket:
    """Lock a ticket's chat then the ticket, and reload it (404 if it vanished or hid)."""
    if ticket.chat_id is not None:
        await db.execute(select(Chat.id).where(Chat.id == ticket.chat_id).with_for_update())
    row = await db.get(Ticket, ticket.id, with_for_update=True, populate_existing=True)
    if row is None or (p is not None and not can_see(p, row)):
        raise NotFound("ticket not found")
    return row


def _holder_or(p: Principal, ticket: Ticket, role: Role) -> None:
    """Let through the ticket's assignee and callers of `role` or above (else 403)."""
    if p.at_least(role):
        return
    if p.user_id is not None and ticket.assignee_id == p.user_id:
        return
    raise Forbidden(f"only the ticket's assignee or a {role.name} may do this")


async def open_count(
    db: AsyncSession, user_id: uuid.UUID, *, excluding: uuid.UUID | None = None
) -> int:
    """Count the OPEN tickets a user holds (leaving `excluding` out)."""
    stmt = select(func.count(Ticket.id)).where(
        Ticket.assignee_id == user_id, Ticket.status == TicketStatus.OPEN
    )
    if excluding is not None:
        stmt = stmt.where(Ticket.id != excluding)
    return int(await db.scalar(stmt) or 0)


async def lock_user(db: AsyncSession, user_id: uuid.UUID) -> User | None:
    """Lock a user's row (capacity checks of one agent run one at a time) and return it.

    FOR NO KEY UPDATE: it does not wait for the KEY SHARE locks that PostgreSQL takes
    on the user when a ticket row pointing at them is written (two accepts of one agent
    would otherwise deadlock), yet two of these queue.
    """
    return await db.scalar(
        select(User)
        .where(User.id == user_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )


async def check_capacity(db: AsyncSession, user: User, ticket_id: uuid.UUID) -> None:
    """Refuse (409 ERR_AT_CAPACITY) a user already holding their maximum of open tickets."""
    held = await open_count(db, user.id, excluding=ticket_id)
    refuse(rules.capacity_refusal(held, user.max_concurrent_tickets))


async def _member(db: AsyncSession, company_id: uuid.UUID, user_id: uuid.UUID) -> User:
    """Return an active member of the company (404 if not of it, 422 if inactive)."""
    user = await referenced(db, User, user_id, company_id, field="user_id", what="user")
    if not user.active or user.role is None:
        raise ValidationFailed("user_id: no such active user in this company")
    return user


async def _department(
    db: AsyncSession, company_id: uuid.UUID, department_id: uuid.UUID
) -> Department:
    row = await referenced(
        db, Department, department_id, company_id, field="department_id", what="department"
    )
    if not row.active:
        raise ValidationFailed("department_id: no such active department in this company")
    return row


def deadline(department: Department | None, now: datetime) -> datetime | None:
    """Return the response deadline of a ticket starting to wait in `department` now."""
    if department is None or not department.response_timeout_seconds:
        return None
    return now + timedelta(seconds=department.response_timeout_seconds)


async def end_assignments(db: AsyncSession, ticket_id: uuid.UUID, now: datetime) -> None:
    """Close the ticket's current assignment rows."""
    await db.execute(
        update(Assignment)
        .where(Assignment.ticket_id == ticket_id, Assignment.ended_at.is_(None))
        .values(ended_at=now)
        .execution_options(synchronize_session=False)
    )


def start_assignment(
    db: AsyncSession,
    ticket: Ticket,
    user_id: uuid.UUID,
    reason: str,
    now: datetime,
    assigned_by: uuid.UUID | None = None,
) -> Assignment:
    """Open an assignment row: `user_id` holds the ticket from `now`."""
    row = Assignment(
        company_id=ticket.company_id,
        ticket_id=ticket.id,
        user_id=user_id,
        department_id=ticket.department_id,
        assigned_by_id=assigned_by,
        reason=reason,
        started_at=now,
    )
    db.add(row)
    return row


def take(ticket: Ticket, user_id: uuid.UUID) -> None:
    """Make `user_id` the ticket's assignee: OPEN, out of the flow, no deadline."""
    ticket.assignee_id = user_id
    ticket.status = TicketStatus.OPEN
    ticket.flow_state = FlowState.DONE
    ticket.timeout_at = None


async def publish_update(
    db: AsyncSession,
    ticket: Ticket,
    action: str,
    before: Hints | None = None,
    **extra: Any,
) -> None:
    """Publish `ticket.update` to the ticket's audience, and to its former one if it changed.

    A ticket that only gained an assignee in the same department needs one event (the
    department sees it, and so does the assignee); one that left a department or a
    person goes to both sides.
    """
    data = {**ticket_event(ticket), "action": action, **extra}
    now_dept, now_user = hints(ticket)
    await events.for_ticket(db, ticket.company_id, TICKET_UPDATE, data, ticket)
    if before is None:
        return
    old_dept, old_user = before
    if old_dept != now_dept or old_user not in (None, now_user):
        # The former audience learns that the ticket left it (scoped to who saw it).
        await events.publish(
            db,
            ticket.company_id,
            TICKET_UPDATE,
            data,
            department_id=old_dept,
            user_id=old_user,
            scoped=True,
        )


async def take_if_free(
    db: AsyncSession,
    ticket_id: uuid.UUID,
    user_id: uuid.UUID,
    now: datetime,
    *also: ColumnElement[bool],
) -> bool:
    """Make `user_id` the assignee of a still waiting ticket, in one conditional UPDATE.

    The ticket must still be PENDING with no assignee (and match `also`); it becomes
    OPEN, its flow DONE and its timer cleared. False means someone took it first: the
    row is untouched. Concurrent takers race on the row, never both win.
    """
    result = await db.execute(
        update(Ticket)
        .where(
            Ticket.id == ticket_id,
            Ticket.status == TicketStatus.PENDING,
            Ticket.assignee_id.is_(None),
            *also,
        )
        .values(
            assignee_id=user_id,
            status=TicketStatus.OPEN,
            flow_state=FlowState.DONE,
            timeout_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return cast(CursorResult[Any], result).rowcount == 1


async def texts_for(db: AsyncSession, ticket: Ticket) -> Texts:
    """Return the customer texts of a ticket: company locale, session overrides."""
    company = await db.get(Company, ticket.company_id)
    session = await db.get(WaSession, ticket.session_id) if ticket.session_id else None
    overrides = session_overrides(session.flow_config if session is not None else None)
    return Texts(company.locale if company else None, overrides)


async def tell_customer(
    db: AsyncSession, ticket: Ticket, text: str, *, author_id: uuid.UUID | None = None
) -> Message | None:
    """Queue a system text to the ticket's customer (None when the ticket has no chat)."""
    if ticket.chat_id is None:
        return None
    chat = await db.get(Chat, ticket.chat_id)
    if chat is None:
        return None
    queued = await outbox.enqueue(db, chat, text, ticket=ticket, author_id=author_id, kind="system")
    return queued.message


def _record(
    db: AsyncSession,
    actor: Actor,
    action: rules.Action,
    ticket: Ticket,
    before: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> None:
    audit.record(
        db,
        actor,
        f"ticket.{action.value}",
        "ticket",
        ticket.id,
        company_id=ticket.company_id,
        before=before,
        after=snapshot(ticket),
        extra=extra,
    )


# --------------------------------------------------------------------------- actions


async def accept(db: AsyncSession, actor: Actor, ticket_id: uuid.UUID) -> Ticket:
    """Take a waiting ticket (an agent from their departments' queues; SUPERVISOR+ any).

    Two takers racing for one ticket: the conditional UPDATE lets exactly one win.
    """
    p = actor.principal
    ticket = await _visible(db, p, ticket_id, lock=False)
    user_id = p.require_user()
    if p.is_global_admin:
        raise Forbidden("global admins do not serve tickets")
    refuse(
        rules.transition_refusal(
            rules.Action.ACCEPT, ticket.status, assignee_id=ticket.assignee_id, taker_id=user_id
        )
    )
    if ticket.status is TicketStatus.OPEN:
        return ticket  # already theirs: nothing changes
    me = await db.get(User, user_id)
    if me is None:
        raise NotFound("user not found")
    # Early answer without locks; checked again under the user's lock below.
    refuse(rules.capacity_refusal(await open_count(db, user_id), me.max_concurrent_tickets))
    before, was = snapshot(ticket), hints(ticket)
    now = utcnow()
    if not await take_if_free(db, ticket.id, user_id, now):
        raise Conflict("someone else took this ticket first", code=ErrorCode.TICKET_TAKEN)
    await db.refresh(ticket)
    locked = await lock_user(db, user_id)
    assert locked is not None
    await check_capacity(db, locked, ticket.id)
    await end_assignments(db, ticket.id, now)
    start_assignment(db, ticket, user_id, rules.REASON_ACCEPT, now, assigned_by=user_id)
    await db.flush()
    _record(db, actor, rules.Action.ACCEPT, ticket, before)
    await publish_update(db, ticket, rules.Action.ACCEPT, was)
    return ticket


async def assign(
    db: AsyncSession, actor: Actor, ticket_id: uuid.UUID, body: TicketAssign
) -> Ticket:
    """Give a ticket to an active member of its company (SUPERVISOR+); `force` skips capacity."""
    p = actor.principal
    ticket = await _visible(db, p, ticket_id, lock=True)
    p.require(Role.SUPERVISOR)
    refuse(rules.transition_refusal(rules.Action.ASSIGN, ticket.status))
    user = await _member(db, ticket.company_id, body.user_id)
    if ticket.status is TicketStatus.OPEN and ticket.assignee_id == user.id:
        return ticket  # already theirs: nothing changes
    locked = await lock_user(db, user.id)
    assert locked is not None
    if not body.force:
        await check_capacity(db, locked, ticket.id)
    before, was = snapshot(ticket), hints(ticket)
    now = utcnow()
    await end_assignments(db, ticket.id, now)
    take(ticket, user.id)
    start_assignment(db, ticket, user.id, rules.REASON_ASSIGN, now, assigned_by=p.user_id)
    await db.flush()
    _record(db, actor, rules.Action.ASSIGN, ticket, before, {"force": body.force})
    await publish_update(db, ticket, rules.Action.ASSIGN, was)
    return ticket


async def transfer(
    db: AsyncSession, actor: Actor, ticket_id: uuid.UUID, body: TicketTransfer
) -> Ticket:
    """Move a ticket to another department's queue and/or person (its assignee or SUPERVISOR+).

    To a department only, it waits there (PENDING, with that department's response
    deadline); with a user, it is OPEN with them. Both sides get a `ticket.update`; the
    customer is told unless `notify_customer` is false.
    """
    p = actor.principal
    ticket = await _visible(db, p, ticket_id, lock=True)
    _holder_or(p, ticket, Role.SUPERVISOR)
    if body.force:
        p.require(Role.SUPERVISOR)
    refuse(rules.transition_refusal(rules.Action.TRANSFER, ticket.status))
    if body.department_id is None and body.user_id is None:
        raise ValidationFailed("give department_id, user_id or both")
    department = (
        await _department(db, ticket.company_id, body.department_id)
        if body.department_id is not None
        else None
    )
    user = await _member(db, ticket.company_id, body.user_id) if body.user_id else None
    plan = rules.plan_transfer(
        department_id=ticket.department_id,
        assignee_id=ticket.assignee_id,
        status=ticket.status,
        to_department_id=body.department_id,
        to_user_id=body.user_id,
    )
    if isinstance(plan, rules.Refusal):
        raise Conflict(plan.message, code=plan.code)
    if user is not None:
        locked = await lock_user(db, user.id)
        assert locked is not None
        if not body.force:
            await check_capacity(db, locked, ticket.id)
    before, was = snapshot(ticket), hints(ticket)
    now = utcnow()
    await end_assignments(db, ticket.id, now)
    ticket.department_id = plan.department_id
    ticket.assignee_id = plan.assignee_id
    ticket.status = plan.status
    ticket.flow_state = plan.flow_state
    if plan.department_id is not None and department is None:
        department = await db.get(Department, plan.department_id)
    if user is not None:
        ticket.timeout_at = None
        start_assignment(db, ticket, user.id, rules.REASON_TRANSFER, now, assigned_by=p.user_id)
    else:
        ticket.timeout_at = deadline(department, now)
    told: Message | None = None
    if body.notify_customer:
        text = body.message
        if text is None:
            texts = await texts_for(db, ticket)
            where = department.name if department is not None else await _company_name(db, ticket)
            text = (
                texts.render("transferred_agent", agent=user.name, department=where)
                if user is not None
                else texts.render("transferred", department=where)
            )
        told = await tell_customer(
            db, ticket, text, author_id=p.user_id if body.message is not None else None
        )
    await db.flush()
    _record(
        db,
        actor,
        rules.Action.TRANSFER,
        ticket,
        before,
        {"notified": told is not None, "message_id": told.id if told else None},
    )
    await publish_update(db, ticket, rules.Action.TRANSFER, was)
    return ticket


async def _company_name(db: AsyncSession, ticket: Ticket) -> str:
    company = await db.get(Company, ticket.company_id)
    return company.name if company is not None else ""


async def close(db: AsyncSession, actor: Actor, ticket_id: uuid.UUID, body: TicketClose) -> Ticket:
    """Close a ticket (its assignee or SUPERVISOR+), with a category and a farewell text."""
    p = actor.principal
    ticket = await _visible(db, p, ticket_id, lock=True)
    _holder_or(p, ticket, Role.SUPERVISOR)
    refuse(rules.transition_refusal(rules.Action.CLOSE, ticket.status))
    if body.category_id is not None:
        category = await referenced(
            db, Category, body.category_id, ticket.company_id, field="category_id", what="category"
        )
        if not category.active:
            raise ValidationFailed("category_id: no such active category in this company")
    before, was = snapshot(ticket), hints(ticket)
    now = utcnow()
    told: Message | None = None
    if body.farewell:
        text = body.message or (await texts_for(db, ticket)).render("closed")
        told = await tell_customer(
            db, ticket, text, author_id=p.user_id if body.message is not None else None
        )
    ticket.status = TicketStatus.CLOSED
    ticket.closed_at = now
    ticket.closed_by_id = p.user_id
    ticket.timeout_at = None
    if body.category_id is not None:
        ticket.category_id = body.category_id
    # The assignee stays on the row: the last person who served it (reopen goes back there).
    await end_assignments(db, ticket.id, now)
    await db.flush()
    _record(
        db,
        actor,
        rules.Action.CLOSE,
        ticket,
        before,
        {"farewell": told is not None, "message_id": told.id if told else None},
    )
    await publish_update(db, ticket, rules.Action.CLOSE, was)
    return ticket


async def reopen(db: AsyncSession, actor: Actor, ticket_id: uuid.UUID) -> Ticket:
    """Reopen a closed ticket (SUPERVISOR+ or its last assignee).

    It goes back to its last assignee when they are still active and have room, else
    it waits in its department's queue. Refused (409) while the client has another
    ticket open on the same session.
    """
    p = actor.principal
    ticket = await _visible(db, p, ticket_id, lock=True)
    _holder_or(p, ticket, Role.SUPERVISOR)
    refuse(rules.transition_refusal(rules.Action.REOPEN, ticket.status))
    client = await db.get(Client, ticket.client_id)
    if client is not None and client.erased_at is not None:
        raise Conflict(
            "this client's data was erased (LGPD): the ticket stays closed",
            code=ErrorCode.CLIENT_ERASED,
        )
    other = await db.scalar(
        select(Ticket.number).where(
            Ticket.client_id == ticket.client_id,
            Ticket.session_id == ticket.session_id,
            Ticket.status != TicketStatus.CLOSED,
            Ticket.id != ticket.id,
        )
    )
    if other is not None:
        raise Conflict(
            f"the client has ticket #{other} open on this session",
            code=ErrorCode.OPEN_TICKET_EXISTS,
        )
    before, was = snapshot(ticket), hints(ticket)
    await restore(db, ticket, utcnow(), by=p.user_id)
    try:
        await db.flush()
    except IntegrityError:  # a message opened a new ticket meanwhile (partial unique index)
        raise Conflict(
            "the client has another ticket open on this session",
            code=ErrorCode.OPEN_TICKET_EXISTS,
        ) from None
    _record(db, actor, rules.Action.REOPEN, ticket, before)
    await publish_update(db, ticket, rules.Action.REOPEN, was, reopened=True)
    return ticket


async def restore(
    db: AsyncSession, ticket: Ticket, now: datetime, *, by: uuid.UUID | None = None
) -> None:
    """Put a closed ticket back in service (no audit, no event: the caller's part).

    It goes back to its last assignee when they are still an active member with room
    (a "reopen" assignment opens), else it waits in its department's queue with that
    department's response deadline. The caller makes sure the client has no other
    open ticket on the session (the partial unique index says so at flush).
    """
    last = ticket.assignee_id
    room = False
    if last is not None:
        user = await lock_user(db, last)
        room = (
            user is not None
            and user.active
            and user.company_id == ticket.company_id
            and rules.has_capacity(
                await open_count(db, last, excluding=ticket.id), user.max_concurrent_tickets
            )
        )
    place = rules.reopen_placement(ticket.department_id, last, room)
    ticket.status = place.status
    ticket.assignee_id = place.assignee_id
    ticket.flow_state = place.flow_state
    ticket.closed_at = None
    ticket.closed_by_id = None
    ticket.reopen_count += 1
    await end_assignments(db, ticket.id, now)
    if place.assignee_id is not None:
        ticket.timeout_at = None
        start_assignment(db, ticket, place.assignee_id, rules.REASON_REOPEN, now, assigned_by=by)
    else:
        dept = await db.get(Department, ticket.department_id) if ticket.department_id else None
        ticket.timeout_at = deadline(dept, now)


async def mark_read(db: AsyncSession, actor: Actor, ticket_id: uuid.UUID) -> Ticket:
    """Mark a ticket and its chat as read (anyone who sees the ticket)."""
    p = actor.principal
    ticket = await _visible(db, p, ticket_id, lock=False)
    chat = await db.get(Chat, ticket.chat_id) if ticket.chat_id else None
    if not ticket.unread_count and not (chat is not None and chat.unread_count):
        return ticket
    if chat is not None:
        chat.unread_count = 0
    ticket.unread_count = 0
    await db.flush()
    await publish_update(db, ticket, rules.Action.READ)
    return ticket


async def ticket_tags(db: AsyncSession, ticket_id: uuid.UUID) -> list[uuid.UUID]:
    """Return a ticket's tag ids, in the order they were put on."""
    return list(
        (
            await db.scalars(
                select(TicketTag.tag_id)
                .where(TicketTag.ticket_id == ticket_id)
                .order_by(TicketTag.created_at, TicketTag.tag_id)
            )
        ).all()
    )


async def update_ticket(
    db: AsyncSession, actor: Actor, ticket_id: uuid.UUID, body: TicketUpdate
) -> Ticket:
    """Change a ticket's priority (SUPERVISOR+) and/or replace its tags (anyone who sees it)."""
    p = actor.principal
    ticket = await _visible(db, p, ticket_id, lock=True)
    fields = changes.patch_fields(body, not_null=("priority", "tag_ids"))
    if "priority" in fields:
        p.require(Role.SUPERVISOR)
    current = await ticket_tags(db, ticket.id)
    wanted = current
    if body.tag_ids is not None:
        wanted = await tags.of_company(db, ticket.company_id, body.tag_ids)
    before = {**snapshot(ticket), "tag_ids": sorted(str(t) for t in current)}
    changed = False
    if body.priority is not None and body.priority != ticket.priority:
        ticket.priority = body.priority
        changed = True
    gone = [t for t in current if t not in wanted]
    new = [t for t in wanted if t not in current]
    if gone:
        await db.execute(
            delete(TicketTag).where(TicketTag.ticket_id == ticket.id, TicketTag.tag_id.in_(gone))
        )
    for tag_id in new:
        db.add(TicketTag(ticket_id=ticket.id, tag_id=tag_id, company_id=ticket.company_id))
    if not (changed or gone or new):
        return ticket
    ticket.updated_at = utcnow()
    await db.flush()
    result = [t for t in current if t in wanted] + new
    audit.record(
        db,
        actor,
        "ticket.update",
        "ticket",
        ticket.id,
        company_id=ticket.company_id,
        before=before,
        after={**snapshot(ticket), "tag_ids": sorted(str(t) for t in result)},
    )
    await publish_update(db, ticket, rules.Action.UPDATE, tag_ids=result)
    return ticket
