"""/metrics over real HTTP: Prometheus text, bounded labels, scrape-time state, own registry."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import prometheus_client
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.enums import OutboxState, SessionStatus
from tests.zapd.api.conftest import Live, start_live
from tests.zapd.api.conftest import test_settings as settings_for
from tests.zapd.db import factories
from zapd.kernel.principal import Principal
from zapd.kernel.throttle import LoginThrottle
from zapd.prometheus import UNMATCHED_ROUTE, Metrics


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Parse exposition text into {(sample name, labels): value}."""
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(got: dict[Any, float], name: str, **labels: str) -> float | None:
    return got.get((name, frozenset(labels.items())))


async def scrape(live: Live) -> dict[Any, float]:
    r = await live.client(live.daemon.metrics_token).get("/metrics")  # the scrape token
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert "version=0.0.4" in r.headers["content-type"]
    return samples(r.text)


async def test_requests_are_counted_by_route_template(live: Live) -> None:
    t = await live.tenant()
    route = "/api/v1/departments/{department_id}"
    for dep in (t.lab_id, t.sales_id):
        assert (await t.admin.get(f"/api/v1/departments/{dep}")).status_code == 200
    missing = uuid.uuid4()
    assert (await t.admin.get(f"/api/v1/departments/{missing}")).status_code == 404
    assert (await t.admin.get("/no/such/thing/at/all")).status_code == 404
    assert (await t.admin.request("PROPFIND", "/healthz")).status_code == 405

    got = await scrape(live)
    assert value(got, "zapd_http_requests_total", method="GET", route=route, status="200") == 2
    assert value(got, "zapd_http_requests_total", method="GET", route=route, status="404") == 1
    assert (
        value(got, "zapd_http_requests_total", method="GET", route=UNMATCHED_ROUTE, status="404")
        == 1
    )
    # Unknown verbs share one label value instead of minting new series.
    assert (
        value(got, "zapd_http_requests_total", method="OTHER", route="/healthz", status="405") == 1
    )
    # No raw path (with its ids) ever becomes a label.
    labels = {dict(k[1]).get("route") for k in got if k[0] == "zapd_http_requests_total"}
    assert not any(str(t.lab_id) in (r or "") or "/no/such" in (r or "") for r in labels)
    assert value(got, "zapd_http_request_duration_seconds_count", method="GET", route=route) == 3
    inf = value(
        got, "zapd_http_request_duration_seconds_bucket", method="GET", route=route, le="+Inf"
    )
    assert inf == 3
    # The login the tenant fixture made was counted too, with its status.
    logins = value(
        got, "zapd_http_requests_total", method="POST", route="/api/v1/auth/login", status="200"
    )
    assert logins is not None and logins >= 5  # root + 4 tenant users


async def test_scrape_time_state_ws_events_sessions_outbox(live: Live) -> None:
    t = await live.tenant()
    before = await scrape(live)
    assert value(before, "zapd_ws_clients") == 0
    assert value(before, "zapd_db_up") == 1
    for status in SessionStatus:
        assert value(before, "zapd_sessions", status=status.name.lower()) == 0
    for state in OutboxState:
        assert value(before, "zapd_outbox_messages", state=state.name.lower()) == 0
    dispatched = value(before, "zapd_events_dispatched_total")
    assert dispatched is not None

    # Two subscribers on the hub (what the WebSocket endpoint registers per connection).
    principal = Principal(user_id=t.users["admin"], company_id=t.company_id, role=None, name="x")
    subs = [live.daemon.hub.subscribe(principal) for _ in range(2)]
    # A change that publishes an event: it is dispatched once committed.
    r = await t.admin.patch(f"/api/v1/departments/{t.lab_id}", json={"menu_order": 7})
    assert r.status_code == 200, r.text

    # Sessions and outbox rows, straight in the database (inactive sessions and terminal
    # outbox states: nothing a background worker would pick up and change meanwhile).
    async with live.kernel.tx() as db:
        company = factories.company()
        db.add(company)
        await db.flush()
        connected = factories.session(company, status=SessionStatus.CONNECTED, active=False)
        waiting = factories.session(company, status=SessionStatus.WAITING_QR, active=False)
        broken = factories.session(company, status=SessionStatus.ERROR, active=False)
        db.add_all([connected, waiting, broken])
        await db.flush()
        client = factories.client(company)
        db.add(client)
        await db.flush()
        chat = factories.chat(company, connected, client)
        db.add(chat)
        await db.flush()
        from zapd.db.models import Outbox

        for i, state in enumerate([OutboxState.DEAD, OutboxState.DEAD, OutboxState.CANCELLED]):
            msg = factories.message(company, connected, chat, wa_id=f"wa-{i}")
            db.add(msg)
            await db.flush()
            db.add(
                Outbox(
                    company_id=company.id,
                    session_id=connected.id,
                    message_id=msg.id,
                    chat_id=chat.id,
                    idempotency_key=f"k-{uuid.uuid4()}",
                    state=state,
                )
            )

    got = await scrape(live)
    assert value(got, "zapd_ws_clients") == 2
    after = value(got, "zapd_events_dispatched_total")
    assert after is not None and after == dispatched + 1
    assert value(got, "zapd_sessions", status="connected") == 1
    assert value(got, "zapd_sessions", status="waiting_qr") == 1
    assert value(got, "zapd_sessions", status="error") == 1
    assert value(got, "zapd_sessions", status="disconnected") == 0
    assert value(got, "zapd_outbox_messages", state="dead") == 2
    assert value(got, "zapd_outbox_messages", state="cancelled") == 1
    assert value(got, "zapd_outbox_messages", state="pending") == 0

    for sub in subs:
        live.daemon.hub.unsubscribe(sub)
    assert value(await scrape(live), "zapd_ws_clients") == 0


async def test_pool_and_process_figures(live: Live) -> None:
    got = await scrape(live)
    names = {k[0] for k in got}
    assert "process_resident_memory_bytes" in names or "process_cpu_seconds_total" in names
    if live.backend == "postgresql":  # a queue pool: its figures are exposed
        assert value(got, "zapd_db_pool_size") is not None
        checked_out = value(got, "zapd_db_pool_checked_out")
        assert checked_out is not None and checked_out >= 0


async def test_metrics_needs_the_scrape_token_and_is_read_only(live: Live) -> None:
    # Secure by default: zapd wrote a scrape token to its state dir (0600) at start.
    token_file = live.kernel.settings.metrics_token_file
    token = token_file.read_text().strip()
    assert token and live.daemon.metrics_token == token
    assert token_file.stat().st_mode & 0o777 == 0o600
    anon = live.client()
    user_token = live.root.headers["Authorization"] if live.root else ""
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": user_token}):
        r = await anon.get("/metrics", headers=headers)
        assert r.status_code == 401 and r.json()["error"] == "ERR_UNAUTHORIZED", headers
        assert "scrape token" in r.json()["message"] and "zapd_" not in r.text
    r = await live.client(token).get("/metrics")
    assert r.status_code == 200 and "zapd_http_requests_total" in r.text
    r = await live.client(token).post("/metrics")
    assert r.status_code == 405 and r.json()["error"] == "ERR_METHOD_NOT_ALLOWED"
    spec = (await anon.get("/api/v1/openapi.json")).json()
    assert "scrape token" in spec["paths"]["/metrics"]["get"]["description"]


async def test_metrics_token_is_configurable_or_can_be_turned_off(
    engine: AsyncEngine, backend: Any, tmp_path: Path
) -> None:
    configured = settings_for(tmp_path / "a", metrics_token="prom-" + "k" * 32)
    lv, server, task = await start_live(engine, backend.name, configured)
    try:
        assert (await lv.client().get("/metrics")).status_code == 401
        assert (await lv.client("prom-" + "k" * 32).get("/metrics")).status_code == 200
        assert not configured.metrics_token_file.exists()  # no file when one is configured
    finally:
        await lv.close()
        server.should_exit = True
        await asyncio.wait_for(task, 15)
    public = settings_for(tmp_path / "b", metrics_require_token=False)
    lv, server, task = await start_live(engine, backend.name, public)
    try:
        assert (await lv.client().get("/metrics")).status_code == 200
    finally:
        await lv.close()
        server.should_exit = True
        await asyncio.wait_for(task, 15)


def test_each_daemon_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()
    a.observe_request("GET", "/x", 200, 0.01)
    assert (
        a.registry.get_sample_value(
            "zapd_http_requests_total", {"method": "GET", "route": "/x", "status": "200"}
        )
        == 1
    )
    assert (
        b.registry.get_sample_value(
            "zapd_http_requests_total", {"method": "GET", "route": "/x", "status": "200"}
        )
        is None
    )
    # Nothing lands in prometheus_client's process-wide default registry.
    assert (
        prometheus_client.REGISTRY.get_sample_value(
            "zapd_http_requests_total", {"method": "GET", "route": "/x", "status": "200"}
        )
        is None
    )


async def test_scrape_answers_with_the_database_down() -> None:
    @asynccontextmanager
    async def broken_read():  # type: ignore[no-untyped-def]
        raise ConnectionRefusedError("database is down")
        yield

    kernel = SimpleNamespace(
        engine=SimpleNamespace(pool=object()),
        read=broken_read,
        throttle=LoginThrottle(),
        passwords=SimpleNamespace(busy_refusals=0),
    )
    hub = SimpleNamespace(client_count=3, dispatched=9)
    got = samples((await Metrics().render(kernel, hub)).decode())  # type: ignore[arg-type]
    assert value(got, "zapd_db_up") == 0
    assert value(got, "zapd_ws_clients") == 3
    assert value(got, "zapd_events_dispatched_total") == 9
    assert value(got, "zapd_login_failures_total") == 0  # in-memory figures still answer
    assert not any(k[0] == "zapd_sessions" for k in got)  # unknown, not a misleading 0
