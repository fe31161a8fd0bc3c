"""The metrics screen against a real zapd: the figures on screen are the API's.

Traffic is made through the sandbox and the API (customers write and pick a department,
an agent accepts, answers and closes one ticket); the screen is then compared with an
independent `GET /metrics/summary` of the same range.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from pytest_textual_snapshot import SVGImageExtension
from syrupy.assertion import SnapshotAssertion
from textual.widgets import DataTable, Select, Static

from shared.client import ZapClient
from shared.enums import TicketStatus
from shared.protocol.messages import MessageSend
from shared.protocol.stats import MetricsSummary
from shared.protocol.tickets import TicketClose
from tests.zaptui.conftest import TuiZapd, wait_until
from tests.zaptui.screens.test_sessions import Host, token_of
from zaptui.screens.metrics import MetricsScreen, VolumeChart, day_label, fmt_duration


@pytest.fixture
async def traffic(tui_zapd: TuiZapd) -> AsyncIterator[TuiZapd]:
    """Three customers: one served and closed (Laboratório), two waiting (one per queue)."""
    z = tui_zapd
    for phone, choice in (("+5511911110001", "1"), ("+5511911110002", "2")):
        await z.say(phone, "Olá, bom dia")
        await z.say(phone, choice)
    await z.say("+5511911110003", "Oi")
    await z.say("+5511911110003", "1")
    async with ZapClient(z.url, token=token_of(z, "agent")) as agent:

        async def lab_tickets() -> list[uuid.UUID]:
            page = await agent.list_tickets(status=TicketStatus.PENDING)
            return [tk.id for tk in page.items]

        mine = await wait_until(lambda: _two(lab_tickets))
        served = mine[0]
        await agent.accept_ticket(served)
        await agent.send_message(MessageSend(ticket_id=served, body="Bom dia! Como posso ajudar?"))
        await agent.close_ticket(served, TicketClose(farewell=False))
    yield z


async def _two(fetch: object) -> list[uuid.UUID] | None:
    got = await fetch()  # type: ignore[operator]
    return got if len(got) == 2 else None


@pytest.fixture
async def supervisor(traffic: TuiZapd) -> AsyncIterator[ZapClient]:
    async with ZapClient(traffic.url, token=token_of(traffic, "supervisor")) as client:
        yield client


def card(screen: MetricsScreen, key: str, part: str = "value") -> str:
    return str(screen.query_one(f"#card-{key} .card-{part}", Static).render())


def rows(table: DataTable[object]) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_figures_match_the_api(traffic: TuiZapd, supervisor: ZapClient) -> None:
    screen = MetricsScreen(supervisor, refresh_seconds=3600)
    app = Host(screen)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(lambda: screen.loads >= 1)
        await pilot.pause()
        api = await supervisor.metrics_summary(
            since=screen.summary.range.since,
            until=screen.summary.range.until,  # type: ignore[union-attr]
        )
        waiting = sum(q.pending for q in api.queues)
        assert waiting == 2
        assert card(screen, "waiting") == "2"
        assert card(screen, "waiting", "detail").startswith("máx. ")
        assert card(screen, "tickets") == str(api.tickets.total) == "3"
        assert "1 fechados" in card(screen, "tickets", "detail")
        fr = api.response_times.first_response
        assert fr.count == 1
        assert card(screen, "first_response") == fmt_duration(fr.p50)
        assert screen.query_one("#card-first_response").border_subtitle == "mediana de 1"
        assert card(screen, "first_response", "detail") == (
            f"p90 {fmt_duration(fr.p90)}\nmédia {fmt_duration(fr.mean)}"
        )
        assert card(screen, "resolution") == fmt_duration(api.response_times.resolution.p50)

        # Per-agent load: the agent holds nothing now and closed one.
        table = rows(screen.query_one("#metrics-agents", DataTable))
        agents = {r[0].removeprefix("● "): r for r in table}
        by_api = {a.name: a for a in api.agents}
        assert set(agents) == set(by_api)
        got = agents["Agent"]
        a = by_api["Agent"]
        assert a.open == a.pending == 0 and a.closed == 1
        assert got[1:3] == ["0", "1"] and got[3].endswith(f" 0/{a.max_concurrent_tickets}")

        # Queues now.
        queues = {r[0]: r[1] for r in rows(screen.query_one("#metrics-queues", DataTable))}
        assert queues["Laboratório"] == "1" and queues["Comercial"] == "1"

        # Volume: every day of the range, today's counts as the API has them.
        chart = str(screen.query_one(VolumeChart).render())
        today = api.volume.days[-1]
        assert len(api.volume.days) >= 7
        assert today.inbound == 6 and today.outbound >= 1
        line = next(ln for ln in chart.splitlines() if ln.startswith(day_label(today.day)))
        assert line.endswith(f"{today.inbound} ↓ {today.outbound} ↑")
        assert sum(1 for ln in chart.splitlines() if "↓" in ln) == len(api.volume.days)

        # One department: the figures narrow to it.
        loads = screen.loads
        screen.query_one("#metrics-department", Select).value = str(traffic.t.sales_id)
        await wait_until(lambda: screen.loads > loads)
        await pilot.pause()
        assert screen.department_id == traffic.t.sales_id
        sales = await supervisor.metrics_summary(department_id=traffic.t.sales_id)
        assert card(screen, "waiting") == str(sum(q.pending for q in sales.queues)) == "1"
        assert card(screen, "tickets") == str(sales.tickets.total) == "1"

        # 30 days: the chart lists every one of them.
        loads = screen.loads
        await pilot.press("3")
        await wait_until(lambda: screen.loads > loads)
        await pilot.pause()
        assert "30 dias" in str(screen.query_one("#metrics-title", Static).render())
        assert len(screen.query_one(VolumeChart).days) >= 30


async def test_an_agent_is_refused_and_told(traffic: TuiZapd) -> None:
    async with ZapClient(traffic.url, token=token_of(traffic, "agent")) as agent:
        screen = MetricsScreen(agent, refresh_seconds=3600)
        app = Host(screen)
        async with app.run_test(size=(100, 30)) as pilot:
            status = screen.query_one("#metrics-status", Static)
            await wait_until(lambda: "stale" in status.classes)
            await pilot.pause()
            assert "Falha ao atualizar" in str(status.render())
            assert screen.summary is None and card(screen, "waiting") == "…"


def pinned(summary: MetricsSummary) -> MetricsSummary:
    """The real answer with its clock-dependent fields fixed (dates, waits, durations)."""
    end = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
    first = date(2026, 11, 28)
    volume = [
        d.model_copy(update={"day": first + timedelta(days=i)})
        for i, d in enumerate(summary.volume.days[-7:])
    ]
    # A plausible week: the real today's counts on the last day, older days made busier.
    extra = [(12, 9), (30, 22), (25, 20), (8, 5), (41, 37), (17, 15)]
    volume = [
        d.model_copy(update={"inbound": extra[i][0], "outbound": extra[i][1]}) if i < 6 else d
        for i, d in enumerate(volume)
    ]
    waits = iter([754.0, 95.0, 12.0])
    queues = [
        q.model_copy(
            update={
                "longest_wait_seconds": next(waits) if q.pending else None,
                "oldest_created_at": None,
            }
        )
        for q in summary.queues
    ]
    rt = summary.response_times
    times = rt.model_copy(
        update={
            "first_response": rt.first_response.model_copy(
                update={"mean": 84.0, "p50": 62.0, "p90": 151.0}
            ),
            "resolution": rt.resolution.model_copy(
                update={"mean": 1830.0, "p50": 1430.0, "p90": 3725.0}
            ),
        }
    )
    rng = summary.range.model_copy(
        update={
            "since": end - timedelta(days=7),
            "until": end,
            "as_of": end,
            "timezone": "America/Sao_Paulo",
        }
    )
    vol = summary.volume.model_copy(
        update={
            "days": volume,
            "inbound": sum(d.inbound for d in volume),
            "outbound": sum(d.outbound for d in volume),
        }
    )
    return summary.model_copy(
        update={"range": rng, "volume": vol, "queues": queues, "response_times": times}
    )


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
async def test_snapshot_of_the_metrics_screen(
    traffic: TuiZapd, supervisor: ZapClient, snapshot: SnapshotAssertion, size: tuple[int, int]
) -> None:
    """Dark theme; the daemon's answer with its clock-dependent fields pinned."""
    screen = MetricsScreen(supervisor, refresh_seconds=3600)
    app = Host(screen)
    async with app.run_test(size=size) as pilot:
        await wait_until(lambda: screen.loads >= 1)
        await wait_until(lambda: len(screen.query_one("#metrics-department", Select)._options) > 1)
        assert screen.summary is not None
        screen.show(pinned(screen.summary))
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        assert snapshot.use_extension(SVGImageExtension) == app.export_screenshot()
