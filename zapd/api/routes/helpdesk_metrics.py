"""/api/v1/metrics: service metrics for admins and supervisors (not Prometheus' /metrics).

    GET /api/v1/metrics/summary         every report below over one range
    GET /api/v1/metrics/tickets         tickets created in the range, by status and department
    GET /api/v1/metrics/response-times  first response and resolution: mean, p50, p90 (seconds)
    GET /api/v1/metrics/volume          messages in/out per day, in the company's time zone
    GET /api/v1/metrics/agents          per agent: OPEN/PENDING tickets held, closed in range
    GET /api/v1/metrics/queues          per department: PENDING now and the longest wait

Every endpoint takes `since` and `until` (ISO 8601 with a time zone; the range is
[since, until), at most 366 days; defaults: the last 7 days), an optional
`department_id`, and `company_id` (global admins only, and required for them).
ADMIN and SUPERVISOR only (agents get 403); a naive datetime or since >= until is a
422; another company's department is a 404. Percentiles interpolate linearly between
closest ranks, like PostgreSQL's percentile_cont; the exact definitions are in
`zapd.services.compliance.helpdesk_metrics`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from shared.protocol.stats import (
    AgentsReport,
    MetricsSummary,
    QueuesReport,
    ResponseTimesReport,
    TicketsReport,
    VolumeReport,
)
from zapd.api.deps import Auth, KernelDep
from zapd.kernel.principal import Principal
from zapd.services.compliance import helpdesk_metrics

router = APIRouter(prefix="/api/v1/metrics", tags=["metrics"])


@dataclass(frozen=True)
class RangeParams:
    """`?since=&until=&department_id=&company_id=` of every report."""

    since: datetime | None
    until: datetime | None
    department_id: uuid.UUID | None
    company_id: uuid.UUID | None


async def get_range(
    since: Annotated[
        datetime | None, Query(description="ISO 8601 with a time zone; default until - 7 days")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="ISO 8601 with a time zone; default now")
    ] = None,
    department_id: Annotated[uuid.UUID | None, Query()] = None,
    company_id: Annotated[uuid.UUID | None, Query(description="global admins only")] = None,
) -> RangeParams:
    """Read the range parameters every report takes."""
    return RangeParams(since, until, department_id, company_id)


RangeDep = Annotated[RangeParams, Depends(get_range)]


async def _window(
    db: AsyncSession, principal: Principal, q: RangeParams
) -> helpdesk_metrics.Window:
    return await helpdesk_metrics.window(
        db,
        principal,
        since=q.since,
        until=q.until,
        department_id=q.department_id,
        company_id=q.company_id,
    )


@router.get("/summary", response_model=MetricsSummary)
async def metrics_summary(principal: Auth, kernel: KernelDep, q: RangeDep) -> MetricsSummary:
    """Every report over one range (ADMIN, SUPERVISOR)."""
    async with kernel.read() as db:
        return await helpdesk_metrics.summary(db, await _window(db, principal, q))


@router.get("/tickets", response_model=TicketsReport)
async def metrics_tickets(principal: Auth, kernel: KernelDep, q: RangeDep) -> TicketsReport:
    """Tickets created in the range, by status and by department (ADMIN, SUPERVISOR)."""
    async with kernel.read() as db:
        w = await _window(db, principal, q)
        stats = await helpdesk_metrics.tickets(db, w)
        return TicketsReport(range=w.range(), **stats.model_dump())


@router.get("/response-times", response_model=ResponseTimesReport)
async def metrics_response_times(
    principal: Auth, kernel: KernelDep, q: RangeDep
) -> ResponseTimesReport:
    """First response and resolution times of the range's tickets (ADMIN, SUPERVISOR)."""
    async with kernel.read() as db:
        w = await _window(db, principal, q)
        stats = await helpdesk_metrics.response_times(db, w)
        return ResponseTimesReport(range=w.range(), **stats.model_dump())


@router.get("/volume", response_model=VolumeReport)
async def metrics_volume(principal: Auth, kernel: KernelDep, q: RangeDep) -> VolumeReport:
    """Messages in and out per day, in the company's time zone (ADMIN, SUPERVISOR)."""
    async with kernel.read() as db:
        w = await _window(db, principal, q)
        stats = await helpdesk_metrics.volume(db, w)
        return VolumeReport(range=w.range(), **stats.model_dump())


@router.get("/agents", response_model=AgentsReport)
async def metrics_agents(principal: Auth, kernel: KernelDep, q: RangeDep) -> AgentsReport:
    """Load per agent: tickets held now, closed in the range (ADMIN, SUPERVISOR)."""
    async with kernel.read() as db:
        w = await _window(db, principal, q)
        return AgentsReport(range=w.range(), agents=await helpdesk_metrics.agents(db, w))


@router.get("/queues", response_model=QueuesReport)
async def metrics_queues(principal: Auth, kernel: KernelDep, q: RangeDep) -> QueuesReport:
    """Who waits now, per department, and for how long (ADMIN, SUPERVISOR)."""
    async with kernel.read() as db:
        w = await _window(db, principal, q)
        return QueuesReport(range=w.range(), queues=await helpdesk_metrics.queues(db, w))
