"""Service metrics for supervisors: what happened in a time range, and who waits now.

Who: ADMIN and SUPERVISOR of the company; a global admin names the company. Range:
[since, until), aware datetimes only, at most `MAX_RANGE_DAYS` long; `until` defaults
to now and `since` to seven days before `until`. An optional department narrows every
figure to that department's tickets (and their messages).

Definitions (every figure is exact, and the same on SQLite and PostgreSQL):
- tickets: tickets created in the range, counted by their status now and by department.
- response times: over the tickets created in the range; first response =
  first_response_at - created_at (tickets answered so far), resolution = closed_at -
  created_at (tickets CLOSED now). Mean, p50 and p90 in seconds, rounded to the
  millisecond; negative durations (clock skew) count as 0. The durations are fetched and
  the percentiles computed in Python with linear interpolation between closest ranks
  (`percentile`, identical to PostgreSQL's percentile_cont), so both backends agree.
- volume: messages (internal notes excluded) created in the range, inbound and
  outbound per calendar day of the company's time zone; the first and last days count
  only the part inside the range. Bucketing happens in SQL with a binary CASE over the
  UTC instants at which each local day starts (DST and half-hour zones included).
- agents: per person, OPEN and PENDING tickets assigned to them now, and tickets
  assigned to them that were closed in the range. Every agent of the company (of the
  department, when one is given) is listed, plus anyone else holding such tickets.
- queues: per department, PENDING tickets now and the longest wait (now - created_at
  of the oldest); tickets with no department yet (in the greeting menu) form their
  own line.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, case, false, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import MessageDirection, Role, TicketStatus
from shared.protocol.companies import DEFAULT_TIMEZONE
from shared.protocol.stats import (
    DEFAULT_RANGE_DAYS,
    MAX_RANGE_DAYS,
    AgentLoad,
    DayVolume,
    DepartmentCount,
    DurationStats,
    MetricsRange,
    MetricsSummary,
    QueueWait,
    ResponseTimes,
    StatusCount,
    TicketStats,
    VolumeStats,
)
from zapd.db.models import Company, Department, Message, Ticket, User, UserDepartment
from zapd.db.types import utcnow
from zapd.errors import NotFound, ValidationFailed
from zapd.kernel.principal import Principal

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Window:
    """The company, range and department a report is about."""

    company_id: uuid.UUID
    timezone: str
    since: datetime
    until: datetime
    now: datetime
    department_id: uuid.UUID | None = None

    @property
    def tz(self) -> ZoneInfo:
        """Return the company's time zone."""
        return ZoneInfo(self.timezone)

    def range(self) -> MetricsRange:
        """Describe the window on the wire."""
        return MetricsRange(
            since=self.since,
            until=self.until,
            as_of=self.now,
            timezone=self.timezone,
            department_id=self.department_id,
        )


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationFailed(f"{name} needs a time zone, e.g. 2024-05-01T00:00:00-03:00 or ...Z")
    try:
        value = value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValidationFailed(f"{name} must fall between 1970 and 2200") from None
    if not EARLIEST <= value < LATEST:
        raise ValidationFailed(f"{name} must fall between 1970 and 2200")
    return value


def _zone_name(stored: str | None) -> str:
    try:
        ZoneInfo(stored or "")
    except (ZoneInfoNotFoundError, ValueError):
        return DEFAULT_TIMEZONE
    return stored or DEFAULT_TIMEZONE


async def window(
    db: AsyncSession,
    p: Principal,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    department_id: uuid.UUID | None = None,
    company_id: uuid.UUID | None = None,
) -> Window:
    """Check who asks and what range; return the window (403, 404 or 422 otherwise)."""
    p.require(Role.SUPERVISOR)
    cid = p.company_for_write(company_id)
    company = await db.get(Company, cid)
    if company is None:
        raise NotFound("company not found")
    if department_id is not None:
        dep = await db.get(Department, department_id)
        if dep is None or dep.company_id != cid:
            raise NotFound("department not found")
    now = utcnow()
    start, end = _aware("since", since), _aware("until", until)
    end = end or (now if start is None or start < now else start + timedelta(DEFAULT_RANGE_DAYS))
    start = start or end - timedelta(days=DEFAULT_RANGE_DAYS)
    if start >= end:
        raise ValidationFailed("since must be before until")
    if end - start > timedelta(days=MAX_RANGE_DAYS):
        raise ValidationFailed(f"the range may span at most {MAX_RANGE_DAYS} days")
    return Window(cid, _zone_name(company.timezone), start, end, now, department_id)


# --------------------------------------------------------------------------- math


def percentile(ordered: Sequence[float], q: float) -> float:
    """Return the q-quantile (0..1) of sorted values, interpolating between closest ranks."""
    if not ordered:
        raise ValueError("no values")
    h = (len(ordered) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (h - lo) * (ordered[hi] - ordered[lo])


def duration_stats(seconds: Sequence[float]) -> DurationStats:
    """Return count, mean, p50 and p90 of durations in seconds (ms precision)."""
    if not seconds:
        return DurationStats(count=0)
    ordered = sorted(max(0.0, s) for s in seconds)
    return DurationStats(
        count=len(ordered),
        mean=round(math.fsum(ordered) / len(ordered), 3),
        p50=round(percentile(ordered, 0.5), 3),
        p90=round(percentile(ordered, 0.9), 3),
    )


# --------------------------------------------------------------------------- queries


def _tickets_in(w: Window) -> list[ColumnElement[bool]]:
    conditions = [Ticket.company_id == w.company_id]
    if w.department_id is not None:
        conditions.append(Ticket.department_id == w.department_id)
    return conditions


def _created_in(w: Window) -> list[ColumnElement[bool]]:
    return [*_tickets_in(w), Ticket.created_at >= w.since, Ticket.created_at < w.until]


async def _departments(db: AsyncSession, w: Window) -> list[Department]:
    stmt = select(Department).where(Department.company_id == w.company_id)
    if w.department_id is not None:
        stmt = stmt.where(Department.id == w.department_id)
    return list((await db.scalars(stmt.order_by(Department.menu_order, Department.name))).all())


async def tickets(db: AsyncSession, w: Window) -> TicketStats:
    """Count tickets created in the range, by status and by department."""
    rows = await db.execute(
        select(Ticket.status, Ticket.department_id, func.count())
        .where(*_created_in(w))
        .group_by(Ticket.status, Ticket.department_id)
    )
    by_status = dict.fromkeys(TicketStatus, 0)
    by_dep: dict[uuid.UUID | None, int] = {}
    for status, dep_id, count in rows:
        by_status[TicketStatus(status)] += int(count)
        by_dep[dep_id] = by_dep.get(dep_id, 0) + int(count)
    deps = await _departments(db, w)
    known = {d.id for d in deps}
    departments = [
        DepartmentCount(department_id=d.id, name=d.name, count=by_dep.get(d.id, 0)) for d in deps
    ]
    # Tickets of departments deleted since (department_id NULL) or still unrouted.
    orphans = sum(n for dep_id, n in by_dep.items() if dep_id not in known)
    if orphans:
        departments.append(DepartmentCount(department_id=None, name=None, count=orphans))
    return TicketStats(
        total=sum(by_status.values()),
        by_status=[StatusCount(status=s, count=n) for s, n in by_status.items()],
        by_department=departments,
    )


async def response_times(db: AsyncSession, w: Window) -> ResponseTimes:
    """Return first-response and resolution times of the tickets created in the range."""
    rows = await db.execute(
        select(Ticket.created_at, Ticket.first_response_at, Ticket.closed_at, Ticket.status).where(
            *_created_in(w)
        )
    )
    first: list[float] = []
    resolution: list[float] = []
    for created, responded, closed, status in rows:
        if responded is not None:
            first.append((responded - created).total_seconds())
        if closed is not None and status == TicketStatus.CLOSED:
            resolution.append((closed - created).total_seconds())
    return ResponseTimes(
        first_response=duration_stats(first), resolution=duration_stats(resolution)
    )


def day_edges(w: Window) -> tuple[list[date], list[datetime]]:
    """Return the local days the range touches and the UTC instants that bound them.

    Day i covers [edges[i], edges[i+1]): the range's start, each local midnight in
    between (the first instant of the day where midnight falls in a DST gap), the end.
    """
    tz = w.tz
    first = w.since.astimezone(tz).date()
    last = (w.until - timedelta(microseconds=1)).astimezone(tz).date()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    edges = [w.since]
    edges += [datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC) for d in days[1:]]
    edges.append(w.until)
    return days, edges


def _bucket(column: Any, edges: Sequence[datetime], lo: int, hi: int) -> Any:
    """Return a CASE giving the index i in [lo, hi) with edges[i] <= column < edges[i+1]."""
    if hi - lo == 1:
        return literal_column(str(lo))
    mid = (lo + hi) // 2
    return case(
        (column < edges[mid], _bucket(column, edges, lo, mid)),
        else_=_bucket(column, edges, mid, hi),
    )


async def volume(db: AsyncSession, w: Window) -> VolumeStats:
    """Count messages in and out per local day of the range (notes excluded)."""
    days, edges = day_edges(w)
    inner = select(
        _bucket(Message.created_at, edges, 0, len(days)).label("day"),
        Message.direction.label("direction"),
    ).where(
        Message.company_id == w.company_id,
        Message.created_at >= w.since,
        Message.created_at < w.until,
        Message.is_note.is_(False),
    )
    if w.department_id is not None:
        inner = inner.join(Ticket, Ticket.id == Message.ticket_id).where(
            Ticket.department_id == w.department_id
        )
    sub = inner.subquery()
    rows = await db.execute(
        select(sub.c.day, sub.c.direction, func.count()).group_by(sub.c.day, sub.c.direction)
    )
    inbound = [0] * len(days)
    outbound = [0] * len(days)
    for index, direction, count in rows:
        target = inbound if MessageDirection(direction) is MessageDirection.INBOUND else outbound
        target[int(index)] += int(count)
    return VolumeStats(
        inbound=sum(inbound),
        outbound=sum(outbound),
        days=[
            DayVolume(day=d, inbound=i, outbound=o)
            for d, i, o in zip(days, inbound, outbound, strict=True)
        ],
    )


async def agents(db: AsyncSession, w: Window) -> list[AgentLoad]:
    """Return each agent's open and pending tickets now and tickets closed in the range."""
    held: dict[uuid.UUID, dict[str, int]] = {}
    rows = await db.execute(
        select(Ticket.assignee_id, Ticket.status, func.count())
        .where(
            *_tickets_in(w),
            Ticket.assignee_id.is_not(None),
            Ticket.status.in_([TicketStatus.PENDING, TicketStatus.OPEN]),
        )
        .group_by(Ticket.assignee_id, Ticket.status)
    )
    for user_id, status, count in rows:
        if user_id is not None:
            key = "open" if TicketStatus(status) is TicketStatus.OPEN else "pending"
            held.setdefault(user_id, {})[key] = int(count)
    closed_rows = await db.execute(
        select(Ticket.assignee_id, func.count())
        .where(
            *_tickets_in(w),
            Ticket.assignee_id.is_not(None),
            Ticket.status == TicketStatus.CLOSED,
            Ticket.closed_at >= w.since,
            Ticket.closed_at < w.until,
        )
        .group_by(Ticket.assignee_id)
    )
    for closer_id, count in closed_rows:
        if closer_id is not None:
            held.setdefault(closer_id, {})["closed"] = int(count)
    agent_ids = select(User.id).where(
        User.company_id == w.company_id, User.role == Role.AGENT, User.active.is_(True)
    )
    if w.department_id is not None:
        agent_ids = agent_ids.join(UserDepartment, UserDepartment.user_id == User.id).where(
            UserDepartment.department_id == w.department_id
        )
    holders = sorted(held)
    users = await db.scalars(
        select(User).where(
            User.company_id == w.company_id,
            or_(User.id.in_(agent_ids), User.id.in_(holders) if holders else false()),
        )
    )
    out = [
        AgentLoad(
            user_id=u.id,
            name=u.name,
            role=u.role,
            presence=u.presence,
            active=u.active,
            max_concurrent_tickets=u.max_concurrent_tickets,
            open=held.get(u.id, {}).get("open", 0),
            pending=held.get(u.id, {}).get("pending", 0),
            closed=held.get(u.id, {}).get("closed", 0),
        )
        for u in users
    ]
    out.sort(key=lambda a: (-a.open, -a.pending, a.name.casefold(), str(a.user_id)))
    return out


async def queues(db: AsyncSession, w: Window) -> list[QueueWait]:
    """Return PENDING tickets per department now, with the longest wait."""
    rows = await db.execute(
        select(Ticket.department_id, func.count(), func.min(Ticket.created_at))
        .where(*_tickets_in(w), Ticket.status == TicketStatus.PENDING)
        .group_by(Ticket.department_id)
    )
    waiting: dict[uuid.UUID | None, tuple[int, datetime | None]] = {
        dep_id: (int(count), oldest) for dep_id, count, oldest in rows
    }

    def line(dep_id: uuid.UUID | None, name: str | None) -> QueueWait:
        count, oldest = waiting.get(dep_id, (0, None))
        wait = None if oldest is None else round(max(0.0, (w.now - oldest).total_seconds()), 3)
        return QueueWait(
            department_id=dep_id,
            name=name,
            pending=count,
            oldest_created_at=oldest,
            longest_wait_seconds=wait,
        )

    deps = await _departments(db, w)
    out = [line(d.id, d.name) for d in deps if d.active or d.id in waiting]
    if None in waiting:
        out.append(line(None, None))
    return out


async def summary(db: AsyncSession, w: Window) -> MetricsSummary:
    """Return every report over one window."""
    return MetricsSummary(
        range=w.range(),
        tickets=await tickets(db, w),
        response_times=await response_times(db, w),
        volume=await volume(db, w),
        agents=await agents(db, w),
        queues=await queues(db, w),
    )
