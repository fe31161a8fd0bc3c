"""zapd client endpoints: helpdesk metrics, the audit log and the Prometheus exposition.

Part of `ZapClient` (shared.client); the wire models are imported when a method first
runs (shared.client.lazy).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import pydantic

from shared.client.core import API, ClientCore, Order
from shared.client.lazy import protocol

if TYPE_CHECKING:
    from shared.protocol import audit, common, stats
else:
    audit = protocol("audit")
    stats = protocol("stats")

_R = TypeVar("_R", bound=pydantic.BaseModel)


class ReportEndpoints(ClientCore):
    """Helpdesk metrics, the audit log and the Prometheus exposition."""

    # ----------------------------------------------------------------- service metrics

    async def _report(
        self,
        model: type[_R],
        name: str,
        since: datetime | None,
        until: datetime | None,
        department_id: uuid.UUID | None,
        company_id: uuid.UUID | None,
    ) -> _R:
        return await self._get(
            model,
            f"{API}/metrics/{name}",
            since=since,
            until=until,
            department_id=department_id,
            company_id=company_id,
        )

    async def metrics_summary(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        department_id: uuid.UUID | None = None,
        company_id: uuid.UUID | None = None,
    ) -> stats.MetricsSummary:
        """Every report over [since, until) (ADMIN, SUPERVISOR; default the last 7 days)."""
        return await self._report(
            stats.MetricsSummary, "summary", since, until, department_id, company_id
        )

    async def metrics_tickets(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        department_id: uuid.UUID | None = None,
        company_id: uuid.UUID | None = None,
    ) -> stats.TicketsReport:
        """Tickets created in the range, by status and department (ADMIN, SUPERVISOR)."""
        return await self._report(
            stats.TicketsReport, "tickets", since, until, department_id, company_id
        )

    async def metrics_response_times(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        department_id: uuid.UUID | None = None,
        company_id: uuid.UUID | None = None,
    ) -> stats.ResponseTimesReport:
        """First response and resolution times of the range's tickets (ADMIN, SUPERVISOR)."""
        return await self._report(
            stats.ResponseTimesReport, "response-times", since, until, department_id, company_id
        )

    async def metrics_volume(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        department_id: uuid.UUID | None = None,
        company_id: uuid.UUID | None = None,
    ) -> stats.VolumeReport:
        """Messages in and out per day, in the company's time zone (ADMIN, SUPERVISOR)."""
        return await self._report(
            stats.VolumeReport, "volume", since, until, department_id, company_id
        )

    async def metrics_agents(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        department_id: uuid.UUID | None = None,
        company_id: uuid.UUID | None = None,
    ) -> stats.AgentsReport:
        """Load per agent: tickets held now, closed in the range (ADMIN, SUPERVISOR)."""
        return await self._report(
            stats.AgentsReport, "agents", since, until, department_id, company_id
        )

    async def metrics_queues(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        department_id: uuid.UUID | None = None,
        company_id: uuid.UUID | None = None,
    ) -> stats.QueuesReport:
        """Who waits now, per department, and for how long (ADMIN, SUPERVISOR)."""
        return await self._report(
            stats.QueuesReport, "queues", since, until, department_id, company_id
        )

    # ----------------------------------------------------------------- audit, metrics

    async def list_audit(
        self,
        *,
        company_id: uuid.UUID | None = None,
        user_id: uuid.UUID | None = None,
        action: str | None = None,
        entity_type: str | None = None,
        entity_id: uuid.UUID | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        cursor: str | None = None,
        limit: int | None = None,
        order: Order | None = None,
    ) -> common.Page[audit.AuditOut]:
        """List one page of the audit log (ADMIN); `action` may be a prefix as 'ticket.*'."""
        return await self._get_page(
            audit.AuditOut,
            f"{API}/audit",
            company_id=company_id,
            user_id=user_id,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
            order=order,
        )

    async def prometheus_metrics(self, scrape_token: str | None = None) -> str:
        """Fetch the Prometheus exposition of `/metrics` with zapd's scrape token.

        The scrape token is not a login token (ZAP_METRICS_TOKEN, or the metrics.token
        file in zapd's state dir); without one, only a zapd that serves /metrics openly
        answers.
        """
        headers = {"Authorization": f"Bearer {scrape_token}"} if scrape_token else None
        return (await self.request("GET", "/metrics", auth=False, headers=headers)).text
