"""Service metrics for supervisors: who waits now, how fast they are served, volume, load.

Everything shown comes from one `GET /api/v1/metrics/summary` answer (so the figures
agree with each other), for a rolling range ending now: the last 1, 7 or 30 days, all
departments or one. The screen refreshes itself every `REFRESH_SECONDS` and on `r`.

Invariants:
- Figures are the API's, only formatted: durations by `fmt_duration`, counts as they
  are; a figure the API has not (no ticket answered yet) shows as "—", never as 0.
- "Waiting now" is the sum of the queues' PENDING tickets; the longest wait is the
  largest of the queues' (both as of the answer's `as_of`).
- The volume chart lists every day of the answer (the API lists empty days too), bars
  scaled to the busiest day, inbound and outbound stacked.
- A failed refresh keeps the last figures on screen and says so.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Select, Static

from shared.client import ZapClient, ZapError
from shared.enums import Presence, TicketStatus
from shared.protocol.stats import AgentLoad, DayVolume, DurationStats, MetricsSummary
from zaptui.i18n import t
from zaptui.screens.qr import localize_bindings

REFRESH_SECONDS = 15.0
RANGES = (1, 7, 30)  # days the range keys choose between
ALL = "all"  # the department selector's "every department"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FULL = "█"
EIGHTHS = " ▏▎▍▌▋▊▉"


def fmt_duration(seconds: float | None) -> str:
    """A duration for people: 42 s, 3 min 05 s, 12 min, 2 h 07 min, 3 d 04 h ("—": unknown).

    Seconds are shown below ten minutes only: past that they are noise.
    """
    if seconds is None:
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600:02d} h"


def bar(value: float, scale: float, width: int) -> str:
    """A horizontal bar of `value` out of `scale` in `width` cells, to the eighth of a cell."""
    if scale <= 0 or value <= 0 or width <= 0:
        return ""
    eighths = round(min(value / scale, 1.0) * width * 8)
    eighths = max(eighths, 1)  # a non-zero value is always visible
    return FULL * (eighths // 8) + (EIGHTHS[eighths % 8] if eighths % 8 else "")


def in_zone(when: datetime, zone: str) -> datetime:
    """`when` in the company's time zone (the local one when the name is unknown here)."""
    try:
        return when.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        return when.astimezone()


def day_label(day: date) -> str:
    """`sáb 06/12`: a weekday and the date."""
    return f"{t('metrics.weekday.' + WEEKDAYS[day.weekday()])} {day:%d/%m}"


class VolumeChart(Widget):
    """Messages per day as stacked horizontal bars: inbound, then outbound."""

    DEFAULT_CSS = """
    VolumeChart {
        height: auto;
        width: 1fr;
    }
    VolumeChart > .volume--inbound {
        color: $primary;
    }
    VolumeChart > .volume--outbound {
        color: $success;
    }
    VolumeChart > .volume--label {
        color: $text-muted;
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "volume--inbound",
        "volume--outbound",
        "volume--label",
    }

    days: reactive[tuple[DayVolume, ...]] = reactive((), layout=True)

    def render(self) -> Text:
        inbound = self.get_component_rich_style("volume--inbound")
        outbound = self.get_component_rich_style("volume--outbound")
        muted = self.get_component_rich_style("volume--label")
        text = Text()
        text.append("■ ", inbound)
        text.append(t("metrics.inbound"), muted)
        text.append("   ")
        text.append("■ ", outbound)
        text.append(t("metrics.outbound"), muted)
        if not self.days:
            text.append("\n" + t("metrics.no_data"), muted)
            return text
        busiest = max(d.inbound + d.outbound for d in self.days)
        numbers = max(len(f"{d.inbound} ↓ {d.outbound} ↑") for d in self.days)
        width = max(4, self.content_size.width - 10 - numbers - 2)
        for d in self.days:
            total = d.inbound + d.outbound
            whole = bar(total, busiest, width)
            split = round(len(whole) * d.inbound / total) if total else 0
            text.append("\n")
            text.append(f"{day_label(d.day):<9} ", muted)
            text.append(whole[:split], inbound)
            text.append(whole[split:], outbound)
            text.append(" " * (width - len(whole) + 1))
            text.append(f"{d.inbound} ↓ {d.outbound} ↑".rjust(numbers))
        return text

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return 1 + max(1, len(self.days))


def load_bar(a: AgentLoad, width: int = 5) -> Text:
    """An agent's tickets held against their limit: `███░░░ 3/5` (no limit: just the count)."""
    held = a.open + a.pending
    if a.max_concurrent_tickets <= 0:
        return Text(str(held))
    ratio = held / a.max_concurrent_tickets
    filled = min(width, round(ratio * width))
    style = "red" if ratio >= 1 else "yellow" if ratio >= 0.75 else "green"
    text = Text()
    text.append(FULL * filled, style=style)
    text.append("░" * (width - filled), style="dim")
    text.append(f" {held}/{a.max_concurrent_tickets}")
    return text


def duration_lines(stats: DurationStats) -> str:
    """The 90th percentile and the mean of a set of durations, one per line."""
    return t("metrics.duration_lines", p90=fmt_duration(stats.p90), mean=fmt_duration(stats.mean))


class MetricsScreen(Screen[None]):
    """The supervisor's dashboard over a rolling range (1, 7 or 30 days)."""

    DEFAULT_CSS = """
    MetricsScreen #metrics-top {
        height: 1;
        background: $panel;
    }
    MetricsScreen #metrics-title {
        width: 1fr;
        padding: 0 1;
        text-style: bold;
    }
    MetricsScreen #metrics-department {
        width: 30;
    }
    MetricsScreen #metrics-cards {
        height: 5;
    }
    MetricsScreen .card {
        width: 1fr;
        height: 5;
        border: round $primary 50%;
        border-title-color: $text;
        border-subtitle-color: $text-muted;
        padding: 0;
    }
    MetricsScreen .card-value {
        text-style: bold;
        color: $accent;
    }
    MetricsScreen .card-detail {
        color: $text-muted;
    }
    MetricsScreen #card-waiting.busy .card-value {
        color: $warning;
    }
    MetricsScreen #metrics-body {
        height: 1fr;
    }
    MetricsScreen #metrics-left {
        width: 1fr;
    }
    MetricsScreen #metrics-volume {
        height: auto;
        border: round $foreground 20%;
        border-title-color: $text-muted;
        padding: 0 1;
    }
    MetricsScreen DataTable {
        height: auto;
        border: round $foreground 20%;
        border-title-color: $text-muted;
    }
    MetricsScreen #metrics-agents {
        width: 1fr;
        max-height: 100%;
    }
    MetricsScreen #metrics-status {
        height: 1;
        padding: 0 1;
        color: $text-muted;
    }
    MetricsScreen #metrics-status.stale {
        color: $warning;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "metrics.key_back"),
        Binding("1", "days(1)", "metrics.key_day"),
        Binding("7", "days(7)", "metrics.key_week"),
        Binding("3", "days(30)", "metrics.key_month"),
        Binding("r", "reload", "metrics.key_reload"),
    ]

    def __init__(
        self,
        client: ZapClient,
        *,
        days: int = 7,
        department_id: uuid.UUID | None = None,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        super().__init__()
        localize_bindings(self)
        self.client = client
        self.days = days if days in RANGES else 7
        self.department_id = department_id
        self.refresh_seconds = refresh_seconds
        self.summary: MetricsSummary | None = None
        self.loads = 0  # answers shown so far (tests wait on it)
        self._departments: dict[uuid.UUID, str] = {}

    def compose(self) -> ComposeResult:
        with Horizontal(id="metrics-top"):
            yield Static(self._title(), id="metrics-title")
            yield Select[str](
                [(t("metrics.all_departments"), ALL)],
                value=ALL,
                allow_blank=False,
                compact=True,
                id="metrics-department",
            )
        with Horizontal(id="metrics-cards"):
            for key in ("waiting", "first_response", "resolution", "tickets"):
                with Vertical(classes="card", id=f"card-{key}"):
                    yield Static("…", classes="card-value")
                    yield Static("", classes="card-detail")
        with Horizontal(id="metrics-body"):
            with VerticalScroll(id="metrics-left"):
                with Vertical(id="metrics-volume"):
                    yield VolumeChart()
                queues: DataTable[str | Text] = DataTable(id="metrics-queues", cursor_type="row")
                yield queues
            agents: DataTable[str | Text] = DataTable(
                id="metrics-agents", cursor_type="row", zebra_stripes=True
            )
            yield agents
        yield Static("", id="metrics-status")
        yield Footer()

    def on_mount(self) -> None:
        for key in ("waiting", "first_response", "resolution", "tickets"):
            self.query_one(f"#card-{key}").border_title = t(f"metrics.card.{key}")
        self.query_one("#metrics-volume").border_title = t("metrics.volume_title")
        agents = self.query_one("#metrics-agents", DataTable)
        agents.border_title = t("metrics.agents_title")
        for col in ("agent", "open", "closed", "load"):
            agents.add_column(t(f"metrics.col.{col}"), key=col)
        queues = self.query_one("#metrics-queues", DataTable)
        queues.border_title = t("metrics.queues_title")
        for col in ("queue", "waiting", "longest"):
            queues.add_column(t(f"metrics.col.{col}"), key=col)
        self._load_departments()
        self.reload()
        self.set_interval(self.refresh_seconds, self.reload)

    def _title(self) -> str:
        return t("metrics.title", range=t(f"metrics.range.{self.days}"))

    # ----------------------------------------------------------------- data

    def reload(self) -> None:
        """Fetch the summary again (in a worker; a newer fetch replaces an older one)."""
        self._fetch()

    def _range(self) -> tuple[datetime, datetime]:
        until = datetime.now(UTC)
        return until - timedelta(days=self.days), until

    @work(exclusive=True, group="metrics-fetch")
    async def _fetch(self) -> None:
        since, until = self._range()
        try:
            got = await self.client.metrics_summary(
                since=since, until=until, department_id=self.department_id
            )
        except ZapError as exc:
            status = self.query_one("#metrics-status", Static)
            status.update(t("metrics.failed", reason=exc.message))
            status.add_class("stale")
            return
        self.show(got)

    @work(exclusive=True, group="metrics-departments")
    async def _load_departments(self) -> None:
        try:
            deps = await self.client.list_departments()
        except ZapError:
            return  # the selector keeps "all departments"; the summary says what failed
        self._departments = {d.id: d.name for d in deps}
        select = self.query_one("#metrics-department", Select)
        options = [(t("metrics.all_departments"), ALL)]
        options += [(d.name, str(d.id)) for d in sorted(deps, key=lambda d: d.menu_order)]
        with self.prevent(Select.Changed):
            select.set_options(options)
            select.value = str(self.department_id) if self.department_id else ALL

    def show(self, summary: MetricsSummary) -> None:
        """Render one summary answer on every part of the screen."""
        self.summary = summary
        self._cards(summary)
        self.query_one(VolumeChart).days = tuple(summary.volume.days)
        self._agents(summary.agents)
        self._queues(summary)
        as_of = in_zone(summary.range.as_of, summary.range.timezone).strftime("%H:%M:%S")
        status = self.query_one("#metrics-status", Static)
        status.update(t("metrics.as_of", time=as_of, timezone=summary.range.timezone))
        status.remove_class("stale")
        self.query_one("#metrics-title", Static).update(self._title())
        self.loads += 1

    def _card(self, key: str, value: str, detail: str) -> None:
        card = self.query_one(f"#card-{key}")
        card.query_one(".card-value", Static).update(value)
        card.query_one(".card-detail", Static).update(detail)

    def _cards(self, s: MetricsSummary) -> None:
        waiting = sum(q.pending for q in s.queues)
        waits = [q.longest_wait_seconds for q in s.queues if q.longest_wait_seconds is not None]
        longest = max(waits) if waits else None
        self._card(
            "waiting",
            str(waiting),
            t("metrics.longest_wait", wait=fmt_duration(longest)) if waiting else "",
        )
        self.query_one("#card-waiting").set_class(waiting > 0, "busy")
        rt = s.response_times
        for key, stats in (("first_response", rt.first_response), ("resolution", rt.resolution)):
            self._card(key, fmt_duration(stats.p50), duration_lines(stats))
            self.query_one(f"#card-{key}").border_subtitle = t("metrics.median_of", n=stats.count)
        counts = {c.status: c.count for c in s.tickets.by_status}
        self._card(
            "tickets",
            str(s.tickets.total),
            t(
                "metrics.tickets_detail",
                pending=counts.get(TicketStatus.PENDING, 0),
                open=counts.get(TicketStatus.OPEN, 0),
                closed=counts.get(TicketStatus.CLOSED, 0),
            ),
        )

    def _agents(self, agents: list[AgentLoad]) -> None:
        table = self.query_one("#metrics-agents", DataTable)
        table.clear()
        ranked = sorted(agents, key=lambda a: (-(a.open + a.pending), a.name.casefold()))
        for a in ranked:
            held = f"{a.open}+{a.pending}" if a.pending else str(a.open)
            table.add_row(
                presence_cell(a.presence, a.name),
                held,
                str(a.closed),
                load_bar(a),
                key=str(a.user_id),
            )

    def _queues(self, s: MetricsSummary) -> None:
        table = self.query_one("#metrics-queues", DataTable)
        table.clear()
        for i, q in enumerate(sorted(s.queues, key=lambda q: -q.pending)):
            name = q.name or t("metrics.in_menu")
            table.add_row(name, str(q.pending), fmt_duration(q.longest_wait_seconds), key=f"q{i}")

    # ----------------------------------------------------------------- actions

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_days(self, days: int) -> None:
        if days in RANGES:
            self.days = days
            self.query_one("#metrics-title", Static).update(self._title())
            self.reload()

    def action_reload(self) -> None:
        self.reload()

    @on(Select.Changed, "#metrics-department")
    def _department_chosen(self, event: Select.Changed) -> None:
        value = event.value
        self.department_id = None if value in (ALL, Select.BLANK) else uuid.UUID(str(value))
        self.reload()


PRESENCE_STYLE: dict[Presence, str] = {
    Presence.ONLINE: "green",
    Presence.AWAY: "yellow",
    Presence.BUSY: "red",
    Presence.OFFLINE: "dim",
}


def presence_cell(p: Presence, name: str) -> Text:
    """An agent's name after a dot coloured by their presence."""
    text = Text("● ", style=PRESENCE_STYLE[p])
    text.append(name)
    return text
