"""/metrics: Prometheus exposition of the daemon's own registry.

Secure by default: a scrape needs `Authorization: Bearer <scrape token>` — the
`metrics_token` setting (ZAP_METRICS_TOKEN), or else the token zapd writes on first start
to `<state dir>/metrics.token` (mode 0600; point Prometheus' `bearer_token_file` at it or
at a copy). `metrics_require_token = false` (ZAP_METRICS_REQUIRE_TOKEN=0) serves it to
anyone who reaches the port, for hosts where only a local scraper can. The token is
compared in constant time; a missing or wrong one answers 401 and renders nothing. It
exposes counts only (requests, latencies, outbox and session totals across all
companies), never ids, names or message content.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import Response

from zapd.api.deps import DaemonDep
from zapd.errors import Unauthorized
from zapd.prometheus import CONTENT_TYPE

router = APIRouter(tags=["metrics"])

_DESCRIPTION = (
    "Prometheus text format. Needs `Authorization: Bearer <scrape token>` (ZAP_METRICS_TOKEN, "
    "or the metrics.token file zapd writes in its state dir) unless "
    "ZAP_METRICS_REQUIRE_TOKEN=0. Series: "
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
async def prometheus_metrics(
    daemon: DaemonDep, authorization: Annotated[str | None, Header()] = None
) -> Response:
    """Render every metric, reading the state-describing gauges now."""
    expected = daemon.metrics_token
    if expected is not None:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), expected.encode()
        ):
            raise Unauthorized(
                "GET /metrics needs Authorization: Bearer <scrape token> (ZAP_METRICS_TOKEN, "
                "or the metrics.token file in zapd's state dir)"
            )
    return Response(await daemon.metrics.render(daemon.kernel, daemon.hub), media_type=CONTENT_TYPE)
