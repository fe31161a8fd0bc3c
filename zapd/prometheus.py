"""Prometheus metrics: one registry per `Daemon` (never a module-global one).

HTTP counters and latencies are recorded by the access-log middleware as requests
finish. Gauges that describe state (WebSocket clients, outbox depth, sessions by
status, the connection pool) are read at scrape time by `Metrics.render`, so they are
never stale and cost nothing between scrapes.

Names: every series starts with `zapd_`; HTTP series are labelled with the *route
template* (`/api/v1/tickets/{ticket_id}`), never the raw path, so their number stays
bounded whatever URLs clients send.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from sqlalchemy import func, select

from shared.enums import OutboxState, SessionStatus
from zapd.db.models import Outbox, WaSession

if TYPE_CHECKING:
    from zapd.kernel.context import Kernel
    from zapd.realtime.hub import Hub

log = logging.getLogger("zapd.metrics")

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # what every Prometheus version scrapes
UNMATCHED_ROUTE = "unmatched"  # label of requests no route answered (404, rejected early)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SCRAPE_DB_TIMEOUT = 5.0  # seconds the scrape-time queries may take before db_up reads 0


def method_label(method: str) -> str:
    """Bound the method label: unknown verbs all count as OTHER."""
    return method if method in _METHODS else "OTHER"


@dataclass
class Snapshot:
    """State read at scrape time."""

    ws_clients: int = 0
    events_dispatched: int = 0
    slow_consumers: int = 0
    db_up: bool = False
    db_seconds: float = 0.0
    outbox: dict[OutboxState, int] = field(default_factory=dict)
    sessions: dict[SessionStatus, int] = field(default_factory=dict)
    pool: dict[str, int] = field(default_factory=dict)
    login: dict[str, dict[str, int]] = field(default_factory=dict)  # LoginThrottle.figures
    password_busy: int = 0  # logins refused because every hashing slot was taken


class _StateCollector:
    """Yield the last snapshot's figures (the registry calls `collect` while rendering)."""

    def __init__(self) -> None:
        self.snapshot = Snapshot()

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        yield GaugeMetricFamily(
            "zapd_ws_clients", "WebSocket connections subscribed to events", value=s.ws_clients
        )
        yield CounterMetricFamily(
            "zapd_events_dispatched",
            "Committed events handed to the WebSocket hub since start",
            value=s.events_dispatched,
        )
        yield CounterMetricFamily(
            "zapd_ws_slow_consumers",
            "WebSocket connections closed because they fell too far behind",
            value=s.slow_consumers,
        )
        yield GaugeMetricFamily(
            "zapd_db_up", "1 when the scrape-time database queries succeeded", value=int(s.db_up)
        )
        yield GaugeMetricFamily(
            "zapd_db_scrape_seconds", "Time the scrape-time database queries took", s.db_seconds
        )
        if s.db_up:
            outbox = GaugeMetricFamily(
                "zapd_outbox_messages",
                "Outbound messages in the outbox, by state",
                labels=["state"],
            )
            for state in OutboxState:
                outbox.add_metric([state.name.lower()], s.outbox.get(state, 0))
            yield outbox
            sessions = GaugeMetricFamily(
                "zapd_sessions", "WhatsApp sessions, by connection status", labels=["status"]
            )
            for status in SessionStatus:
                sessions.add_metric([status.name.lower()], s.sessions.get(status, 0))
            yield sessions
        login = s.login
        if login:
            yield CounterMetricFamily(
                "zapd_login_failures", "Failed logins since start", value=login["failures"]["all"]
            )
            for name, help_text, kind in (
                ("lockouts", "Login locks started since start, by scope", CounterMetricFamily),
                ("refused", "Logins refused by the throttle, by scope", CounterMetricFamily),
                ("locked", "Accounts and addresses locked now, by scope", GaugeMetricFamily),
            ):
                family = kind(f"zapd_login_{name}", help_text, labels=["scope"])
                for scope, n in login[name].items():
                    family.add_metric([scope], n)
                yield family
        yield CounterMetricFamily(
            "zapd_password_hash_busy",
            "Password checks refused (429) because the hashing pool and its queue were full",
            value=s.password_busy,
        )
        for name, value in s.pool.items():
            yield GaugeMetricFamily(
                f"zapd_db_pool_{name}", f"Database connection pool: {name.replace('_', ' ')}", value
            )


class Metrics:
    """The daemon's Prometheus registry and the instruments the HTTP edge updates."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "zapd_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "zapd_http_request_duration_seconds",
            "Time from request to the end of the response, by method and route template",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._state = _StateCollector()
        self.registry.register(self._state)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished HTTP request."""
        m = method_label(method)
        self.http_requests.labels(m, route, str(status)).inc()
        self.http_latency.labels(m, route).observe(seconds)

    async def snapshot(self, kernel: Kernel, hub: Hub) -> Snapshot:
        """Read the state behind the scrape-time gauges."""
        snap = Snapshot(
            ws_clients=hub.client_count,
            events_dispatched=hub.dispatched,
            slow_consumers=int(getattr(hub, "slow_consumers", 0)),
        )
        snap.pool = _pool_figures(kernel.engine.pool)
        snap.login = kernel.throttle.figures()
        snap.password_busy = kernel.passwords.busy_refusals
        started = time.perf_counter()
        try:
            await asyncio.wait_for(_count_rows(kernel, snap), SCRAPE_DB_TIMEOUT)
            snap.db_up = True
        except Exception as exc:  # a scrape must answer even with the database down
            log.warning("metrics: database queries failed: %s", type(exc).__name__)
        snap.db_seconds = time.perf_counter() - started
        return snap

    async def render(self, kernel: Kernel, hub: Hub) -> bytes:
        """Return the exposition text of every metric, reading state now."""
        self._state.snapshot = await self.snapshot(kernel, hub)
        return generate_latest(self.registry)


async def _count_rows(kernel: Kernel, snap: Snapshot) -> None:
    async with kernel.read() as db:
        rows = await db.execute(select(Outbox.state, func.count()).group_by(Outbox.state))
        snap.outbox = {OutboxState(state): int(n) for state, n in rows.all()}
        rows = await db.execute(select(WaSession.status, func.count()).group_by(WaSession.status))
        snap.sessions = {SessionStatus(status): int(n) for status, n in rows.all()}


def _pool_figures(pool: Any) -> dict[str, int]:
    """Return size / checked-out / overflow of a queue pool (other pools expose nothing)."""
    figures: dict[str, int] = {}
    for name, attr in (("size", "size"), ("checked_out", "checkedout"), ("overflow", "overflow")):
        getter = getattr(pool, attr, None)
        if callable(getter):
            try:
                figures[name] = int(getter())
            except Exception:  # noqa: S112 - a pool without the figure just omits it
                continue
    return figures
