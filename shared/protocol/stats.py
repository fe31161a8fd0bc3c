"""Service metrics (`/api/v1/metrics/...`): ticket counts, response times, volume, load, queues.

Durations are in seconds. Percentiles interpolate linearly between the two nearest
ranks (PostgreSQL's `percentile_cont`, numpy's default): for n sorted values x and a
fraction q, h = (n - 1)·q and the result is x[⌊h⌋] + (h - ⌊h⌋)·(x[⌊h⌋+1] - x[⌊h⌋]).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import Field

from shared.enums import Presence, Role, TicketStatus
from shared.protocol.common import OutModel

DEFAULT_RANGE_DAYS = 7
MAX_RANGE_DAYS = 366


class MetricsRange(OutModel):
    """The window a report covers: [since, until), and the instant `now`-figures use."""

    since: datetime
    until: datetime
    as_of: datetime = Field(description="when the report was computed (queue waits use it)")
    timezone: str = Field(max_length=64, description="the company's; days are counted in it")
    department_id: uuid.UUID | None = None


class StatusCount(OutModel):
    """How many tickets have one status."""

    status: TicketStatus
    count: int = Field(ge=0)


class DepartmentCount(OutModel):
    """How many tickets one department got (`department_id` None: no department yet)."""

    department_id: uuid.UUID | None
    name: str | None = Field(default=None, max_length=120)
    count: int = Field(ge=0)


class TicketStats(OutModel):
    """Tickets created in the range, by status (as they stand now) and by department."""

    total: int = Field(ge=0)
    by_status: list[StatusCount]
    by_department: list[DepartmentCount]


class DurationStats(OutModel):
    """Mean and percentiles of a set of durations, in seconds (None when there is none)."""

    count: int = Field(ge=0)
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None


class ResponseTimes(OutModel):
    """For tickets created in the range: until the first answer, and until closing."""

    first_response: DurationStats
    resolution: DurationStats


class DayVolume(OutModel):
    """Messages exchanged on one day (in the company's time zone); notes not counted."""

    day: date = Field(description="a calendar day in the company's time zone")
    inbound: int = Field(ge=0)
    outbound: int = Field(ge=0)


class VolumeStats(OutModel):
    """Messages per day over the range, every day listed."""

    inbound: int = Field(ge=0)
    outbound: int = Field(ge=0)
    days: list[DayVolume]


class AgentLoad(OutModel):
    """One person's load: tickets held now, and tickets closed in the range."""

    user_id: uuid.UUID
    name: str = Field(max_length=200)
    role: Role | None
    presence: Presence
    active: bool
    max_concurrent_tickets: int = Field(ge=0)
    open: int = Field(ge=0, description="OPEN tickets assigned now")
    pending: int = Field(ge=0, description="PENDING tickets assigned now")
    closed: int = Field(ge=0, description="tickets they held when closed within the range")


class AgentStats(OutModel):
    """Load per agent (and per anyone else holding tickets)."""

    agents: list[AgentLoad]


class QueueWait(OutModel):
    """A department's queue now (`department_id` None: tickets still in the greeting menu)."""

    department_id: uuid.UUID | None
    name: str | None = Field(default=None, max_length=120)
    pending: int = Field(ge=0)
    oldest_created_at: datetime | None = None
    longest_wait_seconds: float | None = Field(default=None, ge=0)


class QueueStats(OutModel):
    """Who is waiting now, per department."""

    queues: list[QueueWait]


class TicketsReport(TicketStats):
    """Answer of `GET /metrics/tickets`."""

    range: MetricsRange


class ResponseTimesReport(ResponseTimes):
    """Answer of `GET /metrics/response-times`."""

    range: MetricsRange


class VolumeReport(VolumeStats):
    """Answer of `GET /metrics/volume`."""

    range: MetricsRange


class AgentsReport(AgentStats):
    """Answer of `GET /metrics/agents`."""

    range: MetricsRange


class QueuesReport(QueueStats):
    """Answer of `GET /metrics/queues`."""

    range: MetricsRange


class MetricsSummary(OutModel):
    """Answer of `GET /metrics/summary`: every report over one range."""

    range: MetricsRange
    tickets: TicketStats
    response_times: ResponseTimes
    volume: VolumeStats
    agents: list[AgentLoad]
    queues: list[QueueWait]
