"""Ticket rules as pure functions: transitions, capacity, auto-assignment and escalation.

No I/O and no clock: callers load what the rules need, pass `now` in, and carry out the
decision (conditional UPDATEs, assignment history, events) themselves.

    PENDING ─ accept / assign / transfer to a user ─► OPEN
    OPEN ──── transfer to a department only ────────► PENDING (queue of that department)
    PENDING, OPEN ─ close ─► CLOSED ─ reopen ─► OPEN (last assignee has room) or PENDING
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from shared.enums import AutoAssignMode, FlowState, TicketStatus
from shared.errors import ErrorCode


class Action(StrEnum):
    """What can be done to a ticket (also the suffix of its audit action)."""

    ACCEPT = "accept"
    ASSIGN = "assign"
    TRANSFER = "transfer"
    CLOSE = "close"
    REOPEN = "reopen"
    UPDATE = "update"
    READ = "read"


# Assignment-history reasons.
REASON_ACCEPT = "accept"
REASON_ASSIGN = "assign"
REASON_TRANSFER = "transfer"
REASON_REOPEN = "reopen"
REASON_AUTO = "auto"
REASON_REASSIGN = "reassign"
REASON_ESCALATE = "escalate"
AUTOMATIC_REASONS = frozenset({REASON_AUTO, REASON_REASSIGN})

ALLOWED_FROM: Mapping[Action, frozenset[TicketStatus]] = {
    Action.ACCEPT: frozenset({TicketStatus.PENDING}),
    Action.ASSIGN: frozenset({TicketStatus.PENDING, TicketStatus.OPEN}),
    Action.TRANSFER: frozenset({TicketStatus.PENDING, TicketStatus.OPEN}),
    Action.CLOSE: frozenset({TicketStatus.PENDING, TicketStatus.OPEN}),
    Action.REOPEN: frozenset({TicketStatus.CLOSED}),
    Action.UPDATE: frozenset(TicketStatus),
    Action.READ: frozenset(TicketStatus),
}


@dataclass(frozen=True)
class Refusal:
    """Why a change is not allowed: a stable error code and a human message."""

    code: ErrorCode
    message: str


def transition_refusal(
    action: Action,
    status: TicketStatus,
    *,
    assignee_id: uuid.UUID | None = None,
    taker_id: uuid.UUID | None = None,
) -> Refusal | None:
    """Return why `action` cannot be done on a ticket in `status` (None: it can).

    `taker_id` is who would become the assignee: accepting a ticket one already holds
    is allowed (it changes nothing), accepting someone else's is refused.
    """
    if action is Action.ACCEPT and status is TicketStatus.OPEN:
        if assignee_id is not None and assignee_id == taker_id:
            return None
        return Refusal(ErrorCode.TICKET_TAKEN, "the ticket is already being served by someone else")
    if status in ALLOWED_FROM[action]:
        return None
    if status is TicketStatus.CLOSED:
        return Refusal(ErrorCode.TICKET_CLOSED, f"cannot {action.value} a closed ticket")
    if action is Action.REOPEN:
        return Refusal(ErrorCode.TICKET_NOT_CLOSED, "only a closed ticket can be reopened")
    return Refusal(ErrorCode.INVALID_TRANSITION, f"cannot {action.value} a {status.name} ticket")


def has_capacity(open_tickets: int, max_tickets: int) -> bool:
    """Tell whether someone holding `open_tickets` may take one more."""
    return open_tickets < max_tickets


def capacity_refusal(open_tickets: int, max_tickets: int) -> Refusal | None:
    """Return the refusal for a taker already at capacity (None: there is room)."""
    if has_capacity(open_tickets, max_tickets):
        return None
    return Refusal(
        ErrorCode.AT_CAPACITY,
        f"already serving {open_tickets} open tickets (the limit is {max_tickets})",
    )


# --------------------------------------------------------------------------- transfer


@dataclass(frozen=True)
class Placement:
    """Where a ticket stands after a move: queue, holder, status and flow state."""

    department_id: uuid.UUID | None
    assignee_id: uuid.UUID | None
    status: TicketStatus
    flow_state: FlowState


def plan_transfer(
    *,
    department_id: uuid.UUID | None,
    assignee_id: uuid.UUID | None,
    status: TicketStatus,
    to_department_id: uuid.UUID | None,
    to_user_id: uuid.UUID | None,
) -> Placement | Refusal:
    """Work out a transfer: to a user it is OPEN with them; to a department only, PENDING.

    The department stays when only a user is named. A transfer that changes nothing
    (same queue, same holder) is refused.
    """
    new_department = to_department_id if to_department_id is not None else department_id
    if to_user_id is not None:
        target = Placement(new_department, to_user_id, TicketStatus.OPEN, FlowState.DONE)
    else:
        target = Placement(new_department, None, TicketStatus.PENDING, FlowState.ROUTED)
    if (target.department_id, target.assignee_id, target.status) == (
        department_id,
        assignee_id,
        status,
    ):
        return Refusal(ErrorCode.TRANSFER_NOOP, "the ticket is already there")
    return target


def reopen_placement(
    department_id: uuid.UUID | None, last_assignee_id: uuid.UUID | None, assignee_has_room: bool
) -> Placement:
    """Return where a reopened ticket goes: its last assignee if they can take it, else queue."""
    if last_assignee_id is not None and assignee_has_room:
        return Placement(department_id, last_assignee_id, TicketStatus.OPEN, FlowState.DONE)
    return Placement(department_id, None, TicketStatus.PENDING, FlowState.ROUTED)


# --------------------------------------------------------------------------- auto-assignment


@dataclass(frozen=True)
class Candidate:
    """An agent as auto-assignment sees them."""

    user_id: uuid.UUID
    open_tickets: int
    max_tickets: int
    last_assigned_at: datetime | None = None  # None: never assigned anything
    online: bool = True
    active: bool = True

    @property
    def eligible(self) -> bool:
        """Tell whether this agent may receive a ticket now."""
        return self.active and self.online and has_capacity(self.open_tickets, self.max_tickets)


def _recency(c: Candidate) -> tuple[int, datetime | None]:
    # Never assigned sorts first; then the longest since the last assignment.
    return (0, None) if c.last_assigned_at is None else (1, c.last_assigned_at)


def pick_agent(
    mode: AutoAssignMode,
    candidates: Iterable[Candidate],
    *,
    exclude: Collection[uuid.UUID] = (),
) -> uuid.UUID | None:
    """Choose who gets the next ticket (None: nobody is eligible, or the mode is OFF).

    ROUND_ROBIN: the eligible agent assigned least recently. LEAST_LOADED: the one with
    the fewest open tickets, ties broken by recency. Ties end on the user id, so the
    choice is deterministic.
    """
    if mode is AutoAssignMode.OFF:
        return None
    pool = [c for c in candidates if c.eligible and c.user_id not in exclude]
    if not pool:
        return None

    def key(c: Candidate) -> tuple[int, int, float, str]:
        seen, when = _recency(c)
        stamp = when.timestamp() if when is not None else 0.0
        load = c.open_tickets if mode is AutoAssignMode.LEAST_LOADED else 0
        return (load, seen, stamp, str(c.user_id))

    return min(pool, key=key).user_id


@dataclass(frozen=True)
class Pick:
    """One auto-assignment decision: `ticket_id` goes to `user_id`, stamped `at`."""

    ticket_id: uuid.UUID
    user_id: uuid.UUID
    at: datetime


def plan_auto_assign(
    mode: AutoAssignMode,
    ticket_ids: Sequence[uuid.UUID],
    candidates: Sequence[Candidate],
    now: datetime,
) -> list[Pick]:
    """Hand `ticket_ids` (in serving order) to agents, one pick after the other.

    Each pick counts for the next (the agent's load grows, they become the most recently
    assigned), so one pass spreads a backlog as the mode says. The k-th pick is stamped
    `now` + k microseconds: stored as the assignment's start, it keeps the rotation's
    order for the next pass.
    """
    pool = {c.user_id: c for c in candidates}
    plan: list[Pick] = []
    for k, ticket_id in enumerate(ticket_ids):
        chosen = pick_agent(mode, pool.values())
        if chosen is None:
            break
        at = now + timedelta(microseconds=k)
        plan.append(Pick(ticket_id, chosen, at))
        c = pool[chosen]
        pool[chosen] = replace(c, open_tickets=c.open_tickets + 1, last_assigned_at=at)
    return plan


class ReassignReason(StrEnum):
    """Why an automatically assigned ticket is taken back from its assignee."""

    OFFLINE = "offline"
    SILENT = "silent"


def reassign_reason(
    *,
    assignee_online: bool,
    assignee_active: bool,
    assigned_at: datetime,
    answered: bool,
    now: datetime,
    silence_limit: timedelta | None,
) -> ReassignReason | None:
    """Tell whether an auto-assigned ticket must move on, and why (None: it stays).

    It moves when the assignee went offline (or was disabled), or has not sent the
    customer a message for longer than `silence_limit` since the assignment.
    """
    if not assignee_active or not assignee_online:
        return ReassignReason.OFFLINE
    if silence_limit is not None and not answered and now - assigned_at > silence_limit:
        return ReassignReason.SILENT
    return None


# --------------------------------------------------------------------------- timeouts


# Key of a ticket's flow data listing the departments it escalated from.
ESCALATED_KEY = "escalated_from"


@dataclass(frozen=True)
class Escalation:
    """What a response timeout does: `move_to` the fallback queue, or stay (None)."""

    from_department_id: uuid.UUID
    move_to: uuid.UUID | None


def escalation(
    department_id: uuid.UUID,
    fallback_id: uuid.UUID | None,
    *,
    fallback_active: bool,
    escalated_from: Collection[uuid.UUID],
) -> Escalation | None:
    """Decide a timed-out ticket's escalation (None: this department escalated it already).

    A ticket escalates once per department; it never moves back to a department it
    already escalated from, so fallback chains cannot loop.
    """
    if department_id in escalated_from:
        return None
    move_to = None
    if (
        fallback_id is not None
        and fallback_active
        and fallback_id != department_id
        and fallback_id not in escalated_from
    ):
        move_to = fallback_id
    return Escalation(department_id, move_to)


def escalated_departments(flow_data: Mapping[str, object]) -> frozenset[uuid.UUID]:
    """Read the departments a ticket escalated from, as kept in its flow data."""
    raw = flow_data.get(ESCALATED_KEY)
    out: set[uuid.UUID] = set()
    if isinstance(raw, list):
        for item in raw:
            try:
                out.add(uuid.UUID(str(item)))
            except ValueError:
                continue
    return frozenset(out)
