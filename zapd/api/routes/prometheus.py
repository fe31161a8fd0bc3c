"""/metrics: Prometheus exposition of the daemon's own registry.

Unauthenticated on purpose (Prometheus scrapes without credentials), and served on the
daemon's one listener only — there is no separate metrics port. zapd binds 127.0.0.1
by default, so only local scrapers reach it; an operator who binds zapd to a public
address must keep /metrics behind the same firewall or reverse-proxy rules as the rest
of the API. It exposes counts only (requests, latencies, outbox and session totals
across all companies), never ids, names or message content.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from zapd.api.deps import DaemonDep
from zapd.prometheus import CONTENT_TYPE

router = APIRouter(tags=["metrics"])

_DESCRIPTION = (
    "Prometheus text format. Unauthenticated, served only on the daemon's bind address "
    "(127.0.0.1 by default): firewall it like the API if zapd listens publicly. Series: "
    "zapd_http_requests_total{method,route,status}, "
    "zapd_http_request_duration_seconds{method,route}, zapd_ws_clients, "
    "zapd_events_dispatched_total, zapd_outbox_messages{state}, zapd_sessions{status}, "
    "zapd_db_up, zapd_db_pool_*, plus process_* and python_* figures."
)


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    description=_DESCRIPTION,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def prometheus_metrics(daemon: DaemonDep) -> Response:
    """Render every metric, reading the state-describing gauges now."""
    return Response(await daemon.metrics.render(daemon.kernel, daemon.hub), media_type=CONTENT_TYPE)
