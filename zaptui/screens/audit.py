"""The audit log: who changed what, filtered, a page at a time (company admins).

Invariants:
- Filters are checked here first with the API's own rules (the action pattern of
  `shared.protocol.audit.ACTION_FILTER`, calendar dates); a bad filter is said inline
  and nothing is fetched. The API's refusals are said inline too; the page on screen
  stays as it was.
- Dates are whole local days: "since" from its midnight, "until" up to the end of its
  day (the API's `until` is exclusive, so it gets the next midnight).
- Paging follows the API's cursors: `]` fetches the next page, `[` goes back to the
  previous one (cursors seen are kept), and new filters start again on page 1.
- The selected row's `data` (before/after values) is shown beside the table.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Input, Select, Static

from shared.client import ZapClient, ZapError
from shared.protocol.audit import ACTION_FILTER, AuditOut
from zaptui.i18n import t
from zaptui.screens.qr import localize_bindings

PAGE_SIZE = 50
ANYONE = "anyone"


@dataclass(frozen=True)
class AuditQuery:
    """The filters of one listing, as the API takes them."""

    action: str | None = None
    entity_type: str | None = None
    user_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None


class FilterError(ValueError):
    """A filter the user typed that the API would refuse."""


def _day(text: str, field: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise FilterError(t("audit.bad_date", field=t(f"audit.filter.{field}"), value=text))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min).astimezone()  # local zone, aware


def build_query(
    action: str, entity_type: str, user: str | None, since: str, until: str
) -> AuditQuery:
    """Turn the filter fields into a query, or raise FilterError saying what is wrong."""
    action = action.strip().lower()
    if action and not ACTION_FILTER.match(action):
        raise FilterError(t("audit.bad_action", value=action))
    entity = entity_type.strip().lower()
    if len(entity) > 64 or len(action) > 64:
        raise FilterError(t("audit.too_long"))
    first, last = _day(since, "since"), _day(until, "until")
    if first and last and first > last:
        raise FilterError(t("audit.bad_range"))
    return AuditQuery(
        action=action or None,
        entity_type=entity or None,
        user_id=uuid.UUID(user) if user and user != ANYONE else None,
        since=_midnight(first) if first else None,
        until=_midnight(last + timedelta(days=1)) if last else None,
    )


class AuditScreen(Screen[None]):
    """Pages through the audit log with filters on action, entity, person and days."""

    DEFAULT_CSS = """
    AuditScreen #audit-title {
        height: 1;
        margin-bottom: 1;
        padding: 0 1;
        text-style: bold;
        background: $panel;
    }
    AuditScreen .audit-filters {
        height: 1;
    }
    AuditScreen .audit-filters Input {
        width: 1fr;
        margin-right: 1;
    }
    AuditScreen #audit-user {
        width: 1fr;
    }
    AuditScreen #audit-apply {
        width: auto;
        min-width: 10;
    }
    AuditScreen #audit-error {
        height: auto;
        padding: 0 1;
        color: $error;
    }
    AuditScreen #audit-body {
        height: 1fr;
    }
    AuditScreen #audit-table {
        width: 2fr;
    }
    AuditScreen #audit-detail {
        width: 1fr;
        min-width: 24;
        border-left: vkey $foreground 20%;
        padding: 0 1;
    }
    AuditScreen #audit-pager {
        height: 1;
        padding: 0 1;
        color: $text-muted;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "audit.key_back"),
        Binding("f", "filters", "audit.key_filters"),
        Binding("right_square_bracket", "next_page", "audit.key_next"),
        Binding("left_square_bracket", "previous_page", "audit.key_previous"),
        Binding("r", "reload", "audit.key_reload"),
    ]

    def __init__(self, client: ZapClient, *, page_size: int = PAGE_SIZE) -> None:
        super().__init__()
        localize_bindings(self)
        self.client = client
        self.page_size = page_size
        self.query_filters = AuditQuery()
        self.rows: list[AuditOut] = []
        self.page = 1
        self.loads = 0  # pages shown so far (tests wait on it)
        self._cursors: list[str | None] = [None]  # cursor of page n is _cursors[n - 1]
        self._next: str | None = None
        self._users: dict[uuid.UUID, str] = {}

    def compose(self) -> ComposeResult:
        yield Static(t("audit.title"), id="audit-title")
        with Horizontal(classes="audit-filters"):
            yield Input(
                placeholder=t("audit.filter.action"), id="audit-action", compact=True, max_length=64
            )
            yield Input(
                placeholder=t("audit.filter.entity"), id="audit-entity", compact=True, max_length=64
            )
            yield Select[str](
                [(t("audit.anyone"), ANYONE)],
                value=ANYONE,
                allow_blank=False,
                compact=True,
                id="audit-user",
            )
        with Horizontal(classes="audit-filters"):
            yield Input(
                placeholder=t("audit.filter.since"), id="audit-since", compact=True, max_length=10
            )
            yield Input(
                placeholder=t("audit.filter.until"), id="audit-until", compact=True, max_length=10
            )
            yield Button(t("audit.apply"), id="audit-apply", compact=True)
        yield Static("", id="audit-error")
        with Horizontal(id="audit-body"):
            table: DataTable[str] = DataTable(
                id="audit-table", cursor_type="row", zebra_stripes=True
            )
            yield table
            with VerticalScroll(id="audit-detail"):
                yield Static("", id="audit-data")
        yield Static("", id="audit-pager")
        yield Footer()

    def on_mount(self) -> None:
        for field in ("action", "entity", "since", "until"):
            self.query_one(f"#audit-{field}", Input).cursor_blink = False
        table = self.query_one(DataTable)
        for col in ("when", "who", "action", "entity"):
            table.add_column(t(f"audit.col.{col}"), key=col)
        self._load_users()
        self._fetch(None)
        table.focus()

    # ----------------------------------------------------------------- data

    @work(exclusive=True, group="audit-users")
    async def _load_users(self) -> None:
        try:
            users = [u async for u in self.client.iterate(self.client.list_users, limit=200)]
        except ZapError:
            return  # ids are shown instead of names
        self._users = {u.id: u.name for u in users}
        select = self.query_one("#audit-user", Select)
        options = [(t("audit.anyone"), ANYONE)]
        options += [(u.name, str(u.id)) for u in sorted(users, key=lambda u: u.name.casefold())]
        with self.prevent(Select.Changed):
            current = select.value
            select.set_options(options)
            select.value = current if current in {v for _, v in options} else ANYONE
        if self.rows:
            self._show_rows()

    @work(exclusive=True, group="audit-fetch")
    async def _fetch(self, cursor: str | None, page: int = 1) -> None:
        q = self.query_filters
        try:
            got = await self.client.list_audit(
                action=q.action,
                entity_type=q.entity_type,
                user_id=q.user_id,
                since=q.since,
                until=q.until,
                cursor=cursor,
                limit=self.page_size,
            )
        except ZapError as exc:
            self.query_one("#audit-error", Static).update(exc.message)
            return
        self.query_one("#audit-error", Static).update("")
        self.page = page
        del self._cursors[page:]
        if len(self._cursors) < page:
            self._cursors.append(cursor)
        self._next = got.next_cursor
        self.rows = list(got.items)
        self._show_rows()
        self.loads += 1

    def _who(self, row: AuditOut) -> str:
        if row.user_id is None:
            return t("audit.token") if row.api_token_id else t("audit.system")
        return self._users.get(row.user_id, str(row.user_id)[:8])

    def _show_rows(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        year = datetime.now().astimezone().year
        for i, row in enumerate(self.rows):
            when = row.created_at.astimezone()
            table.add_row(
                when.strftime("%d/%m %H:%M" if when.year == year else "%d/%m/%Y"),
                self._who(row),
                row.action,
                row.entity_type,
                key=str(i),
            )
        shown = t("audit.page", page=self.page, count=len(self.rows))
        more = t("audit.more") if self._next else t("audit.last")
        self.query_one("#audit-pager", Static).update(f"{shown} · {more}")
        self._show_detail(0)

    def _show_detail(self, index: int) -> None:
        data = self.query_one("#audit-data", Static)
        if not 0 <= index < len(self.rows):
            data.update(t("audit.empty") if not self.rows else "")
            return
        row = self.rows[index]
        text = Text()
        text.append(row.action, style="bold")
        text.append(f"\n{t('audit.col.entity')}: {row.entity_type} {row.entity_id or ''}")
        text.append(f"\n{t('audit.col.when')}: {row.created_at.astimezone():%Y-%m-%d %H:%M:%S %Z}")
        text.append(f"\n{t('audit.col.who')}: {self._who(row)}")
        if row.ip:
            text.append(f"\n{t('audit.col.ip')}: {row.ip}")
        text.append("\n\n" + json.dumps(row.data, ensure_ascii=False, indent=2, sort_keys=True))
        data.update(text)

    @on(DataTable.RowHighlighted, "#audit-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail(event.cursor_row)

    # ----------------------------------------------------------------- actions

    def apply_filters(self) -> bool:
        """Read the filter fields and fetch page 1; False (and a message) when one is bad."""
        select = self.query_one("#audit-user", Select)
        user = select.value if isinstance(select.value, str) else None
        try:
            q = build_query(
                self.query_one("#audit-action", Input).value,
                self.query_one("#audit-entity", Input).value,
                user,
                self.query_one("#audit-since", Input).value,
                self.query_one("#audit-until", Input).value,
            )
        except FilterError as exc:
            self.query_one("#audit-error", Static).update(str(exc))
            return False
        self.query_filters = q
        self._cursors = [None]
        self._fetch(None, 1)
        return True

    @on(Input.Submitted)
    @on(Button.Pressed, "#audit-apply")
    def _apply(self) -> None:
        if self.apply_filters():
            self.query_one(DataTable).focus()  # back to the rows: [ ] page, Enter nothing

    @on(Select.Changed, "#audit-user")
    def _user_chosen(self) -> None:
        self.apply_filters()

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_filters(self) -> None:
        self.query_one("#audit-action", Input).focus()

    def action_next_page(self) -> None:
        if self._next:
            self._fetch(self._next, self.page + 1)

    def action_previous_page(self) -> None:
        if self.page > 1:
            self._fetch(self._cursors[self.page - 2], self.page - 1)

    def action_reload(self) -> None:
        self._fetch(self._cursors[self.page - 1], self.page)
