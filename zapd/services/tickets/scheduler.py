"""The ticket scheduler: response timeouts and auto-assignment, once a tick (~1 s).

Each tick, in this order and in short transactions (one per ticket changed):

1. Response timeouts: a PENDING ticket past its `timeout_at` escalates — `escalated_at`
   is set, `ticket.escalated` goes to its department and, when the department has an
   active fallback, the ticket moves there (with the fallback's own deadline) and the
   customer is told. A ticket escalates once per department.
2. Reassignment: an automatically assigned ticket whose assignee went offline, or has
   not answered within `assignee_silence_seconds`, goes to another eligible agent —
   or, if the assignee is offline and nobody else can take it, back to the queue.
3. Auto-assignment: PENDING, routed tickets of ROUND_ROBIN / LEAST_LOADED departments
   go to ONLINE active agents of the department with free capacity.

Decisions come from `zapd.domain.tickets`; every write re-checks its condition in its
own transaction (conditional UPDATEs), so racing with agents' clicks is harmless.
`tick(now)` is public: tests call it with the clock they want.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import AutoAssignMode, FlowState, MessageDirection, Presence, TicketStatus
from shared.protocol.tickets import TICKET_ESCALATED
from zapd.db.models import Assignment, Company, Department, Message, Ticket, User, UserDepartment
from zapd.db.types import utcnow
from zapd.domain import tickets as rules
from zapd.kernel import audit, events
from zapd.services.tickets import lifecycle

if TYPE_CHECKING:
    from zapd.kernel.context import Kernel

log = logging.getLogger("zapd.scheduler")

BATCH = 200  # tickets looked at per step and tick; the rest wait for the next tick
_WAITING_FLOW = (FlowState.AWAITING_MENU_CHOICE, FlowState.AWAITING_ROUTING_CONFIRMATION)


@dataclass
class TickReport:
    """What one tick did."""

    escalated: int = 0  # timed-out tickets escalated (moved or not)
    moved: int = 0  # of those, moved to a fallback department
    assigned: int = 0  # PENDING tickets handed to an agent
    reassigned: int = 0  # auto-assigned tickets handed to another agent
    returned: int = 0  # auto-assigned tickets put back in the queue

    @property
    def changed(self) -> int:
        """Count the tickets this tick changed."""
        return self.escalated + self.assigned + self.reassigned + self.returned


class Scheduler:
    """A Worker: runs `tick` every `scheduler_interval` seconds until stopped."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.interval = kernel.settings.scheduler_interval
        silence = kernel.settings.assignee_silence_seconds
        self.silence_limit = timedelta(seconds=silence) if silence > 0 else None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._lock = asyncio.Lock()  # one tick at a time (the loop's and a test's)
        self.ticks = 0

    async def start(self) -> None:
        """Start ticking."""
        if self._task is not None and not self._task.done():
            return
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="zapd-scheduler")

    async def stop(self) -> None:
        """Stop ticking; a tick in progress finishes first (each step is short)."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(task, timeout=10)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.tick()
            except Exception as exc:
                self.kernel.db_health.report(exc, log, "scheduler tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval)

    async def tick(self, now: datetime | None = None) -> TickReport:
        """Run one pass of timeouts, reassignment and auto-assignment as of `now`."""
        now = now or utcnow()
        report = TickReport()
        async with self._lock:
            await self._timeouts(now, report)
            await self._reassign(now, report)
            await self._auto_assign(now, report)
            self.ticks += 1
        if report.changed:
            log.info(
                "scheduler: %d escalated (%d moved), %d assigned, %d reassigned, %d returned",
                report.escalated,
                report.moved,
                report.assigned,
                report.reassigned,
                report.returned,
            )
        return report

    # ------------------------------------------------------------------ timeouts

    async def _timeouts(self, now: datetime, report: TickReport) -> None:
        async with self.kernel.read() as db:
            due = list(
                (
                    await db.scalars(
                        select(Ticket.id)
                        .where(
                            Ticket.status == TicketStatus.PENDING,
                            Ticket.timeout_at.is_not(None),
                            Ticket.timeout_at <= now,
                        )
                        .order_by(Ticket.timeout_at, Ticket.id)
                        .limit(BATCH)
                    )
                ).all()
            )
        for ticket_id in due:
            try:
                async with self.kernel.tx() as db:
                    moved = await self._escalate(db, ticket_id, now)
                if moved is not None:
                    report.escalated += 1
                    report.moved += int(moved)
            except Exception as exc:
                self.kernel.db_health.report(exc, log, "escalating ticket %s failed", ticket_id)

    async def _escalate(self, db: AsyncSession, ticket_id: uuid.UUID, now: datetime) -> bool | None:
        """Escalate one timed-out ticket; return whether it moved (None: nothing done)."""
        ticket = await db.get(Ticket, ticket_id)
        if ticket is None:
            return None
        ticket = await lifecycle.lock_ticket(db, ticket)
        if (
            ticket.status is not TicketStatus.PENDING
            or ticket.assignee_id is not None
            or ticket.timeout_at is None
            or ticket.timeout_at > now
        ):
            return None  # taken or moved meanwhile
        if ticket.department_id is None:
            ticket.timeout_at = None
            return None
        source = await db.get(Department, ticket.department_id)
        fallback = (
            await db.get(Department, source.fallback_department_id)
            if source is not None and source.fallback_department_id is not None
            else None
        )
        done = rules.escalated_departments(ticket.flow_data or {})
        decision = rules.escalation(
            ticket.department_id,
            fallback.id if fallback is not None else None,
            fallback_active=fallback is not None and fallback.active,
            escalated_from=done,
        )
        if decision is None:
            ticket.timeout_at = None  # escalated from here before: once is enough
            return None
        before, was = lifecycle.snapshot(ticket), lifecycle.hints(ticket)
        ticket.escalated_at = now
        ticket.flow_data = {
            **(ticket.flow_data or {}),
            rules.ESCALATED_KEY: sorted(str(d) for d in done | {decision.from_department_id}),
        }
        payload: dict[str, Any] = {
            "id": ticket.id,
            "number": ticket.number,
            "department_id": decision.from_department_id,
            "to_department_id": decision.move_to,
            "timeout_at": ticket.timeout_at,
            "at": now,
        }
        ticket.timeout_at = None
        await events.publish(
            db,
            ticket.company_id,
            TICKET_ESCALATED,
            payload,
            department_id=decision.from_department_id,
            user_id=ticket.assignee_id,
            scoped=True,
        )
        if decision.move_to is not None and fallback is not None:
            ticket.department_id = fallback.id
            ticket.flow_state = FlowState.ROUTED
            ticket.timeout_at = lifecycle.deadline(fallback, now)
            texts = await lifecycle.texts_for(db, ticket)
            await lifecycle.tell_customer(
                db, ticket, texts.render("escalated", department=fallback.name)
            )
        await _audit(db, ticket, "ticket.escalate", before)
        await lifecycle.publish_update(db, ticket, "escalate", was)
        return decision.move_to is not None

    # ------------------------------------------------------------------ auto-assignment

    async def _departments(self) -> list[Department]:
        async with self.kernel.read() as db:
            return list(
                (
                    await db.scalars(
                        select(Department)
                        .join(Company, Company.id == Department.company_id)
                        .where(
                            Department.auto_assign != AutoAssignMode.OFF,
                            Department.active.is_(True),
                            Company.active.is_(True),
                        )
                        .order_by(Department.id)
                    )
                ).all()
            )

    async def _candidates(self, db: AsyncSession, department: Department) -> list[rules.Candidate]:
        """Load the department's agents as auto-assignment sees them (online or not)."""
        users = list(
            (
                await db.scalars(
                    select(User)
                    .join(UserDepartment, UserDepartment.user_id == User.id)
                    .where(
                        UserDepartment.department_id == department.id,
                        User.company_id == department.company_id,
                        User.role.is_not(None),
                    )
                )
            ).all()
        )
        if not users:
            return []
        ids = [u.id for u in users]
        loads = dict(
            (
                await db.execute(
                    select(Ticket.assignee_id, func.count(Ticket.id))
                    .where(Ticket.assignee_id.in_(ids), Ticket.status == TicketStatus.OPEN)
                    .group_by(Ticket.assignee_id)
                )
            ).all()
        )
        last = dict(
            (
                await db.execute(
                    select(Assignment.user_id, func.max(Assignment.started_at))
                    .where(Assignment.user_id.in_(ids))
                    .group_by(Assignment.user_id)
                )
            ).all()
        )
        return [
            rules.Candidate(
                user_id=u.id,
                open_tickets=int(loads.get(u.id, 0)),
                max_tickets=u.max_concurrent_tickets,
                last_assigned_at=last.get(u.id),
                online=u.presence is Presence.ONLINE,
                active=u.active,
            )
            for u in users
        ]

    async def _auto_assign(self, now: datetime, report: TickReport) -> None:
        for department in await self._departments():
            async with self.kernel.read() as db:
                waiting = list(
                    (
                        await db.scalars(
                            select(Ticket.id)
                            .where(
                                Ticket.company_id == department.company_id,
                                Ticket.department_id == department.id,
                                Ticket.status == TicketStatus.PENDING,
                                Ticket.assignee_id.is_(None),
                                Ticket.flow_state.not_in(_WAITING_FLOW),
                            )
                            .order_by(Ticket.priority.desc(), Ticket.id)
                            .limit(BATCH)
                        )
                    ).all()
                )
                if not waiting:
                    continue
                candidates = await self._candidates(db, department)
            plan = rules.plan_auto_assign(department.auto_assign, waiting, candidates, now)
            for pick in plan:
                try:
                    async with self.kernel.tx() as db:
                        ok = await self._give(db, pick.ticket_id, pick.user_id, pick.at)
                    report.assigned += int(ok)
                except _Skip:
                    continue
                except Exception as exc:
                    self.kernel.db_health.report(
                        exc, log, "auto-assigning ticket %s failed", pick.ticket_id
                    )

    async def _give(
        self, db: AsyncSession, ticket_id: uuid.UUID, user_id: uuid.UUID, now: datetime
    ) -> bool:
        """Hand a waiting ticket to an agent if it still waits and they still have room."""
        if not await lifecycle.take_if_free(
            db, ticket_id, user_id, now, Ticket.flow_state.not_in(_WAITING_FLOW)
        ):
            return False  # taken meanwhile
        ticket = await db.get(Ticket, ticket_id, populate_existing=True)
        assert ticket is not None
        user = await lifecycle.lock_user(db, user_id)
        if (
            user is None
            or not user.active
            or user.presence is not Presence.ONLINE
            or not rules.has_capacity(
                await lifecycle.open_count(db, user_id, excluding=ticket_id),
                user.max_concurrent_tickets,
            )
        ):
            raise _Skip  # rolls the UPDATE back
        before = {"status": int(TicketStatus.PENDING), "assignee_id": None}
        await lifecycle.end_assignments(db, ticket_id, now)
        lifecycle.start_assignment(db, ticket, user_id, rules.REASON_AUTO, now)
        await _audit(
            db,
            ticket,
            "ticket.assign",
            before,
            after={"status": int(ticket.status), "assignee_id": str(user_id)},
            extra={"reason": rules.REASON_AUTO},
        )
        await lifecycle.publish_update(
            db, ticket, rules.Action.ASSIGN, (ticket.department_id, None), auto=True
        )
        return True

    # ------------------------------------------------------------------ reassignment

    async def _reassign(self, now: datetime, report: TickReport) -> None:
        departments = {d.id: d for d in await self._departments()}
        if not departments:
            return
        gone_or_silent = [User.presence != Presence.ONLINE, User.active.is_(False)]
        if self.silence_limit is not None:
            gone_or_silent.append(Assignment.started_at < now - self.silence_limit)
        async with self.kernel.read() as db:
            rows = (
                await db.execute(
                    select(Ticket.id, Ticket.department_id, Assignment.started_at)
                    .join(
                        Assignment,
                        and_(
                            Assignment.ticket_id == Ticket.id,
                            Assignment.user_id == Ticket.assignee_id,
                            Assignment.ended_at.is_(None),
                        ),
                    )
                    .join(User, User.id == Ticket.assignee_id)
                    .where(
                        Ticket.status == TicketStatus.OPEN,
                        Ticket.department_id.in_(sorted(departments)),
                        Assignment.reason.in_(sorted(rules.AUTOMATIC_REASONS)),
                        or_(*gone_or_silent),
                    )
                    .order_by(Assignment.started_at, Ticket.id)
                    .limit(BATCH)
                )
            ).all()
        for ticket_id, department_id, _started in rows:
            department = departments.get(department_id) if department_id else None
            if department is None:
                continue
            try:
                async with self.kernel.read() as db:
                    candidates = await self._candidates(db, department)
                async with self.kernel.tx() as db:
                    outcome = await self._move_on(db, ticket_id, department, candidates, now)
                if outcome == "reassigned":
                    report.reassigned += 1
                elif outcome == "returned":
                    report.returned += 1
            except _Skip:
                continue
            except Exception as exc:
                self.kernel.db_health.report(exc, log, "reassigning ticket %s failed", ticket_id)

    async def _move_on(
        self,
        db: AsyncSession,
        ticket_id: uuid.UUID,
        department: Department,
        candidates: Sequence[rules.Candidate],
        now: datetime,
    ) -> str | None:
        """Take an auto-assigned ticket from a gone or silent assignee, if it still needs it."""
        ticket = await db.get(Ticket, ticket_id)
        if ticket is None:
            return None
        ticket = await lifecycle.lock_ticket(db, ticket)
        holder_id = ticket.assignee_id
        if ticket.status is not TicketStatus.OPEN or holder_id is None:
            return None
        current = await db.scalar(
            select(Assignment)
            .where(
                Assignment.ticket_id == ticket.id,
                Assignment.user_id == holder_id,
                Assignment.ended_at.is_(None),
            )
            .order_by(Assignment.started_at.desc())
            .limit(1)
        )
        if current is None or current.reason not in rules.AUTOMATIC_REASONS:
            return None
        holder = await db.get(User, holder_id)
        answered = (
            await db.scalar(
                select(Message.id)
                .where(
                    Message.ticket_id == ticket.id,
                    Message.direction == MessageDirection.OUTBOUND,
                    Message.author_id == holder_id,
                    Message.is_note.is_(False),
                    Message.created_at >= current.started_at,
                )
                .limit(1)
            )
            is not None
        )
        why = rules.reassign_reason(
            assignee_online=holder is not None and holder.presence is Presence.ONLINE,
            assignee_active=holder is not None and holder.active,
            assigned_at=current.started_at,
            answered=answered,
            now=now,
            silence_limit=self.silence_limit,
        )
        if why is None:
            return None
        successor = rules.pick_agent(department.auto_assign, candidates, exclude={holder_id})
        if successor is None and why is rules.ReassignReason.SILENT:
            return None  # nobody else can take it: better a slow answer than none
        new_holder: User | None = None
        if successor is not None:
            new_holder = await lifecycle.lock_user(db, successor)
            if (
                new_holder is None
                or not new_holder.active
                or new_holder.presence is not Presence.ONLINE
                or not rules.has_capacity(
                    await lifecycle.open_count(db, successor, excluding=ticket.id),
                    new_holder.max_concurrent_tickets,
                )
            ):
                if why is rules.ReassignReason.SILENT:
                    return None
                new_holder = None
        before, was = lifecycle.snapshot(ticket), lifecycle.hints(ticket)
        await lifecycle.end_assignments(db, ticket.id, now)
        if new_holder is not None:
            lifecycle.take(ticket, new_holder.id)
            lifecycle.start_assignment(db, ticket, new_holder.id, rules.REASON_REASSIGN, now)
            outcome = "reassigned"
        else:
            ticket.assignee_id = None
            ticket.status = TicketStatus.PENDING
            ticket.flow_state = FlowState.ROUTED
            ticket.timeout_at = lifecycle.deadline(department, now)
            outcome = "returned"
        await _audit(
            db,
            ticket,
            "ticket.assign",
            before,
            extra={"reason": rules.REASON_REASSIGN, "why": why.value},
        )
        await lifecycle.publish_update(
            db, ticket, rules.Action.ASSIGN, was, auto=True, reassigned=why.value
        )
        return outcome


async def _audit(
    db: AsyncSession,
    ticket: Ticket,
    action: str,
    before: dict[str, Any],
    *,
    after: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Flush a scheduler change and audit it under the system actor (after: the snapshot)."""
    await db.flush()
    audit.record(
        db,
        lifecycle.system_actor(ticket.company_id),
        action,
        "ticket",
        ticket.id,
        company_id=ticket.company_id,
        before=before,
        after=lifecycle.snapshot(ticket) if after is None else after,
        extra=extra,
    )


class _Skip(Exception):
    """Roll back a step whose decision no longer holds (it is retried next tick)."""
